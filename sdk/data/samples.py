"""Samples: the one view of data that train, evaluate and search read.

Users bring what PyTorch users have — a ``torch.utils.data.Dataset`` or ``DataLoader``
yielding (image, target), or numpy arrays — and :func:`as_samples` wraps it. Images come out
as float raw pixel values 0..255, (N, C, H, W), because the deployed graph takes uint8 pixels:

- uint8 images are pixels;
- float images are read as the output of ``ToTensor()`` (0..1) or, with
  ``normalization=(mean, std)``, of ``Normalize(mean, std)`` after it, and mapped back to
  whole pixels (an image that does not map to whole pixels is refused).

A torch Dataset is read lazily, a batch at a time: it is never copied into memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, default_collate
from torch.utils.data import Dataset as TorchDataset

from ajpq.errors import InvalidData

Normalization = tuple[Sequence[float], Sequence[float]]
PIXEL_TOLERANCE = 0.02  # how far from a whole pixel value a mapped-back float image may be


@runtime_checkable
class Samples(Protocol):
    """Images (raw pixels, float 0..255, NCHW) with one target each."""

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def subset(self, indices: Sequence[int] | np.ndarray) -> Samples: ...

    def image(self, index: int) -> np.ndarray:
        """One image as uint8 (C, H, W): what a board is sent."""
        ...


def calibration_batch(data: Samples | None) -> torch.Tensor | None:
    """Up to 32 real images (raw pixels) to initialise the activation scales."""
    return None if data is None else next(data.batches(32))[0]


def order(count: int, shuffle: bool, seed: int) -> np.ndarray:
    """Sample order for one pass: identity, or a permutation drawn from ``seed``."""
    return np.random.default_rng(seed).permutation(count) if shuffle else np.arange(count)


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise InvalidData(f"batch_size must be at least 1; got {batch_size}.")


def checked_indices(indices: Sequence[int] | np.ndarray, count: int) -> np.ndarray:
    """Indices as int64, each within 0..count-1 (negative ones count from the end)."""
    index_array = np.asarray(indices, dtype=np.int64).reshape(-1)
    if index_array.size and (index_array.min() < -count or index_array.max() >= count):
        raise InvalidData(
            f"subset indices must lie in 0..{count - 1}; got {index_array.min()}.."
            f"{index_array.max()}."
        )
    return index_array


@dataclass(frozen=True, eq=False)
class ArraySamples:
    """Images uint8 (N, C, H, W) — or (N, H, W), one channel — and targets (N, ...).

    Targets are class labels (N,) for classification or anything a task reads, one row each.
    """

    images: np.ndarray
    targets: np.ndarray

    def __post_init__(self) -> None:
        images = self.images
        if isinstance(images, np.ndarray) and images.ndim == 3:
            object.__setattr__(self, "images", images[:, None])
        check_images(self.images, "images")
        if not isinstance(self.targets, np.ndarray) or len(self.targets) != len(self.images):
            raise InvalidData(
                f"targets must be a numpy array with one row per image ({len(self.images)}); "
                f"got {describe(self.targets)}."
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_batch_size(batch_size)
        chosen_order = order(len(self), shuffle, seed)
        for start in range(0, len(self), batch_size):
            chosen = chosen_order[start : start + batch_size]
            images = torch.from_numpy(np.asarray(self.images[chosen], dtype=np.float32))
            yield images, torch.from_numpy(np.ascontiguousarray(self.targets[chosen]))

    def subset(self, indices: Sequence[int] | np.ndarray) -> ArraySamples:
        chosen = checked_indices(indices, len(self))
        return ArraySamples(self.images[chosen], self.targets[chosen])

    def image(self, index: int) -> np.ndarray:
        return np.asarray(self.images[index], dtype=np.uint8)

    def save(self, path: str | Path) -> Path:
        """Write ``images`` and ``labels`` (the targets) to one .npz file; return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, images=self.images, labels=self.targets)
        return target if target.suffix == ".npz" else target.with_name(target.name + ".npz")


