"""Quantization: policies, capture, the Brevitas QAT model, and folding a user's input
normalization (``fold_input``)."""

from ajpq.quant.fold_input import fold_input

__all__ = ["fold_input"]
