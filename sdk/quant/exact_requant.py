"""The exact integer results of the requantizers that are not a layer (eval mode).

A conv or linear returns its integer result in eval mode (``QConv2d.integer_output``); an
average pool, a residual add and a requantizing concat requantize too, and their float
fake-quant lands within rounding of a .5 boundary now and then (a global average pool sums
hundreds of values), so in eval mode they are computed here as the HwGraph computes them: an
int64 sum, then the same multiplier + shift that ``lower`` derives from the same scales.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ajpq.errors import UnsupportedOp
from ajpq.graph.requant import (
    integer_range,
    quantize_multiplier_pairs,
    tflite_add,
    tflite_add_multipliers,
)
from ajpq.quant.qat import QTensor, channel_scales, requantize_torch


def _integers(q: QTensor) -> torch.Tensor:
    return torch.round(q.value / q.scale).to(torch.int64)


def avgpool_integers(
    x: QTensor,
    out: QTensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    double: bool = False,
) -> torch.Tensor:
    """golden's avgpool: the window's integer sum requantized by in_scale / area / out_scale
    (``double``: in_scale x float32(1 / area) / out_scale, double rounding: the depthwise conv
    of ones that stands for it in a .tflite file)."""
    with torch.no_grad():
        channels = x.value.shape[1]
        area = kernel[0] * kernel[1]
        mean = F.avg_pool2d(_integers(x).double(), kernel, stride)
        acc = torch.round(mean * area).to(torch.int64)  # exact: small integer sums
        real = avgpool_factors(channel_scales(x, channels), area, double)
        lo, hi = integer_range(out.bits, out.signed)
        return requantize_torch(acc, real / channel_scales(out, channels), lo, hi, double)


def avgpool_factors(in_scales: np.ndarray, area: int, double: bool) -> np.ndarray:
    """An average pool's accumulator scale per channel: in_scale / area, or for TFLite
    in_scale x float32(1 / area), the weight scale of its depthwise conv of ones."""
    return in_scales * np.float64(np.float32(1.0 / area)) if double else in_scales / area


def add_integers(
    a: QTensor, b: QTensor, out: QTensor, mask: np.ndarray, double: bool = False
) -> torch.Tensor:
    """golden's add: ``(a * m_a + b * m_b + 2^(s-1)) >> s`` clamped, pruned channels 0
    (``double``: TFLite's ADD, ``ajpq.graph.requant.tflite_add``)."""
    if double:
        return _tflite_add_integers(a, b, out, mask)
    with torch.no_grad():
        channels = out.value.shape[1]
        real_out = channel_scales(out, channels)
        multiplier_a, multiplier_b, shift = quantize_multiplier_pairs(
            channel_scales(a, channels) / real_out, channel_scales(b, channels) / real_out
        )
        multiplier_a[~mask], multiplier_b[~mask] = 0, 0
        shape = (1, -1) + (1,) * (out.value.dim() - 2)
        m_a = torch.from_numpy(multiplier_a.astype(np.int64)).view(shape)
        m_b = torch.from_numpy(multiplier_b.astype(np.int64)).view(shape)
        s = torch.from_numpy(shift.astype(np.int64)).view(shape)
        acc = _integers(a) * m_a + _integers(b) * m_b + (1 << (s - 1))
        lo, hi = integer_range(out.bits, out.signed)
        return torch.clamp(acc >> s, lo, hi)


def _tflite_add_integers(a: QTensor, b: QTensor, out: QTensor, mask: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        params = tflite_add_multipliers(*(tensor_scale(q) for q in (a, b, out)))
        lo, hi = integer_range(out.bits, out.signed)
        integers = tflite_add(_integers(a).numpy(), _integers(b).numpy(), params, lo, hi)
        keep = mask.reshape((1, -1) + (1,) * (integers.ndim - 2))
        return torch.from_numpy(np.where(keep, integers, 0))


def tensor_scale(q: QTensor, name: str = "") -> float:
    """``q``'s one scale (TFLite's activations have one per tensor)."""
    scales = q.scale.detach().reshape(-1)
    if not bool(torch.all(scales == scales[0])):
        where = f" of '{name}'" if name else ""
        raise UnsupportedOp(
            f"the output{where} has a scale per channel, which a .tflite tensor cannot hold; "
            'quantize with target="tflite"'
        )
    return float(scales[0])


def concat_integers(inputs: list[QTensor], out: QTensor, double: bool = False) -> torch.Tensor:
    """golden's requantizing concat: each input channel requantized by its scale / out_scale."""
    with torch.no_grad():
        joined = torch.cat([_integers(q) for q in inputs], dim=1)
        real_in = np.concatenate([channel_scales(q, q.value.shape[1]) for q in inputs])
        lo, hi = integer_range(out.bits, out.signed)
        real = real_in / channel_scales(out, joined.shape[1])
        return requantize_torch(joined, real, lo, hi, double)
