"""The user's own model and data from the CLI's arguments (``ajpq train|quantize|search``).

- ``--model pkg.module:factory``: a callable returning the ``nn.Module``, imported like
  ``python -m`` would (the current directory is importable);
- ``--weights state_dict.pt``: a plain state_dict (``torch.load(weights_only=True)``);
- ``--data data.npz``: images + labels (classification) or boxes (detection), read by
  ``ajpq.data.load_samples``; validation is ``val_images`` + ``val_labels``/``val_boxes`` when
  the file has them, else ``--val-fraction`` of it (default 0.2, or what ``ajpq train``
  used), drawn by a permutation seeded with 0, so every command holds out the same images;
- ``--task classification|detection`` (``ajpq.tasks.TASKS``);
- ``--input-size HxW`` (default: the data's image size; other sizes resize the data);
- ``--normalize MEAN,STD`` or per channel ``M1,M2,M3/S1,S2,S3`` (0..1 units, as torchvision's
  ``Normalize``): the model was trained on ``(pixels / 255 - mean) / std``.

Every bad argument is one :class:`~ajpq.errors.AjpqError` sentence that names it.
"""

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ajpq.data.samples import Normalization, Samples, resize_pixels, split
from ajpq.errors import AjpqError, InvalidData
from ajpq.tasks import TASKS, Task, default_task

FACTORY_FORM = "pkg.module:factory"
SPLIT_SEED = 0  # the held-out share is the same images for train, quantize and search
DEFAULT_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a user's model and feeds it: stored in a user checkpoint's config."""

    factory: str
    task: str | None = None
    input_size: tuple[int, int] | None = None
    normalization: Normalization | None = None
    val_fraction: float | None = None

    def to_config(self) -> dict[str, Any]:
        mean_std = self.normalization
        return {
            "factory": self.factory,
            "task": self.task,
            "input_size": None if self.input_size is None else list(self.input_size),
            "normalization": None if mean_std is None else [list(v) for v in mean_std],
            "val_fraction": self.val_fraction,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ModelSpec":
        size, mean_std = config.get("input_size"), config.get("normalization")
        return cls(
            factory=str(config["factory"]),
            task=config.get("task"),
            input_size=None if size is None else (int(size[0]), int(size[1])),
            normalization=None if mean_std is None else (tuple(mean_std[0]), tuple(mean_std[1])),
            val_fraction=config.get("val_fraction"),
        )


def import_factory(spec: str) -> Callable[..., Any]:
    """The callable named by ``pkg.module:factory`` (the current directory importable)."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise AjpqError(f"--model {spec!r} is not {FACTORY_FORM}, e.g. tests.models:resnet_tiny")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does, so a local package imports
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module may raise anything while importing
        raise AjpqError(
            f"--model {spec!r}: module {module_name!r} does not import "
            f"({type(error).__name__}: {error}); run from the folder that holds it"
        ) from None
    factory = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise AjpqError(f"--model {spec!r}: module {module_name!r} has no {attribute!r}")
    if not callable(factory):
        raise AjpqError(f"--model {spec!r}: {attribute!r} is not callable; name a factory")
    return factory


