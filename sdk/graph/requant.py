"""Integer requantization: ``out = clamp((acc * multiplier + 2^(shift-1)) >> shift)``.

The real factor M = s_in * s_w / s_out is held as an int32 multiplier in [2^30, 2^31) and a
right shift, as TFLite does; the product is taken in 64 bits and rounded once (TFLite's
single-rounding mode), i.e. round half up. On a Cortex-M this is SMULL + add + shift.

``requantize_double`` is TFLite's default "double rounding" (what the pip TFLM interpreter
and CMSIS-NN run): a rounding doubling high multiply, then a rounding divide by a power of
two, each rounding half away from zero; ``tflite_multipliers`` computes the multipliers as
TFLite does from the float32 scales in a .tflite file.
"""

import numpy as np

from ajpq.errors import InvalidGraph

MULTIPLIER_BITS = 31
MAX_SHIFT = 62
ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD widens both inputs by 2^20 before rescaling them


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with multiplier * 2^-shift ~= real, multiplier < 2^31."""
    multiplier, shift = quantize_multipliers(np.array([real]))
    return int(multiplier[0]), int(shift[0])


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (int32 multiplier, int8 shift) for the factors ``reals``; a factor that is
    not positive gets (0, 1)."""
    reals = np.asarray(reals, dtype=np.float64).ravel()
    positive = reals > 0.0
    mantissa, exponent = np.frexp(np.where(positive, reals, 0.5))  # mantissa in [0.5, 1)
    multiplier = np.round(mantissa * float(1 << MULTIPLIER_BITS)).astype(np.int64)  # half even
    carry = multiplier == 1 << MULTIPLIER_BITS
    multiplier[carry] //= 2
    shift = MULTIPLIER_BITS - (exponent.astype(np.int64) + carry)
    excess = np.clip(shift - MAX_SHIFT, 0, 63)  # so small that only the rounding could matter
    multiplier >>= excess
    shift = np.minimum(shift, MAX_SHIFT)
    too_large = positive & (shift < 1)
    if too_large.any():
        real = reals[np.flatnonzero(too_large)[0]]
        raise InvalidGraph(
            f"requantization factor {real:.3g} is too large for a 31-bit multiplier: an "
            "activation scale collapsed (a layer silent on the calibration images); quantize "
            "with calibration= real images"
        )
    multiplier[~positive], shift[~positive] = 0, 1
    return multiplier.astype(np.int32), shift.astype(np.int8)


def quantize_multiplier_pairs(
    reals_a: np.ndarray, reals_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two factors per channel sharing one shift (a residual add): the shift of the larger,
    each multiplier rounded at it. Returns int64 multipliers a and b, and int8 shifts."""
    reals_a = np.asarray(reals_a, dtype=np.float64).ravel()
    reals_b = np.asarray(reals_b, dtype=np.float64).ravel()
    _, shift = quantize_multipliers(np.maximum(reals_a, reals_b))
    exponent = shift.astype(np.int64)
    multiplier_a = np.round(np.ldexp(reals_a, exponent)).astype(np.int64)
    return multiplier_a, np.round(np.ldexp(reals_b, exponent)).astype(np.int64), shift


def integer_range(bits: int, signed: bool) -> tuple[int, int]:
    """[0, 2^b-1] unsigned, [-2^(b-1), 2^(b-1)-1] signed."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def requantize(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
    channel_axis: int = 1,
) -> np.ndarray:
    """Apply per-channel multiplier/shift to int64 accumulators and clamp to [lo, hi]."""
    m, s = per_channel(acc, multiplier, shift, channel_axis)
    out = (acc.astype(np.int64) * m + (np.int64(1) << (s - 1))) >> s
    return np.clip(out, lo, hi)


def tflite_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 multiplier, right shift) per factor, rounded as TFLite's QuantizeMultiplier does
    (half away from zero; a factor below 2^-32 becomes 0). The shift is ``31 - exponent`` in
    this module's convention, so it may be below 1 for factors >= 1."""
    reals = np.asarray(reals, dtype=np.float64).ravel()
    mantissa, exponent = np.frexp(reals)
    multiplier = np.floor(np.abs(mantissa) * float(1 << MULTIPLIER_BITS) + 0.5).astype(np.int64)
    carry = multiplier == 1 << MULTIPLIER_BITS
    multiplier[carry] //= 2
    exponent = exponent.astype(np.int64) + carry
    tiny = exponent < -31
    multiplier[tiny], exponent[tiny] = 0, 0
    return multiplier.astype(np.int32), (MULTIPLIER_BITS - exponent).astype(np.int8)


