"""Train and evaluate any model on its task (``ajpq.tasks``): detection, classification or a
user's own.

Data is anything ``ajpq.data.as_samples`` reads: ``ajpq.data.Dataset``, a torch Dataset or
DataLoader of (image, target), or an (images, targets) pair of numpy arrays. Models take raw
pixel values 0..255 as float (they normalize the pixels themselves; see ``fold_input`` for a
model trained on normalized inputs).

With a ``teacher`` (the fp32 model behind a QAT one) and ``distill`` > 0, every batch's loss
adds ``distill`` x the task's ``distill(student outputs, teacher outputs)`` (knowledge
distillation, as HAKD and many QAT papers fine-tune).
"""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from ajpq.data.samples import Samples, as_samples
from ajpq.errors import InvalidData
from ajpq.quant.quantize import QuantModel
from ajpq.tasks import Task, default_task

FLOAT_LR = 2e-3  # AdamW, a float model with live BatchNorms
QAT_LR = 2e-5  # a QuantModel (BN folded): 2e-4 lost IoU where 2e-5 keeps it


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`: the final val score (``metric``, named ``metric_name``), the
    mean loss and the val score per epoch run."""

    metric: float
    metric_name: str
    losses: tuple[float, ...]
    seconds: float
    epochs_run: int
    val_metrics: tuple[float, ...] = ()


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predictions(
    model: nn.Module, data: Samples, task: Task, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The task's predictions for every sample, and the targets, in data order (eval mode)."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    predicted, targets = [], []
    with torch.no_grad():
        for images, target in data.batches(batch_size, shuffle=False, seed=0):
            predicted.append(task.predict(model(images.to(device))).cpu())
            targets.append(target)
    model.train(was_training)
    if not predicted:
        raise InvalidData("cannot evaluate on an empty dataset; give at least one image.")
    return torch.cat(predicted), torch.cat(targets)


def predict(model: nn.Module, data: Any, task: Task | None = None, batch_size: int = 64) -> Any:
    """The task's predictions in data order, as numpy: boxes (N, 4) for detection; for
    classification the best classes ranked, (N, k), so ``[:, 0]`` is the predicted class."""
    task = task if task is not None else default_task(model)
    return predictions(model, as_samples(data), task, batch_size)[0].numpy()


def score(
    model: nn.Module, data: Any, task: Task | None = None, batch_size: int = 64
) -> dict[str, float]:
    """Every score the task reports ({"top-1 accuracy": .., "top-5 accuracy": ..})."""
    task = task if task is not None else default_task(model)
    predicted, targets = predictions(model, as_samples(data), task, batch_size)
    return task.score(predicted, targets)


def evaluate(model: nn.Module, data: Any, task: Task | None = None, batch_size: int = 64) -> float:
    """The task's headline metric on ``data`` (mean IoU for detection, top-1 for classes)."""
    task = task if task is not None else default_task(model)
    return score(model, data, task, batch_size)[task.metric]


def train_epoch(
    model: nn.Module,
    data: Samples,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    settings: "EpochSettings",
    on_batch: "BatchCallback",
) -> tuple[float, bool]:
    """One pass over ``data``; returns (mean loss, whether the time budget ran out)."""
    model.train()
    device = model_device(model)
    augment = getattr(settings.task, "augment", None)
    total, count, out_of_time = 0.0, 0, False
    for images, targets in data.batches(settings.batch_size, shuffle=True, seed=settings.seed):
        if augment is not None:
            images, targets = augment(images, targets, settings.generator)
        loss = batch_loss(model, images.to(device), targets.to(device), settings)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total, count = total + loss.item() * len(targets), count + len(targets)
        on_batch()
        if settings.deadline is not None and time.monotonic() > settings.deadline:
            out_of_time = True
            break
    return total / max(count, 1), out_of_time


@dataclass(frozen=True)
class EpochSettings:
    """What one training epoch needs besides the model and optimizer."""

    task: Task
    batch_size: int
    seed: int
    generator: torch.Generator
    deadline: float | None
    distillation: "Distillation | None" = None


@dataclass(frozen=True)
class Distillation:
    """A teacher the model also learns from: ``weight`` x ``loss(outputs, teacher outputs)``,
    where ``loss`` is the task's ``distill``."""

    teacher: nn.Module
    weight: float
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def batch_loss(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, settings: EpochSettings
) -> torch.Tensor:
    """The task's loss of one batch, plus ``distill`` x the task's distillation loss against
    the teacher's outputs on the same (augmented) images when there is a teacher."""
    outputs = model(images)
    loss = settings.task.loss(outputs, targets)
    distillation = settings.distillation
    if distillation is None:
        return loss
    with torch.no_grad():  # the teacher is never trained: no graph, no gradient
        teacher_outputs = distillation.teacher(images.to(model_device(distillation.teacher)))
    if teacher_outputs.shape != outputs.shape:
        raise InvalidData(
            f"the teacher's outputs have shape {tuple(teacher_outputs.shape)} but the model's "
            f"{tuple(outputs.shape)}; distill from the fp32 model the trained one was made from."
        )
    return loss + distillation.weight * distillation.loss(outputs, teacher_outputs.to(outputs))


class BatchCallback(Protocol):
    """Called after every optimizer step (advances the progress bar)."""

    def __call__(self) -> None: ...


def check_training_arguments(train_data: Samples, epochs: int, batch_size: int) -> None:
    """Raise InvalidData for settings that cannot train."""
    if len(train_data) == 0:
        raise InvalidData("the training set is empty; give at least one image to train on.")
    if epochs < 1 or batch_size < 1:
        raise InvalidData(f"epochs={epochs} and batch_size={batch_size} must both be at least 1.")


def distillation(
    model: nn.Module, task: Task, teacher: nn.Module | None, distill: float
) -> Distillation | None:
    """What ``train``'s ``teacher`` and ``distill`` ask for (None when distill is 0); raise
    InvalidData for a distillation that cannot run or would train the teacher."""
    if not math.isfinite(distill) or distill < 0:
        raise InvalidData(f"distill={distill} must be a finite weight of at least 0.")
    if distill == 0:
        return None
    if teacher is None:
        raise InvalidData(
            f"distill={distill} needs a teacher; pass teacher=the fp32 model, or distill=0."
        )
    loss = getattr(task, "distill", None)
    if loss is None:
        raise InvalidData(
            f"task {type(task).__name__} has no distill(student, teacher) method; define one "
            "(see docs/tasks.md) or pass distill=0."
        )
    student_parameters = {id(parameter) for parameter in model.parameters()}
    if any(id(parameter) in student_parameters for parameter in teacher.parameters()):
        raise InvalidData(
            "the teacher shares parameters with the model being trained, so training would "
            "change it; pass a separate teacher (copy.deepcopy(model))."
        )
    return Distillation(teacher, float(distill), loss)


@contextmanager
def teacher_in_eval_mode(distilling: Distillation | None) -> Iterator[None]:
    """The teacher in eval mode (fixed BatchNorm statistics, no dropout) for the duration,
    then back in the mode it came in."""
    if distilling is None:
        yield
        return
    was_training = distilling.teacher.training
    distilling.teacher.eval()
    try:
        yield
    finally:
        distilling.teacher.train(was_training)


def train(
    model: nn.Module,
    train: Any,
    val: Any,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float | None = None,
    seed: int = 0,
    progress: bool = True,
    max_seconds: float | None = None,
    task: Task | None = None,
    weight_decay: float = 1e-4,
    teacher: nn.Module | None = None,
    distill: float | None = None,
) -> TrainResult:
    """Train ``model`` on ``task`` with AdamW + per-step cosine LR (and the task's
    augmentation); report the val metric after each epoch.

    ``task`` defaults to Detection for a model with anchors (Skynet). Stops early (after the
    current batch) once ``max_seconds`` have passed. Deterministic for a given ``seed`` and
    model initialisation; the thread count is left as it is. With ``distill`` > 0 each batch's
    loss adds ``distill`` x ``task.distill(outputs, teacher(images))``; the ``teacher`` runs
    in eval mode without gradients, is never trained, and gets its mode back at the end.

    Defaults: ``lr`` is ``FLOAT_LR`` for a float model and ``QAT_LR`` for a ``QuantModel``
    (its BatchNorms are folded, and at the float rate a fine-tune loses accuracy: see
    docs/quantization.md); ``distill`` is 1 when a ``teacher`` is given, else 0.
    """
    task = task if task is not None else default_task(model)
    train_data, val_data = as_samples(train), as_samples(val)
    check_training_arguments(train_data, epochs, batch_size)
    lr = lr if lr is not None else (QAT_LR if isinstance(model, QuantModel) else FLOAT_LR)
    distill = distill if distill is not None else float(teacher is not None)
    distilling = distillation(model, task, teacher, distill)
    torch.manual_seed(seed)
    start = time.monotonic()
    steps_per_epoch = math.ceil(len(train_data) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    deadline = None if max_seconds is None else start + max_seconds
    losses: list[float] = []
    scores: list[float] = []
    with progress_bar(progress) as bar, teacher_in_eval_mode(distilling):
        bar_task = bar.add_task("train", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            settings = EpochSettings(
                task, batch_size, seed + epoch, generator, deadline, distillation=distilling
            )
            loss, out_of_time = train_epoch(
                model, train_data, optimizer, scheduler, settings, lambda: bar.advance(bar_task)
            )
            losses.append(loss)
            scores.append(evaluate(model, val_data, task) if len(val_data) else float("nan"))
            if progress:
                bar.console.print(
                    f"epoch {epoch + 1}/{epochs}  loss {loss:.4f}  val {task.metric} "
                    f"{scores[-1]:.4f}"
                )
            if out_of_time:
                break
    return TrainResult(
        metric=scores[-1],
        metric_name=task.metric,
        losses=tuple(losses),
        seconds=time.monotonic() - start,
        epochs_run=len(losses),
        val_metrics=tuple(scores),
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
