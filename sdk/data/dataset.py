"""Dataset: single-object detection samples held in memory as numpy arrays.

One image holds exactly one object (the DAC-SDC setting), so a sample is an image and one
box. Boxes are normalized ``[x0, y0, x1, y1]`` in 0..1 of the image width and height.
Images are kept as uint8 ``(N, 3, H, W)``; the torch views hand out float32 raw pixel values
0..255 (the model normalizes them itself).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ajpq.data.samples import check_batch_size, checked_indices, describe, order
from ajpq.errors import InvalidData

_NPZ_KEYS = ("images", "boxes", "labels", "class_names")


@dataclass(frozen=True, eq=False)
class Dataset:
    """N images, one box and one class label each.

    images: uint8 (N, 3, H, W); boxes: float32 (N, 4) normalized x0, y0, x1, y1;
    labels: int64 (N,) indexing class_names.
    """

    images: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_images(self.images)
        count = self.images.shape[0]
        _check_boxes(self.boxes, count)
        _check_labels(self.labels, count, len(self.class_names))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image as float32 (3, H, W) raw pixel values 0..255 and its box as float32 (4,)."""
        image = torch.from_numpy(self.images[index].astype(np.float32))
        box = torch.from_numpy(self.boxes[index].copy())
        return image, box

    @property
    def input_size(self) -> tuple[int, int]:
        """Image height and width in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """A new Dataset holding the samples at `indices`, in that order."""
        index_array = checked_indices(indices, len(self))
        return Dataset(
            images=self.images[index_array],
            boxes=self.boxes[index_array],
            labels=self.labels[index_array],
            class_names=self.class_names,
        )

    def save(self, path: str | Path) -> Path:
        """Write the dataset to one uncompressed .npz file and return its path."""
        target = Path(path)
        if target.suffix != ".npz":
            target = target.with_name(target.name + ".npz")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            target,
            images=self.images,
            boxes=self.boxes,
            labels=self.labels,
            class_names=np.asarray(self.class_names, dtype=np.str_),
        )
        return target

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset written by `Dataset.save`."""
        source = Path(path)
        if not source.is_file():
            raise InvalidData(f"dataset file {source} does not exist; write it with Dataset.save.")
        try:
            with np.load(source, allow_pickle=False) as archive:
                missing = [key for key in _NPZ_KEYS if key not in archive.files]
                if missing:
                    raise InvalidData(
                        f"dataset file {source} lacks {', '.join(missing)}; "
                        "rewrite it with Dataset.save."
                    )
                arrays = {key: archive[key] for key in _NPZ_KEYS}
        except (OSError, ValueError) as error:
            raise InvalidData(
                f"dataset file {source} is not a readable .npz ({error}); "
                "rewrite it with Dataset.save."
            ) from error
        return cls(
            images=arrays["images"],
            boxes=arrays["boxes"],
            labels=arrays["labels"],
            class_names=tuple(str(name) for name in arrays["class_names"].reshape(-1)),
        )

    def image(self, index: int) -> np.ndarray:
        """One image as uint8 (3, H, W): what a board is sent."""
        return self.images[index]

    def batches(
        self, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images float32 (B, 3, H, W) 0..255, boxes float32 (B, 4)); last batch may be
        smaller. With shuffle, the order is a permutation drawn from `seed`."""
        check_batch_size(batch_size)
        chosen_order = order(len(self), shuffle, seed)
        for start in range(0, len(self), batch_size):
            chosen = chosen_order[start : start + batch_size]
            images = torch.from_numpy(self.images[chosen].astype(np.float32))
            boxes = torch.from_numpy(np.ascontiguousarray(self.boxes[chosen]))
            yield images, boxes


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise InvalidData(f"Dataset images must be a uint8 numpy array; got {describe(images)}.")
    if images.ndim != 4 or images.shape[1] != 3:
        raise InvalidData(f"Dataset images must have shape (N, 3, H, W); got {images.shape}.")


def _check_boxes(boxes: np.ndarray, count: int) -> None:
    if not isinstance(boxes, np.ndarray) or boxes.dtype != np.float32:
        raise InvalidData(f"Dataset boxes must be a float32 numpy array; got {describe(boxes)}.")
    if boxes.shape != (count, 4):
        raise InvalidData(
            f"Dataset boxes must have shape ({count}, 4) to match the images; got {boxes.shape}."
        )
    if count == 0:
        return
    if not np.isfinite(boxes).all() or boxes.min() < 0.0 or boxes.max() > 1.0:
        raise InvalidData("Dataset boxes must be normalized to 0..1; some lie outside.")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise InvalidData("Dataset boxes must be ordered x0 <= x1 and y0 <= y1; some are not.")


def _check_labels(labels: np.ndarray, count: int, class_count: int) -> None:
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
        raise InvalidData(f"Dataset labels must be an int64 numpy array; got {describe(labels)}.")
    if labels.shape != (count,):
        raise InvalidData(
            f"Dataset labels must have shape ({count},) to match the images; got {labels.shape}."
        )
    if count and (labels.min() < 0 or labels.max() >= class_count):
        raise InvalidData(
            f"Dataset labels must index class_names (0..{class_count - 1}); "
            f"got {labels.min()}..{labels.max()}."
        )
