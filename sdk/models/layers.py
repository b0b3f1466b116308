"""Parameter-free layers that ajpq models use and that quantize/lower recognise by type."""

import torch
from torch import nn


class Normalize(nn.Module):
    """Scale raw pixels (0..255) into the model's input range: ``(x - zero_point) * scale``.

    No float mean: the quantized model then takes the same pixels as uint8, and zero padding
    means the same thing in both domains. ``zero_point`` (one whole pixel value per channel,
    default 0) is what folding a user's mean/std normalization leaves at the input: padding
    then means the mean pixel, as it did in the user's normalized domain.
    """

    def __init__(self, scale: float = 1.0 / 255.0, zero_point: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.scale = float(scale)
        self.zero_point = tuple(int(z) for z in zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.zero_point):
            offset = torch.tensor(self.zero_point, dtype=x.dtype, device=x.device)
            x = x - offset.view(1, -1, 1, 1)
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
