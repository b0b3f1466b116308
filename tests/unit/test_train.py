"""train / evaluate / predict on a tiny hand-made dataset (stand-in for ajpq.data)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import ajpq
from ajpq.data.samples import ArraySamples
from ajpq.errors import InvalidData
from ajpq.models import skynet, tiny_cnn, tiny_skynet
from ajpq.tasks import Classification
from ajpq.tasks.detection import flip_batch
from ajpq.train import TrainResult, evaluate, predict, train


def _FakeDataset(n: int, size: tuple[int, int] = (32, 64), seed: int = 0) -> ArraySamples:
    """Random uint8 images with one bright rectangle each; boxes normalized x0y0x1y1."""
    rng = np.random.default_rng(seed)
    height, width = size
    images = rng.integers(0, 80, (n, 3, height, width), dtype=np.uint8)
    corners = rng.uniform(0.05, 0.55, (n, 2))
    sizes = rng.uniform(0.15, 0.4, (n, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        rows = slice(int(y0 * height), int(y1 * height))
        cols = slice(int(x0 * width), int(x1 * width))
        images[i, :, rows, cols] = 230
    return ArraySamples(images, boxes)


def test_train_reduces_loss_and_reports_every_field() -> None:
    torch.manual_seed(0)
    model = tiny_skynet()
    result = train(
        model, _FakeDataset(64), _FakeDataset(16, seed=1), epochs=2, batch_size=16,
        progress=False,
    )  # fmt: skip
    assert isinstance(result, TrainResult)
    assert result.epochs_run == 2 and len(result.losses) == 2 and len(result.val_metrics) == 2
    assert result.losses[1] < result.losses[0]
    assert 0.0 <= result.metric <= 1.0 and result.metric == result.val_metrics[-1]
    assert result.metric_name == "mean IoU"
    assert result.seconds > 0


def test_train_is_deterministic_for_a_seed() -> None:
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        model = tiny_skynet()
        results.append(
            train(
                model,
                _FakeDataset(16),
                _FakeDataset(8, seed=1),
                epochs=1,
                batch_size=8,
                progress=False,
                seed=5,
            )  # fmt: skip
        )
    assert results[0].losses == results[1].losses
    assert results[0].metric == results[1].metric


def test_max_seconds_stops_after_one_batch() -> None:
    torch.manual_seed(0)
    result = train(
        tiny_skynet(), _FakeDataset(32), _FakeDataset(8), epochs=5, batch_size=8,
        progress=False, max_seconds=0.0,
    )  # fmt: skip
    assert result.epochs_run == 1


def test_evaluate_and_predict() -> None:
    torch.manual_seed(0)
    model = tiny_skynet()
    data = _FakeDataset(10)
    boxes = predict(model, data, batch_size=4)
    assert boxes.shape == (10, 4) and boxes.dtype == np.float32
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    assert model.training  # predict restores the mode
    score = evaluate(model, data, batch_size=4)
    assert isinstance(score, float) and 0.0 <= score <= 1.0


def test_flip_keeps_boxes_on_the_object() -> None:
    data = _FakeDataset(8)
    images, boxes = next(data.batches(8, shuffle=False, seed=0))
    flipped, new_boxes = flip_batch(images, boxes, torch.Generator().manual_seed(0))
    height, width = images.shape[-2:]
    for image, box in zip(flipped, new_boxes, strict=True):
        x0, y0, x1, y1 = box.tolist()
        inside = image[:, int(y0 * height) + 1 : int(y1 * height) - 1,
                       int(x0 * width) + 1 : int(x1 * width) - 1]  # fmt: skip
        assert inside.min().item() == 230
    assert not torch.equal(new_boxes, boxes)


def test_model_without_anchors_needs_a_task() -> None:
    with pytest.raises(InvalidData, match="task=ajpq.tasks.Classification"):
        evaluate(tiny_cnn(), _FakeDataset(4))


def _digit_like(n: int = 16) -> ArraySamples:
    """Random one-channel 8x8 images with labels 0..2."""
    rng = np.random.default_rng(0)
    return ArraySamples(
        rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), rng.integers(0, 3, n).astype(np.int64)
    )


def _classifier() -> nn.Module:
    """No BatchNorm, so the student (train mode) and its eval-mode teacher copy agree exactly."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def test_an_equal_teacher_adds_nothing_at_the_first_step_then_pulls() -> None:
    data = _digit_like()
    settings = dict(epochs=2, batch_size=16, lr=0.05, progress=False, task=Classification())
    plain = train(_classifier(), data, data, **settings)
    model = _classifier()
    teacher = copy.deepcopy(model)
    before = copy.deepcopy(teacher.state_dict())
    distilled = train(model, data, data, teacher=teacher, distill=1.0, **settings)
    # one batch per epoch: epoch 1's loss is the first step's, where KD(student, teacher) = 0
    assert distilled.losses[0] == plain.losses[0]
    assert distilled.losses[1] != plain.losses[1]  # the student moved, the teacher pulls
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert teacher.training  # its mode is given back
    again = train(_classifier(), data, data, teacher=teacher, distill=0.0, **settings)
    assert again.losses == plain.losses  # distill=0 ignores the teacher


def test_qat_fine_tune_with_a_teacher_is_deterministic() -> None:
    torch.manual_seed(0)
    model = skynet(0.125, (32, 64))
    policy = ajpq.Policy.uniform(model, 4, 8)
    before = copy.deepcopy(model.state_dict())
    results = []
    for distill in (1.0, 1.0, 0.0):
        qmodel = ajpq.quantize(model, policy)
        results.append(
            train(
                qmodel,
                _FakeDataset(8),
                _FakeDataset(4, seed=1),
                epochs=1,
                batch_size=4,
                lr=2e-3,  # at QAT_LR one step moves no 4-bit weight: the losses would tie
                progress=False,
                seed=2,
                teacher=model,
                distill=distill,
            )  # fmt: skip
        )
    first, second, plain = results
    assert first.losses == second.losses and first.metric == second.metric
    assert first.losses != plain.losses
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


class _NoDistill:
    """A user task without ``distill``."""

    metric = "top-1 accuracy"

    def __init__(self) -> None:
        self.classification = Classification()

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.classification.loss(outputs, targets)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.classification.predict(outputs)

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return self.classification.score(predictions, targets)


@pytest.mark.parametrize(
    ("task", "teacher", "distill", "message"),
    [
        (Classification(), None, 0.5, r"distill=0\.5 needs a teacher"),
        (_NoDistill(), "copy", 1.0, "task _NoDistill has no distill"),
        (Classification(), "same", 1.0, "the teacher shares parameters"),
        (Classification(), "copy", -1.0, r"distill=-1\.0 must be a finite weight"),
        (Classification(), nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), 1.0, r"\(16, 5\)"),
    ],
)
def test_distillation_that_cannot_run_is_refused(
    task: object, teacher: object, distill: float, message: str
) -> None:
    model = _classifier()
    named = {"copy": copy.deepcopy(model), "same": model}
    teacher = named[teacher] if isinstance(teacher, str) else teacher
    with pytest.raises(InvalidData, match=message):
        train(
            model, _digit_like(), _digit_like(), epochs=1, batch_size=16, progress=False,
            task=task, teacher=teacher, distill=distill,
        )  # fmt: skip
