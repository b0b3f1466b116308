"""Integer requantization: ``out = clamp((acc * multiplier + 2^(shift-1)) >> shift)``.

The real factor M = s_in * s_w / s_out is held as an int32 multiplier in [2^30, 2^31) and a
right shift, as TFLite does; the product is taken in 64 bits and rounded once (TFLite's
single-rounding mode), i.e. round half up. On a Cortex-M this is SMULL + add + shift.
"""

import math

import numpy as np

MULTIPLIER_BITS = 31
MAX_SHIFT = 62


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with multiplier * 2^-shift ~= real, multiplier < 2^31."""
    if not real > 0.0:
        return 0, 1
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    multiplier = round(mantissa * (1 << MULTIPLIER_BITS))
    if multiplier == 1 << MULTIPLIER_BITS:
        multiplier //= 2
        exponent += 1
    shift = MULTIPLIER_BITS - exponent
    if shift > MAX_SHIFT:  # so small that only the rounding constant could matter
        multiplier >>= shift - MAX_SHIFT
        shift = MAX_SHIFT
    if shift < 1:
        raise ValueError(f"requantization factor {real} is too large for a 31-bit multiplier")
    return multiplier, shift


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    return (
        np.array([p[0] for p in pairs], dtype=np.int32),
        np.array([p[1] for p in pairs], dtype=np.int8),
    )


def requantize(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
    channel_axis: int = 1,
) -> np.ndarray:
    """Apply per-channel multiplier/shift to int64 accumulators and clamp to [lo, hi]."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    m = multiplier.astype(np.int64).reshape(shape)
    s = shift.astype(np.int64).reshape(shape)
    out = (acc.astype(np.int64) * m + (np.int64(1) << (s - 1))) >> s
    return np.clip(out, lo, hi)
