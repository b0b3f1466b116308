"""Unsupported layers and attributes are refused with one sentence naming them."""

import pytest
import torch
from torch import nn

from ajpq.errors import UnsupportedOp
from ajpq.quant.capture import capture
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize


class WithSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.conv(x))


class Dilated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=2, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.stem(x))


def test_unsupported_module_is_named() -> None:
    with pytest.raises(UnsupportedOp, match=r"module 'gate' \(Sigmoid\) is not supported"):
        capture(WithSigmoid(), input_size=(8, 8))


def test_dilation_is_refused() -> None:
    with pytest.raises(UnsupportedOp, match=r"conv 'conv' uses dilation=\(2, 2\)"):
        quantize(Dilated(), Policy({}), input_size=(8, 8))


def test_grouped_conv_is_refused() -> None:
    with pytest.raises(UnsupportedOp, match="groups=2"):
        capture(Grouped(), input_size=(8, 8))


def test_missing_input_size_is_explained() -> None:
    with pytest.raises(UnsupportedOp, match="pass input_size"):
        capture(Dilated())
