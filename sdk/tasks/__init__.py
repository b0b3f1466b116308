"""Tasks: what a model is for — the loss of a batch, the metric, and predictions.

``train``, ``evaluate``, ``search``, the baselines and every report read a model's outputs
only through a :class:`Task`. Two are built in:

- :class:`Detection` — one box per image (DAC-SDC): region loss, mean IoU;
- :class:`Classification` — cross-entropy, top-1 accuracy (top-5 too above 5 classes).

A user task is any object with the four members of :class:`Task` (see docs/tasks.md); it may
also define ``augment(images, targets, generator)`` for training-time augmentation and
``distill(student_outputs, teacher_outputs) -> scalar loss`` for ``train(teacher=...,
distill=...)`` (both built-in tasks do: Detection an MSE of the decoded values, Classification
Hinton's KL at temperature T).
"""

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ajpq.errors import InvalidData
from ajpq.tasks.classification import Classification
from ajpq.tasks.detection import Detection


@runtime_checkable
class Task(Protocol):
    """Loss, predictions and scores of a model's raw outputs; ``metric`` is higher-is-better."""

    metric: str  # the headline score's name, a key of score(): "mean IoU", "top-1 accuracy"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar training loss of a batch (differentiable)."""
        ...

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """One prediction per image from the raw outputs (no gradient needed)."""
        ...

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Named scores of all predictions against all targets; ``metric`` is one of them."""
        ...


def default_task(model: nn.Module) -> Task:
    """The task a model implies when none is given: Detection for a model with anchors."""
    anchors = getattr(model, "anchors", None)
    if anchors is None:
        raise InvalidData(
            f"{type(model).__name__} has no anchors, so ajpq cannot tell its task; pass "
            "task=ajpq.tasks.Classification() (or --task classification), or your own Task."
        )
    return Detection(anchors)


TASKS = {"classification": Classification, "detection": Detection}

__all__ = ["TASKS", "Classification", "Detection", "Task", "default_task"]
