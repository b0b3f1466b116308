"""Read a dataset file (.npz) into Samples, whatever task it is for.

Keys: ``images`` (uint8 (N, C, H, W) or (N, H, W)) and either ``labels`` (int (N,), a
classifier's classes) or ``boxes`` (float32 (N, 4), one box per image). A file written by
``ajpq.data.Dataset.save`` (boxes, labels and class_names) reads as a detection Dataset.
"""

from pathlib import Path

import numpy as np

from ajpq.data.dataset import Dataset
from ajpq.data.samples import ArraySamples, Samples
from ajpq.errors import InvalidData


def load_samples(path: str | Path) -> Samples:
    """The samples in the .npz at ``path`` (see the module doc for its keys)."""
    source = Path(path)
    if not source.is_file():
        raise InvalidData(f"dataset file {source} does not exist; give an .npz with images.")
    try:
        with np.load(source, allow_pickle=False) as archive:
            keys = set(archive.files)
            if {"boxes", "labels", "class_names"} <= keys:
                return Dataset.load(source)
            if "images" not in keys or not keys & {"labels", "boxes"}:
                raise InvalidData(
                    f"dataset file {source} has keys {sorted(keys)}; it needs `images` and "
                    "`labels` (classification) or `boxes` (detection)."
                )
            targets = archive["labels"] if "labels" in keys else archive["boxes"]
            return ArraySamples(archive["images"], targets)
    except (OSError, ValueError) as error:
        raise InvalidData(
            f"dataset file {source} is not a readable .npz ({error}); write it with numpy.savez."
        ) from error