def build_model(spec: str) -> nn.Module:
    """Call the factory with no arguments; it must return an ``nn.Module``."""
    try:
        model = import_factory(spec)()
    except AjpqError:
        raise
    except Exception as error:  # the user's factory may raise anything
        raise AjpqError(
            f"--model {spec!r}: calling it failed ({type(error).__name__}: {error}); give a "
            "factory that builds the model with no arguments"
        ) from None
    if not isinstance(model, nn.Module):
        raise AjpqError(
            f"--model {spec!r} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def load_state(model: nn.Module, state: Any, source: str) -> nn.Module:
    """Load ``state`` into ``model`` strictly; ``source`` names where it came from."""
    if not isinstance(state, dict):
        raise AjpqError(f"{source} holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise AjpqError(
            f"{source} does not match the --model's layers ({first[0].strip().rstrip('.')}); "
            "give the weights saved from this model"
        ) from None
    return model


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """``--weights``: a state_dict file saved with ``torch.save(model.state_dict(), path)``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AjpqError(f"--weights {path} does not exist") from None
    except Exception as error:  # torch.load raises many types on a bad file
        raise AjpqError(
            f"--weights {path} is not a torch state_dict file ({type(error).__name__}); save "
            "one with torch.save(model.state_dict(), path)"
        ) from None
    return load_state(model, state, f"--weights {path}")


def parse_size(text: str, option: str = "--input-size") -> tuple[int, int]:
    """'32x32' -> (32, 32)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise AjpqError(f"{option} {text!r} is not HxW, e.g. 32x32") from None
    if height < 1 or width < 1:
        raise AjpqError(f"{option} {text!r} must be positive, e.g. 32x32")
    return height, width


def parse_normalization(text: str) -> Normalization:
    """'0.5,0.25' (one mean and std) or '0.485,0.456,0.406/0.229,0.224,0.225' (per channel)."""
    example = "e.g. 0.5,0.25 or 0.485,0.456,0.406/0.229,0.224,0.225"
    parts = text.split("/")
    try:
        if len(parts) == 1:
            values = [float(v) for v in parts[0].split(",")]
            if len(values) != 2:
                raise ValueError
            mean, std = values[:1], values[1:]
        elif len(parts) == 2:
            mean, std = ([float(v) for v in part.split(",")] for part in parts)
        else:
            raise ValueError
    except ValueError:
        raise AjpqError(f"--normalize {text!r} is not MEAN,STD or MEANS/STDS, {example}") from None
    if len(mean) != len(std):
        raise AjpqError(f"--normalize {text!r} has {len(mean)} means but {len(std)} stds")
    if min(std) <= 0:
        raise AjpqError(f"--normalize {text!r}: every std must be positive")
    return tuple(mean), tuple(std)


def make_task(name: str | None, model: nn.Module) -> Task:
    """``--task`` by name; without it, the task the model implies (Detection with anchors)."""
    if name is None:
        return default_task(model)
    if name not in TASKS:
        raise AjpqError(f"--task {name!r} is unknown; choose one of {', '.join(sorted(TASKS))}")
    if name == "detection":
        anchors = getattr(model, "anchors", None)
        if anchors is None:
            raise AjpqError(
                f"--task detection needs anchors, and {type(model).__name__} has no `anchors` "
                "attribute; give the model one or use --task classification"
            )
        return TASKS[name](anchors)
    return TASKS[name]()


class Standardized(nn.Module):
    """Training only: feeds ``model`` ``(pixels / 255 - mean) / std``, as it was trained."""

    def __init__(self, model: nn.Module, normalization: Normalization) -> None:
        super().__init__()
        self.model = model
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in normalization)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels / 255.0 - self.mean) / self.std)


def image_size(data: Samples) -> tuple[int, int]:
    height, width = data.image(0).shape[1:]
    return int(height), int(width)


def resized(data: Samples, size: tuple[int, int]) -> Samples:
    """The same samples with images resized bilinearly to ``size`` (boxes are relative)."""
    if image_size(data) == size:
        return data
    images = getattr(data, "images", None)
    if not dataclasses.is_dataclass(data) or not isinstance(images, np.ndarray):
        raise InvalidData(f"--input-size {size[0]}x{size[1]}: cannot resize these samples")
    pixels = resize_pixels(torch.from_numpy(images), size)
    return dataclasses.replace(data, images=pixels)  # type: ignore[type-var]


def load_split(path: Path, val_fraction: float) -> tuple[Samples, Samples]:
    """(train, val) from ``--data``: the file's own val_* arrays, or a random share of it
    (the same one every time: seeded with ``SPLIT_SEED``)."""
    from ajpq.data import ArraySamples, load_samples

    samples = load_samples(path)
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if "val_images" in keys and keys & {"val_labels", "val_boxes"}:
            targets = archive["val_labels" if "val_labels" in keys else "val_boxes"]
            return samples, ArraySamples(archive["val_images"], targets)
    if not 0.0 < val_fraction < 1.0:
        raise AjpqError(f"--val-fraction {val_fraction} must lie strictly between 0 and 1")
    count = len(samples)
    val_count = int(round(count * val_fraction))
    if not 0 < val_count < count:
        raise AjpqError(
            f"--val-fraction {val_fraction} of {count} images leaves no train or val image; "
            "give more images or another fraction"
        )
    return split(samples, val_count, SPLIT_SEED)


