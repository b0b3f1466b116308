"""Parameter-free layers that ajpq models use and that quantize/lower recognise by type."""

import torch
from torch import nn


class Normalize(nn.Module):
    """Scale raw pixels (0..255) into the model's input range: ``x * scale``.

    Only a scale, no mean: the quantized model then takes the same pixels as uint8 with
    zero point 0, and zero padding means the same thing in both domains.
    """

    def __init__(self, scale: float = 1.0 / 255.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def reorg(x: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Space-to-depth: output channel (h_off * stride + w_off) * C + c."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // stride, stride, w // stride, stride)
    x = x.permute(0, 3, 5, 1, 2, 4)  # n, h_off, w_off, c, h', w'
    return x.reshape(n, stride * stride * c, h // stride, w // stride)


class Reorg(nn.Module):
    """Space-to-depth as in YOLOv2/Skynet's bypass (see :func:`reorg` for the channel order)."""

    def __init__(self, stride: int = 2) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reorg(x, self.stride)
