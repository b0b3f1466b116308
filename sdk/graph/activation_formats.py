"""The output format of every op, as ``skeleton`` and ``lower`` read it.

The rule is the quantizer's, so it lives in ``ajpq.quant.activation_formats`` (``quantize``
builds its quantizers from it); this module only names it for the graph layer.
"""

from ajpq.quant.activation_formats import (
    ACCUMULATOR_BITS,
    EXTRA_ACT_BITS,
    ActFormat,
    activation_formats,
    requantizing_concats,
)

__all__ = [
    "ACCUMULATOR_BITS",
    "EXTRA_ACT_BITS",
    "ActFormat",
    "activation_formats",
    "requantizing_concats",
]
