"""Tasks: exact losses and scores of the built-in tasks, and a user's own task in train."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ajpq
from ajpq.data.samples import ArraySamples
from ajpq.errors import InvalidData
from ajpq.tasks import Classification, Detection, Task, default_task


def test_classification_scores_top1_and_top5() -> None:
    logits = torch.tensor(
        [[9.0, 1, 2, 3, 4, 5, 6], [0.0, 1, 2, 3, 4, 5, 6], [6.0, 5, 4, 3, 2, 1, 0]]
    )
    labels = torch.tensor([0, 1, 6])
    task = Classification()
    predicted = task.predict(logits)
    assert predicted.tolist()[0][:2] == [0, 6]
    assert task.score(predicted, labels) == {"top-1 accuracy": 1 / 3, "top-5 accuracy": 1 / 3}
    assert task.loss(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels))


def test_classification_has_no_top5_at_five_classes_or_fewer() -> None:
    task = Classification()
    with pytest.raises(InvalidData, match="pool the feature map"):
        task.predict(torch.zeros(2, 5, 3, 3))
    logits = torch.eye(5)[:, :, None, None]  # a conv head's (N, classes, 1, 1)
    scores = task.score(task.predict(logits), torch.tensor([0, 1, 2, 3, 0]))
    assert scores == {"top-1 accuracy": 0.8}


def test_classification_rejects_labels_outside_the_output() -> None:
    with pytest.raises(InvalidData, match=r"0\.\.2 for a 3-way output; got 0\.\.3"):
        Classification().loss(torch.zeros(2, 3), torch.tensor([0, 3]))


def test_detection_scores_mean_iou() -> None:
    task = Detection(torch.ones(1, 2))
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]])
    truth = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 1.0]])
    assert task.score(boxes, truth) == {"mean IoU": 0.75}
    assert isinstance(task, Task) and isinstance(Classification(), Task)


def test_default_task_is_detection_for_skynet_only() -> None:
    assert isinstance(default_task(ajpq.models.tiny_skynet()), Detection)
    with pytest.raises(InvalidData, match="task=ajpq.tasks.Classification"):
        default_task(nn.Linear(2, 2))


class MeanBrightness:
    """A user task: regress each image's mean pixel value (higher metric is better)."""

    metric = "negative MAE"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs.flatten(), targets.float())

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.flatten()

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {self.metric: -float((predictions - targets).abs().mean())}


def test_a_user_task_trains_and_evaluates() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 1, 8, 8), dtype=np.uint8)
    targets = images.reshape(64, -1).mean(1).astype(np.float32) / 255
    data = ArraySamples(images, targets)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))
    nn.init.zeros_(model[1].weight)
    nn.init.zeros_(model[1].bias)
    task = MeanBrightness()
    before = ajpq.evaluate(model, data, task)
    assert before == pytest.approx(-float(np.abs(targets).mean()))
    result = ajpq.train(
        model, data, data, epochs=3, batch_size=16, lr=1e-4, progress=False, task=task
    )
    assert result.metric_name == "negative MAE"
    assert result.metric == ajpq.evaluate(model, data, task) > before


def test_classification_distill_is_hinton_kd_at_temperature_four() -> None:
    student = torch.tensor([[0.0, 0.0], [1.0, 2.0]], requires_grad=True)
    teacher = torch.tensor([[4 * np.log(3.0), 0.0], [1.0, 2.0]], requires_grad=True)
    loss = Classification().distill(student, teacher)
    # row 0: softmax(t/4) = (3/4, 1/4) against (1/2, 1/2); row 1 is equal; x 4^2 / batch of 2
    expected = 16 * (0.75 * np.log(1.5) + 0.25 * np.log(0.5)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert teacher.grad is None  # only the student learns
    # d/ds = T / N x (softmax(s/T) - softmax(t/T))
    assert torch.allclose(student.grad, torch.tensor([[-0.5, 0.5], [0.0, 0.0]]), atol=1e-6)
    # at T = 1: softmax(4 ln 3, 0) = (81/82, 1/82), no T^2 factor
    at_one = (81 / 82 * np.log(162 / 82) + 1 / 82 * np.log(2 / 82)) / 2
    assert Classification(temperature=1.0).distill(student, teacher).item() == pytest.approx(
        at_one, rel=1e-5
    )
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 1, 1) * 5
    assert Classification().distill(logits, logits.clone()).item() == 0.0
    with pytest.raises(InvalidData, match="temperature=0 must be finite and above 0"):
        Classification(temperature=0)


def test_detection_distill_matches_the_decoded_values() -> None:
    task = Detection(torch.ones(1, 2))
    student = torch.zeros(1, 5, 1, 1, requires_grad=True)  # x, y, w, h, conf
    teacher = torch.tensor([np.log(3.0), 0.0, 1.0, -2.0, -np.log(3.0)]).view(1, 5, 1, 1)
    teacher.requires_grad_(True)
    loss = task.distill(student, teacher)
    # sigmoid x: 0.5 vs 0.75; y equal; raw w: 0 vs 1, h: 0 vs -2; sigmoid conf: 0.5 vs 0.25
    assert loss.item() == pytest.approx((0.0625 + 0 + 1 + 4 + 0.0625) / 5, rel=1e-6)
    loss.backward()
    assert teacher.grad is None
    expected = torch.tensor([-0.025, 0.0, -0.4, 0.8, 0.025]).view(1, 5, 1, 1)
    assert torch.allclose(student.grad, expected, atol=1e-7)
    torch.manual_seed(0)
    outputs = torch.randn(2, 10, 3, 4) * 4
    assert Detection(torch.ones(2, 2)).distill(outputs, outputs.clone()).item() == 0.0


def test_detection_distill_reads_anchor_a_from_channels_5a_to_5a_plus_4() -> None:
    task = Detection(torch.tensor([[1.0, 1.0], [2.0, 2.0]]))
    student = torch.zeros(1, 10, 1, 2)
    teacher = student.clone()
    teacher[0, 6, 0, 1] = np.log(3.0)  # anchor 1's t_y (5 x 1 + 1): sigmoid 0.75 against 0.5
    teacher[0, 8, 0, 1] = 1.0  # anchor 1's t_h (5 x 1 + 3), raw
    assert task.distill(student, teacher).item() == pytest.approx((0.0625 + 1) / 20, rel=1e-6)
