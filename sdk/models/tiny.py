"""Small extra nets for tests: a generic classifier CNN and a narrow Skynet."""

import torch
from torch import nn

from ajpq.models.layers import Normalize
from ajpq.models.skynet import Skynet, skynet


class ResidualBlock(nn.Module):
    """conv3x3 + BN + ReLU, conv3x3 + BN, add the input, ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act2(y + x)


class TinyCNN(nn.Module):
    """Normalize, stem conv, maxpool, residual block, depthwise conv, global pool, Linear."""

    def __init__(self, channels: int = 8, num_classes: int = 4) -> None:
        super().__init__()
        self.normalize = Normalize(1.0 / 255.0)
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(channels)
        self.stem_act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.block = ResidualBlock(channels)
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.dw_bn = nn.BatchNorm2d(channels)
        self.dw_act = nn.ReLU()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        x = self.pool(self.stem_act(self.stem_bn(self.stem(x))))
        x = self.block(x)
        x = self.dw_act(self.dw_bn(self.dw(x)))
        return self.fc(self.flatten(self.global_pool(x)))


def tiny_cnn(channels: int = 8, num_classes: int = 4) -> TinyCNN:
    """A small fx-traceable CNN covering conv, BN, ReLU, pools, residual add, DW, Linear."""
    return TinyCNN(channels=channels, num_classes=num_classes)


def tiny_skynet(input_size: tuple[int, int] = (32, 64)) -> Skynet:
    """Skynet at width 1/8 (6..64 channels) for fast tests."""
    return skynet(width_mult=0.125, input_size=input_size)
