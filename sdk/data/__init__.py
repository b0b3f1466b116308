"""Datasets ajpq trains and evaluates on: synthetic aerial scenes and the real DAC-SDC set."""

from ajpq.data.aerial import CLASS_NAMES, aerial
from ajpq.data.dacsdc import dacsdc
from ajpq.data.dataset import Dataset

__all__ = ["CLASS_NAMES", "Dataset", "aerial", "dacsdc"]
