"""Brevitas QAT building blocks: per-channel weight bit-widths, integer bias, masks.

Tensors travel between ops as :class:`QTensor` (a float value that is an integer times a
scale). Weights use Brevitas' per-channel quantizer with a per-channel bit-width injected
and each channel's scale from its largest |w| or, ``weight_scale="mse"``, the scale with the
least squared error (clips outliers; better at uniform 4 bits: docs/quantization.md);
activations are Brevitas QuantReLU / QuantIdentity. The bias is rounded to the accumulator
scale (input scale x weight scale) with a straight-through estimator, so the integer path
in the hardware graph adds exactly the same bias.

Training uses float fake-quant (straight-through gradients). In eval mode conv and linear
layers return the exact integer result instead (integer accumulation, multiplier + shift
requantization): float32 accumulation lands within rounding of a .5 boundary on about one
output in a million, and such a 1-LSB difference spreads through the layers that follow.
"""

from typing import NamedTuple

import brevitas.nn as qnn
import numpy as np
import torch
import torch.nn.functional as F
from brevitas.function import round_ste
from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerChannelFloatMSE
from torch import nn

from ajpq.errors import UnsupportedOp
from ajpq.graph.requant import integer_range, quantize_multipliers, rescale
from ajpq.quant.activation_formats import INPUT_BITS, input_format

WEIGHT_SCALES = {
    "max": Int8WeightPerChannelFloat,  # each channel's largest |w| is its top level
    "mse": Int8WeightPerChannelFloatMSE,  # the scale with the least squared weight error
}


def check_weight_scale(weight_scale: str) -> str:
    if weight_scale not in WEIGHT_SCALES:
        raise UnsupportedOp(
            f"weight_scale {weight_scale!r} is not one of {tuple(WEIGHT_SCALES)}; pick one of them"
        )
    return weight_scale


class QTensor(NamedTuple):
    value: torch.Tensor  # float, = integer * scale
    scale: torch.Tensor  # scalar, or per channel with shape (1, C, 1, 1) / (1, F)
    bits: int
    signed: bool


def from_brevitas(t: object) -> QTensor:
    return QTensor(t.value, t.scale, int(t.bit_width.item()), bool(t.signed))


class ChannelBits(nn.Module):
    """Injected as Brevitas' weight_bit_width_impl: one bit-width per output channel."""

    def __init__(self, bits: list[int], weight_dims: int = 4) -> None:
        super().__init__()
        safe = [max(b, 2) for b in bits]  # pruned channels are masked; any legal width works
        shape = (-1,) + (1,) * (weight_dims - 1)
        self.register_buffer("bits", torch.tensor(safe, dtype=torch.float32).view(shape))

    def forward(self) -> torch.Tensor:
        return self.bits


def channel_scale(scale: torch.Tensor, channels: int) -> torch.Tensor:
    """A scale as a (channels,) vector."""
    return scale.reshape(-1).expand(channels) if scale.numel() == 1 else scale.reshape(-1)


def channel_scales(q: QTensor, channels: int) -> np.ndarray:
    """``q``'s scale per channel as float64: what lowering and the exact eval path derive
    multipliers from, so both read it the same way."""
    return channel_scale(q.scale.detach(), channels).double().numpy()


def uniform_scale(q: QTensor, layer: str) -> torch.Tensor:
    s = q.scale.reshape(-1)
    if s.numel() > 1 and not bool(torch.all(s == s[0])):
        raise UnsupportedOp(
            f"layer '{layer}' is dense but its input channels have different scales; "
            "requantize the concat first"
        )
    return s[0]


