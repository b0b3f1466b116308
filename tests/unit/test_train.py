"""train / evaluate / predict on a tiny hand-made dataset (stand-in for ajpq.data)."""

import numpy as np
import pytest
import torch

from ajpq.data.samples import ArraySamples
from ajpq.errors import InvalidData
from ajpq.models import tiny_cnn, tiny_skynet
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
