"""Train and evaluate a single-object detector (Skynet or any model exposing ``anchors``).

The datasets follow ``ajpq.data.Dataset``: ``len()``, ``boxes`` (N, 4) normalized x0y0x1y1,
and ``torch_batches(batch_size, shuffle, seed)`` yielding raw 0..255 float images with boxes.
"""

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from ajpq.errors import InvalidData, UnsupportedOp
from ajpq.metrics import mean_iou
from ajpq.models.region import decode, region_loss


class BoxDataset(Protocol):
    """What train/evaluate/predict read from a dataset."""

    boxes: np.ndarray

    def __len__(self) -> int: ...

    def torch_batches(
        self, batch_size: int, shuffle: bool, seed: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`: final val mean IoU, mean loss and val IoU per epoch run."""

    mean_iou: float
    losses: tuple[float, ...]
    seconds: float
    epochs_run: int
    val_ious: tuple[float, ...] = ()


def model_anchors(model: nn.Module, anchors: torch.Tensor | None) -> torch.Tensor:
    """The anchors to decode ``model``'s head with: the override, else ``model.anchors``."""
    if anchors is None:
        anchors = getattr(model, "anchors", None)
    if anchors is None:
        raise UnsupportedOp(
            f"{type(model).__name__} has no `anchors` attribute; pass anchors=(A, 2) tensor "
            "in grid cells, e.g. skynet().anchors."
        )
    return torch.as_tensor(anchors, dtype=torch.float32)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def flip_batch(
    images: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips (each with p=0.5 per image); boxes stay exact."""
    images, boxes = images.clone(), boxes.clone()
    n = images.shape[0]
    horizontal = torch.rand(n, generator=generator) < 0.5
    vertical = torch.rand(n, generator=generator) < 0.5
    images[horizontal] = images[horizontal].flip(-1)
    boxes[horizontal] = torch.stack(
        [
            1 - boxes[horizontal, 2],
            boxes[horizontal, 1],
            1 - boxes[horizontal, 0],
            boxes[horizontal, 3],
        ],
        dim=1,
    )
    images[vertical] = images[vertical].flip(-2)
    boxes[vertical] = torch.stack(
        [boxes[vertical, 0], 1 - boxes[vertical, 3], boxes[vertical, 2], 1 - boxes[vertical, 1]],
        dim=1,
    )
    return images, boxes


def predict(
    model: nn.Module, data: BoxDataset, batch_size: int = 64, anchors: torch.Tensor | None = None
) -> np.ndarray:
    """Predicted boxes (N, 4) float32, normalized x0y0x1y1, in dataset order (eval mode)."""
    anchors = model_anchors(model, anchors)
    device = model_device(model)
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for images, _ in data.torch_batches(batch_size, shuffle=False, seed=0):
            outputs.append(decode(model(images.to(device)), anchors.to(device)).cpu())
    model.train(was_training)
    if not outputs:
        return np.zeros((0, 4), dtype=np.float32)
    return torch.cat(outputs).numpy().astype(np.float32)


def evaluate(
    model: nn.Module, data: BoxDataset, batch_size: int = 64, anchors: torch.Tensor | None = None
) -> float:
    """Mean IoU of the model's most confident box against each image's ground-truth box."""
    if len(data) == 0:
        raise InvalidData("cannot evaluate on an empty dataset; give at least one image.")
    predicted = predict(model, data, batch_size=batch_size, anchors=anchors)
    return float(mean_iou(predicted, np.asarray(data.boxes, dtype=np.float32)))


def train_epoch(
    model: nn.Module,
    data: BoxDataset,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    settings: "EpochSettings",
    on_batch: "BatchCallback",
) -> tuple[float, bool]:
    """One pass over ``data``; returns (mean loss, whether the time budget ran out)."""
    model.train()
    device = model_device(model)
    anchors = settings.anchors.to(device)
    total, count, out_of_time = 0.0, 0, False
    batches = data.torch_batches(settings.batch_size, shuffle=True, seed=settings.seed)
    for images, boxes in batches:
        images, boxes = flip_batch(images, boxes, settings.generator)
        loss = region_loss(model(images.to(device)), boxes.to(device), anchors)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total, count = total + loss.item() * len(boxes), count + len(boxes)
        on_batch()
        if settings.deadline is not None and time.monotonic() > settings.deadline:
            out_of_time = True
            break
    return total / max(count, 1), out_of_time


@dataclass(frozen=True)
class EpochSettings:
    """What one training epoch needs besides the model and optimizer."""

    anchors: torch.Tensor
    batch_size: int
    seed: int
    generator: torch.Generator
    deadline: float | None


class BatchCallback(Protocol):
    """Called after every optimizer step (advances the progress bar)."""

    def __call__(self) -> None: ...


def check_training_arguments(train_data: BoxDataset, epochs: int, batch_size: int) -> None:
    """Raise InvalidData for settings that cannot train."""
    if len(train_data) == 0:
        raise InvalidData("the training set is empty; give at least one image to train on.")
    if epochs < 1 or batch_size < 1:
        raise InvalidData(f"epochs={epochs} and batch_size={batch_size} must both be at least 1.")


def train(
    model: nn.Module,
    train: BoxDataset,
    val: BoxDataset,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    max_seconds: float | None = None,
    anchors: torch.Tensor | None = None,
    weight_decay: float = 1e-4,
) -> TrainResult:
    """Train ``model`` with AdamW + per-step cosine LR and random flips; report val mean IoU.

    Stops early (after the current batch) once ``max_seconds`` have passed. Deterministic for
    a given ``seed`` and model initialisation; the thread count is left as it is.
    """
    check_training_arguments(train, epochs, batch_size)
    anchors = model_anchors(model, anchors)
    torch.manual_seed(seed)
    start = time.monotonic()
    steps_per_epoch = math.ceil(len(train) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    deadline = None if max_seconds is None else start + max_seconds
    losses: list[float] = []
    val_ious: list[float] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("train", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            settings = EpochSettings(anchors, batch_size, seed + epoch, generator, deadline)
            loss, out_of_time = train_epoch(
                model, train, optimizer, scheduler, settings, lambda: bar.advance(task)
            )
            losses.append(loss)
            val_ious.append(evaluate(model, val, anchors=anchors) if len(val) else float("nan"))
            if progress:
                bar.console.print(
                    f"epoch {epoch + 1}/{epochs}  loss {loss:.4f}  val IoU {val_ious[-1]:.4f}"
                )
            if out_of_time:
                break
    return TrainResult(
        mean_iou=val_ious[-1],
        losses=tuple(losses),
        seconds=time.monotonic() - start,
        epochs_run=len(losses),
        val_ious=tuple(val_ious),
    )


def progress_bar(enabled: bool) -> Progress:
    """A rich progress bar on stderr over training steps; silent when ``enabled`` is False."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )
