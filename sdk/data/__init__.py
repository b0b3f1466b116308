"""Data ajpq trains and evaluates on.

- ``as_samples``: wraps what a user has (a torch Dataset or DataLoader, numpy arrays);
- ``Dataset``: single-object detection (one box per image), with ``aerial`` (synthetic
  DAC-SDC-like scenes) and ``dacsdc`` (the real DAC-SDC set, from disk);
- ``digits``: a real classification set shipped with scikit-learn (no download).
"""

from ajpq.data.aerial import CLASS_NAMES, aerial
from ajpq.data.dacsdc import dacsdc
from ajpq.data.dataset import Dataset
from ajpq.data.digits import digits
from ajpq.data.npz import load_samples
from ajpq.data.samples import ArraySamples, Samples, TorchSamples, as_samples

__all__ = [
    "CLASS_NAMES",
    "ArraySamples",
    "Dataset",
    "Samples",
    "TorchSamples",
    "aerial",
    "as_samples",
    "dacsdc",
    "digits",
    "load_samples",
]
