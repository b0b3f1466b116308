"""Quantization: policies, capture, the Brevitas QAT model, and folding a user's input
normalization (``fold_input``, ``normalized_to_pixels``)."""

from ajpq.quant.fold_input import fold_input, normalized_to_pixels

__all__ = ["fold_input", "normalized_to_pixels"]