class QConv2d(nn.Module):
    """A conv (or linear) with per-channel bit-widths, integer bias and a channel mask."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        bits: list[int],
        mask: torch.Tensor,
        attrs: dict | None = None,
        linear: bool = False,
        weight_scale: str = "max",
    ) -> None:
        super().__init__()
        self.linear = linear
        self.attrs = dict(attrs or {})
        out_ch = weight.shape[0]
        common = dict(
            weight_quant=WEIGHT_SCALES[check_weight_scale(weight_scale)],
            weight_bit_width_impl=ChannelBits(bits, weight.dim()),
            bias=False,
        )
        if linear:
            self.layer = qnn.QuantLinear(weight.shape[1], out_ch, **common)
        else:
            in_ch = weight.shape[1] * self.attrs["groups"]
            self.layer = qnn.QuantConv2d(
                in_ch, out_ch, self.attrs["kernel"], groups=self.attrs["groups"], **common
            )
        with torch.no_grad():
            self.layer.weight.copy_(weight)
        self.bias = nn.Parameter(bias.detach().clone().float())
        self.register_buffer("mask", mask.float())

    @property
    def depthwise(self) -> bool:
        return not self.linear and self.attrs["groups"] > 1

    def forward(self, x: QTensor, name: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """Return the masked float output and its accumulator scale per output channel."""
        w = self.layer.quant_weight()
        w_scale = w.scale.reshape(-1)
        if self.depthwise:
            in_scale = channel_scale(x.scale, w_scale.numel())
        else:
            in_scale = uniform_scale(x, name)
        acc_scale = in_scale * w_scale
        bias = round_ste(self.bias / acc_scale) * acc_scale
        if self.linear:
            y = F.linear(x.value, w.value, bias)
            return y * self.mask, acc_scale
        y = F.conv2d(
            x.value,
            w.value,
            None,
            self.attrs["stride"],
            self.attrs["padding"],
            1,
            self.attrs["groups"],
        )
        return (y + bias.view(1, -1, 1, 1)) * self.mask.view(1, -1, 1, 1), acc_scale

    def integer_output(
        self, x: QTensor, out: QTensor | None, name: str = "", double: bool = False
    ) -> torch.Tensor:
        """The exact integer result the hardware computes (eval mode): int64 accumulation of
        integer inputs and weights, then ``out``'s multiplier + shift requantization (or the
        raw accumulator when ``out`` is None); ``double``: TFLite's rounding."""
        with torch.no_grad():
            w = self.layer.quant_weight()
            w_scale = w.scale.reshape(-1)
            if self.depthwise:
                in_scale = channel_scale(x.scale, w_scale.numel())
            else:
                in_scale = uniform_scale(x, name).expand_as(w_scale)
            keep = self.mask.double()
            weight = torch.round(w.value / w.scale).double()
            weight = weight * keep.view((-1,) + (1,) * (weight.dim() - 1))
            bias = torch.round(self.bias / (in_scale * w_scale)).double() * keep
            inputs = torch.round(x.value / x.scale).double()
            if self.linear:
                acc = F.linear(inputs, weight, bias)
            else:
                acc = F.conv2d(
                    inputs,
                    weight,
                    bias,
                    self.attrs["stride"],
                    self.attrs["padding"],
                    1,
                    self.attrs["groups"],
                )
            acc = torch.round(acc).to(torch.int64)  # exact: integers far below 2^53
            if out is None:
                return acc
            real_acc = in_scale.double().numpy() * w_scale.double().numpy()
            real = real_acc / channel_scale(out.scale, w_scale.numel()).double().numpy()
            lo, hi = integer_range(out.bits, out.signed)
            return requantize_torch(acc, real, lo, hi, double)


def requantize_torch(
    acc: torch.Tensor, real: np.ndarray, lo: int, hi: int, double: bool = False
) -> torch.Tensor:
    """``ajpq.graph.requant.requantize`` on a torch int64 tensor (channel axis 1);
    ``double``: TFLite's multipliers and double rounding (``requantize_double``)."""
    if double:
        return torch.from_numpy(rescale(acc.numpy(), real, lo, hi, double=True))
    multiplier, shift = quantize_multipliers(real)
    shape = (1, -1) + (1,) * (acc.dim() - 2)
    m = torch.from_numpy(multiplier.astype(np.int64)).view(shape)
    s = torch.from_numpy(shift.astype(np.int64)).view(shape)
    return torch.clamp((acc * m + (1 << (s - 1))) >> s, lo, hi)


def act_quant(kind: str | None, bits: int, signed: bool = True) -> nn.Module:
    """Brevitas activation quantizer: relu6 -> const scale 6/(2^b-1); relu -> learned."""
    if kind == "relu6":
        return qnn.QuantReLU(
            bit_width=bits, max_val=6.0, scaling_impl_type="const", return_quant_tensor=True
        )
    if kind == "relu" or not signed:
        return qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
    return qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True)


def input_quant(scale: float) -> nn.Module:
    """uint8 pixels: the normalised image quantized with scale = the normalisation scale."""
    return qnn.QuantReLU(
        bit_width=INPUT_BITS,
        max_val=255.0 * scale,
        scaling_impl_type="const",
        return_quant_tensor=True,
    )


def input_integers(pixels: QTensor, zero_point: tuple[int, ...]) -> QTensor:
    """The quantized image minus its per-channel zero point: exactly ``(p - zp_c) * scale``,
    in ``input_format(zero_point)`` (``pixels`` itself when the zero point is empty)."""
    if not any(zero_point):
        return pixels
    offset = torch.tensor(zero_point, dtype=pixels.value.dtype, device=pixels.value.device)
    integers = torch.round(pixels.value / pixels.scale) - offset.view(1, -1, 1, 1)
    fmt = input_format(zero_point)
    return QTensor(integers * pixels.scale, pixels.scale, fmt.bits, fmt.signed)