@dataclass(frozen=True)
class UserArgs:
    """The user-model options as given on the command line (None: not given)."""

    model: str | None = None
    weights: Path | None = None
    data: Path | None = None
    task: str | None = None
    input_size: str | None = None
    normalize: str | None = None
    val_fraction: float | None = None

    def check_without_model(self) -> None:
        """Without --model, the options that describe a user's model are refused."""
        for option in ("weights", "data", "task", "input_size", "normalize", "val_fraction"):
            if getattr(self, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise AjpqError(
                    f"{flag} needs --model {FACTORY_FORM}; without --model ajpq works on "
                    "Skynet and synthetic aerial data"
                )


@dataclass(frozen=True)
class UserRun:
    """A user's model with its weights, task and data, ready for train/quantize/search."""

    model: nn.Module
    spec: ModelSpec
    task: Task | None  # None only where nothing is trained (quantize without a fine-tune)
    train: Samples | None
    val: Samples | None


def user_run(
    args: UserArgs,
    checkpoint: Path | None,
    seed: int,
    need_weights: bool,
    need_data: bool,
) -> UserRun:
    """Build --model, load its weights (a user checkpoint or --weights), read --data."""
    assert args.model is not None
    torch.manual_seed(seed)  # the factory's initialisation is reproducible
    model = build_model(args.model)
    stored = stored_spec(model, args, checkpoint, need_weights)
    train = val = None
    given = (args.val_fraction, stored.val_fraction, DEFAULT_VAL_FRACTION)
    val_fraction = next(value for value in given if value is not None)
    if args.data is not None:
        train, val = load_split(args.data, val_fraction)
    elif need_data:
        raise AjpqError(
            f"--model {args.model} needs --data data.npz (images + labels or boxes; "
            "`ajpq data digits -o digits.npz` writes one)"
        )
    size = chosen_size(model, args, stored, val)
    if size is not None and train is not None and val is not None:
        train, val = resized(train, size), resized(val, size)
    normalization = parse_normalization(args.normalize) if args.normalize else stored.normalization
    task_name = args.task or stored.task
    task = None  # quantize without a fine-tune needs none
    if need_data or task_name is not None or getattr(model, "anchors", None) is not None:
        task = make_task(task_name, model)
    if task is not None and val is not None:
        check_targets(task, val, args.data)
    found = task_name or (None if task is None else task_key(task))
    spec = ModelSpec(args.model, found, size, normalization, val_fraction)
    return UserRun(model, spec, task, train, val)


def stored_spec(
    model: nn.Module, args: UserArgs, checkpoint: Path | None, need_weights: bool
) -> ModelSpec:
    """Load the weights into ``model``; the spec a user checkpoint stored (else empty)."""
    from ajpq.models.checkpoint import is_user_checkpoint, read_checkpoint

    assert args.model is not None
    if checkpoint is not None and args.weights is not None:
        raise AjpqError(
            f"give either the checkpoint {checkpoint} or --weights {args.weights}, not both"
        )
    if args.weights is not None:
        load_weights(model, args.weights)
        return ModelSpec(args.model)
    if checkpoint is None:
        if need_weights:
            raise AjpqError(
                f"--model {args.model} needs its weights: a checkpoint from `ajpq train "
                "--model ...` or --weights state_dict.pt"
            )
        return ModelSpec(args.model)
    raw = read_checkpoint(checkpoint)
    if not is_user_checkpoint(raw):
        raise AjpqError(
            f"{checkpoint} holds ajpq's Skynet, not a --model's weights; drop --model to use "
            "it, or give a checkpoint from `ajpq train --model ...`"
        )
    load_state(model, raw["state_dict"], str(checkpoint))
    return ModelSpec.from_config(raw["config"])


def chosen_size(
    model: nn.Module, args: UserArgs, stored: ModelSpec, val: Samples | None
) -> tuple[int, int] | None:
    """--input-size, else the checkpoint's, else the model's ``input_size``, else the data's."""
    if args.input_size is not None:
        return parse_size(args.input_size)
    if stored.input_size is not None:
        return stored.input_size
    attribute = getattr(model, "input_size", None)
    if attribute is not None:
        return int(attribute[0]), int(attribute[1])
    return None if val is None else image_size(val)


def task_key(task: Task) -> str | None:
    """The TASKS name of a built-in task (None for another kind)."""
    return next((name for name, kind in TASKS.items() if type(task) is kind), None)


def check_targets(task: Task, data: Samples, path: Path | None) -> None:
    """Classification needs class labels (N,), detection boxes (N, 4): say which is missing."""
    _, targets = next(data.batches(1))
    name = task_key(task)
    if name == "classification" and (targets.dim() != 1 or targets.dtype.is_floating_point):
        raise AjpqError(
            f"--task classification needs integer class labels, but --data {path} holds "
            f"targets of shape {tuple(targets.shape[1:])}; save `labels` (N,) in it"
        )
    if name == "detection" and tuple(targets.shape[1:]) != (4,):
        raise AjpqError(
            f"--task detection needs one box (x0, y0, x1, y1) per image, but --data {path} "
            f"holds targets of shape {tuple(targets.shape[1:])}; save `boxes` (N, 4) in it"
        )
