"""A real classification dataset that needs no download: scikit-learn's handwritten digits.

1,797 scans of the digits 0-9 (UCI "optical recognition of handwritten digits": 8x8 grayscale,
16 levels), shipped inside the scikit-learn wheel. :func:`digits` scales the levels to pixels
0..255 and upsamples the images bilinearly to ``input_size``, so a CNN has something to pool.
"""

import numpy as np
import torch

from ajpq.data.samples import ArraySamples, resize_pixels, split
from ajpq.errors import InvalidData

CLASS_COUNT = 10
LEVELS = 16  # the scans' grey levels are 0..16


def digits_arrays(input_size: tuple[int, int] = (32, 32)) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as uint8 (N, 1, H, W) pixels and their labels as int64 (N,)."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 (slow import, only when used)

    height, width = input_size
    if height < 8 or width < 8:
        raise InvalidData(f"digits input_size must be at least 8x8; got {height}x{width}.")
    found = load_digits()
    levels = torch.from_numpy(found.images.astype(np.float32))[:, None] * (255.0 / LEVELS)
    return resize_pixels(levels, (height, width)), found.target.astype(np.int64)


def digits(
    val_count: int = 360, input_size: tuple[int, int] = (32, 32), seed: int = 0
) -> tuple[ArraySamples, ArraySamples]:
    """(train, val) digits, split at random by ``seed``; ``val_count`` images go to val."""
    images, labels = digits_arrays(input_size)
    if not 0 < val_count < len(labels):
        raise InvalidData(f"val_count must lie in 1..{len(labels) - 1}; got {val_count}.")
    return split(ArraySamples(images, labels), val_count, seed)  # type: ignore[return-value]
