"""Skynet, the DAC-SDC 2019 object-detection winner (Zhang et al., "SkyNet", MLSys 2020).

Layout at ``width_mult=1`` (input 3x160x320, grid 20x40, two anchors)::

    Normalize(1/255)
    bundle1  DW3x3(3)    PW 3->48     maxpool2
    bundle2  DW3x3(48)   PW 48->96    maxpool2
    bundle3  DW3x3(96)   PW 96->192   ----------------------.  (bypass, before the pool)
                                      maxpool2              |
    bundle4  DW3x3(192)  PW 192->384                        |
    bundle5  DW3x3(384)  PW 384->512                        Reorg(2): 192 -> 768
    cat([reorg(bundle3), bundle5]) = 768 + 512 = 1280 channels
    bundle6  DW3x3(1280) PW 1280->96
    head     PW 96 -> anchors*5 (with bias, no BN, no activation)

Each DW / PW conv has no bias and is followed by BatchNorm2d and ReLU6. The conv weights
sum to exactly 435,387 at width 1 (the paper's 0.44 M parameters).
"""

from dataclasses import dataclass

import torch
from torch import nn

from ajpq.errors import UnsupportedOp
from ajpq.models.layers import Normalize, Reorg

PW_WIDTHS: tuple[int, ...] = (48, 96, 192, 384, 512)
BUNDLE6_WIDTH = 96
ANCHORS: tuple[tuple[float, float], ...] = ((1.4940, 2.3598), (4.0113, 5.7609))
DOWNSAMPLE = 8
REFERENCE_SIZE = (160, 320)  # the input size the paper's anchors were fitted for


def scaled(width: int, width_mult: float) -> int:
    """``width * width_mult`` rounded to the nearest int, at least 1."""
    return max(1, int(round(width * width_mult)))


class Bundle(nn.Module):
    """Depthwise 3x3 + BN + ReLU6, then pointwise 1x1 + BN + ReLU6 (Skynet's building block)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.dw_bn = nn.BatchNorm2d(in_channels)
        self.dw_act = nn.ReLU6()
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(out_channels)
        self.pw_act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_act(self.dw_bn(self.dw(x)))
        return self.pw_act(self.pw_bn(self.pw(x)))


@dataclass(frozen=True)
class SkynetWidths:
    """Pointwise output widths of bundles 1..6 after ``width_mult``."""

    bundles: tuple[int, ...]

    @property
    def concat(self) -> int:
        """Channels entering bundle 6: reorg'd bundle 3 (4x) plus bundle 5."""
        return 4 * self.bundles[2] + self.bundles[4]


class Skynet(nn.Module):
    """Skynet detector; forward maps raw pixels (N,3,H,W) in 0..255 to (N, A*5, H/8, W/8)."""

    def __init__(
        self,
        width_mult: float = 1.0,
        input_size: tuple[int, int] = (160, 320),
        num_anchors: int = 2,
    ) -> None:
        super().__init__()
        check_arguments(width_mult, input_size, num_anchors)
        widths = SkynetWidths(tuple(scaled(w, width_mult) for w in (*PW_WIDTHS, BUNDLE6_WIDTH)))
        self.width_mult = float(width_mult)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.grid_size = (self.input_size[0] // DOWNSAMPLE, self.input_size[1] // DOWNSAMPLE)
        self.num_anchors = int(num_anchors)
        anchors = default_anchors(num_anchors, self.input_size)
        self.register_buffer("anchors", anchors, persistent=False)
        b = widths.bundles
        self.normalize = Normalize(1.0 / 255.0)
        self.bundle1 = Bundle(3, b[0])
        self.pool1 = nn.MaxPool2d(2)
        self.bundle2 = Bundle(b[0], b[1])
        self.pool2 = nn.MaxPool2d(2)
        self.bundle3 = Bundle(b[1], b[2])
        self.pool3 = nn.MaxPool2d(2)
        self.bundle4 = Bundle(b[2], b[3])
        self.bundle5 = Bundle(b[3], b[4])
        self.reorg = Reorg(2)
        self.bundle6 = Bundle(widths.concat, b[5])
        self.head = nn.Conv2d(b[5], self.num_anchors * 5, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        x = self.pool1(self.bundle1(x))
        x = self.pool2(self.bundle2(x))
        bypass = self.bundle3(x)
        x = self.bundle5(self.bundle4(self.pool3(bypass)))
        x = torch.cat([self.reorg(bypass), x], dim=1)
        return self.head(self.bundle6(x))


def default_anchors(num_anchors: int, input_size: tuple[int, int] = REFERENCE_SIZE) -> torch.Tensor:
    """Skynet's anchors (A, 2) as (w, h) in grid cells.

    They are the paper's at 160x320 and scale with the input size elsewhere, so an anchor
    covers the same fraction of the image. More than two anchors repeat them doubled.
    """
    scale_h = input_size[0] / REFERENCE_SIZE[0]
    scale_w = input_size[1] / REFERENCE_SIZE[1]
    rows = [ANCHORS[i % len(ANCHORS)] for i in range(num_anchors)]
    doubling = [2.0 ** (i // len(ANCHORS)) for i in range(num_anchors)]
    return torch.tensor(
        [[w * d * scale_w, h * d * scale_h] for (w, h), d in zip(rows, doubling, strict=True)]
    )


def check_arguments(width_mult: float, input_size: tuple[int, int], num_anchors: int) -> None:
    """Raise UnsupportedOp for arguments the architecture cannot realise."""
    if width_mult <= 0:
        raise UnsupportedOp(f"Skynet width_mult={width_mult} must be positive, e.g. 0.5.")
    if len(input_size) != 2 or any(s % 8 or s <= 0 for s in input_size):
        raise UnsupportedOp(
            f"Skynet input_size={tuple(input_size)} must be (H, W) with both multiples of 8, "
            "e.g. (160, 320)."
        )
    if num_anchors < 1:
        raise UnsupportedOp(f"Skynet num_anchors={num_anchors} must be at least 1.")


def skynet(
    width_mult: float = 1.0, input_size: tuple[int, int] = (160, 320), num_anchors: int = 2
) -> Skynet:
    """Build a freshly initialised Skynet (435,387 conv weights at width 1, two anchors)."""
    return Skynet(width_mult=width_mult, input_size=input_size, num_anchors=num_anchors)


def conv_weight_count(model: nn.Module) -> int:
    """Sum of ``weight.numel()`` over the model's Conv2d layers (biases excluded)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