def requantize_double(
    acc: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
    channel_axis: int = 1,
) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier per channel (double rounding), clamped."""
    m, s = per_channel(acc, multiplier, shift, channel_axis)
    exponent = MULTIPLIER_BITS - s
    x = acc.astype(np.int64) << np.maximum(exponent, 0)
    product = x * m
    nudged = product + np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # divide, toward zero
    right = np.maximum(-exponent, 0)
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    out = (high >> right) + ((high & mask) > threshold)
    return np.clip(out, lo, hi)


def rescale_multipliers(reals: np.ndarray, double: bool) -> tuple[np.ndarray, np.ndarray]:
    """The (multiplier, shift) pairs of ``reals`` for a rounding mode: ajpq's own
    (``quantize_multipliers``) or TFLite's (``tflite_multipliers``, with double rounding)."""
    return tflite_multipliers(reals) if double else quantize_multipliers(reals)


def rescale(
    acc: np.ndarray, reals: np.ndarray, lo: int, hi: int, double: bool, channel_axis: int = 1
) -> np.ndarray:
    """``acc`` requantized by the factors ``reals`` (one per channel) in a rounding mode."""
    multiplier, shift = rescale_multipliers(reals, double)
    requant = requantize_double if double else requantize
    return requant(acc, multiplier, shift, lo, hi, channel_axis)


def tflite_add_multipliers(
    scale_a: float, scale_b: float, scale_out: float
) -> dict[str, tuple[int, int]]:
    """TFLite's int8 ADD parameters from its three float32 scales: each input rescaled to
    twice the larger input scale after a left shift of ``ADD_LEFT_SHIFT``, the sum rescaled to
    the output; (multiplier, shift) per step, as TFLite computes them."""
    a, b, out = (np.float64(np.float32(s)) for s in (scale_a, scale_b, scale_out))
    twice_max = 2.0 * max(a, b)
    reals = np.array([a / twice_max, b / twice_max, twice_max / ((1 << ADD_LEFT_SHIFT) * out)])
    multiplier, shift = tflite_multipliers(reals)
    return {k: (int(multiplier[i]), int(shift[i])) for i, k in enumerate(("a", "b", "out"))}


def tflite_add(
    a: np.ndarray, b: np.ndarray, params: dict[str, tuple[int, int]], lo: int, hi: int
) -> np.ndarray:
    """TFLite's int8 ADD on integers without their zero points (``tflite_add_multipliers``),
    channels on axis 1."""
    channels = a.shape[1]

    def pair(key: str) -> tuple[np.ndarray, np.ndarray]:
        return np.full(channels, params[key][0]), np.full(channels, params[key][1])

    summed = tflite_add_sum(a, b, *pair("a"), *pair("b"), ADD_LEFT_SHIFT)
    return requantize_double(summed, *pair("out"), lo, hi)


def tflite_add_sum(
    a: np.ndarray,
    b: np.ndarray,
    multiplier_a: np.ndarray,
    shift_a: np.ndarray,
    multiplier_b: np.ndarray,
    shift_b: np.ndarray,
    left_shift: int,
) -> np.ndarray:
    """TFLite's int8 ADD before its output rescale: each input shifted left by
    ``left_shift`` and rescaled (double rounding, unclamped) to twice the larger input scale,
    then the two summed; one (multiplier, shift) per channel (axis 1)."""
    wide = np.iinfo(np.int64)
    left = np.int64(1) << left_shift
    scaled_a = requantize_double(
        a.astype(np.int64) * left, multiplier_a, shift_a, wide.min, wide.max
    )
    scaled_b = requantize_double(
        b.astype(np.int64) * left, multiplier_b, shift_b, wide.min, wide.max
    )
    return scaled_a + scaled_b


def per_channel(
    acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, channel_axis: int
) -> tuple[np.ndarray, np.ndarray]:
    """Multiplier and shift as int64, shaped to broadcast along ``acc``'s channel axis."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    return multiplier.astype(np.int64).reshape(shape), shift.astype(np.int64).reshape(shape)