class TorchSamples:
    """A ``torch.utils.data.Dataset`` of (image, target), read a batch at a time.

    ``normalization=(mean, std)`` maps float images back to pixels (see the module doc);
    ``num_workers`` is passed to the DataLoader that reads it.
    """

    def __init__(
        self,
        dataset: TorchDataset[Any],
        normalization: Normalization | None = None,
        num_workers: int = 0,
    ) -> None:
        if not hasattr(dataset, "__len__"):
            raise InvalidData(
                f"{type(dataset).__name__} has no len(); ajpq needs a map-style Dataset."
            )
        self.dataset = dataset
        self.normalization = normalization
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_batch_size(batch_size)
        chosen = Subset(self.dataset, order(len(self), shuffle, seed).tolist())
        loader = DataLoader(chosen, batch_size=batch_size, num_workers=self.num_workers)
        for batch in loader:
            images, targets = unpack(batch)
            yield to_pixels(images, self.normalization), targets

    def subset(self, indices: Sequence[int] | np.ndarray) -> TorchSamples:
        chosen = checked_indices(indices, len(self)).tolist()
        return TorchSamples(Subset(self.dataset, chosen), self.normalization, self.num_workers)

    def image(self, index: int) -> np.ndarray:
        images, _ = unpack(default_collate([self.dataset[index]]))
        return to_pixels(images, self.normalization)[0].numpy().astype(np.uint8)


def unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, targets) from a batch collated as a DataLoader collates it."""
    if not isinstance(batch, list | tuple) or len(batch) != 2:
        raise InvalidData(
            "a dataset sample must be an (image, target) pair; make __getitem__ return one."
        )
    return torch.as_tensor(batch[0]), torch.as_tensor(batch[1])


def to_pixels(images: torch.Tensor, normalization: Normalization | None) -> torch.Tensor:
    """Raw pixels 0..255 as float32 from uint8 images, or from float ones (see module doc)."""
    if images.dim() == 3:
        images = images[:, None]
    if images.dtype == torch.uint8:
        return images.float()
    if not images.dtype.is_floating_point:
        raise InvalidData(f"images must be uint8 or float; got {images.dtype}.")
    pixels = images.float()
    if normalization is not None:
        mean, std = (
            torch.as_tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in normalization
        )
        pixels = pixels * std + mean
    pixels = pixels * 255.0
    whole = pixels.round()
    if (pixels - whole).abs().max() > PIXEL_TOLERANCE or whole.min() < 0 or whole.max() > 255:
        given = "no normalization" if normalization is None else f"mean/std {normalization}"
        raise InvalidData(
            f"float images do not map back to whole pixels 0..255 with {given}; pass the "
            "mean and std your transform normalizes with (--normalize mean,std), or uint8 images."
        )
    return whole


def resize_pixels(images: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Images (N, C, H, W), float or uint8, resized bilinearly to ``size`` as uint8 pixels."""
    scaled = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
    return scaled.round().clamp(0, 255).to(torch.uint8).numpy()


def split(samples: Samples, val_count: int, seed: int) -> tuple[Samples, Samples]:
    """(train, val): ``val_count`` samples drawn at random by ``seed`` go to val."""
    order = np.random.default_rng(seed).permutation(len(samples))
    return samples.subset(order[val_count:]), samples.subset(order[:val_count])


def check_images(images: Any, name: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise InvalidData(f"{name} must be a uint8 numpy array; got {describe(images)}.")
    if images.ndim != 4:
        raise InvalidData(f"{name} must have shape (N, C, H, W) or (N, H, W); got {images.shape}.")


def describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def as_samples(data: Any, normalization: Normalization | None = None) -> Samples:
    """Wrap what the user has: Samples as they are, a torch Dataset or DataLoader, or an
    (images, targets) pair of numpy arrays."""
    if isinstance(data, Samples):
        return data
    if isinstance(data, DataLoader):
        return TorchSamples(data.dataset, normalization, data.num_workers)
    if isinstance(data, TorchDataset):
        return TorchSamples(data, normalization)
    if isinstance(data, tuple | list) and len(data) == 2:
        return ArraySamples(data[0], np.asarray(data[1]))
    raise InvalidData(
        f"cannot read data of type {type(data).__name__}; give a torch Dataset or DataLoader "
        "of (image, target), an (images, targets) pair of numpy arrays, or ajpq.data.Dataset."
    )
