"""Two MLPerf-Tiny-style classifiers written the way a PyTorch user writes them.

Plain ``nn.Module`` code with no ajpq in it (``Normalize`` only when asked for): residual
blocks with ``nn.Identity`` and strided 1x1 shortcuts, ``out += shortcut``, ``F.relu``,
``x.mean((2, 3))``; and a keyword-spotting DS-CNN on a 49x10 single-channel input with a
10x4 first kernel, depthwise-separable blocks, dropout, ``AdaptiveAvgPool2d`` and
``torch.flatten``. End-to-end tests and the CLI (``--model tests.models:resnet_tiny``) use
the factories; ``mnist_net`` is PyTorch's own MNIST example net.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ajpq.models.layers import Normalize


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN, plus the shortcut: identity, or a strided 1x1 conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNetTiny(nn.Module):
    """ResNet-8 (MLPerf Tiny image classification) at a chosen width."""

    def __init__(
        self, num_classes: int = 10, channels: int = 1, width: int = 8, normalize: bool = False
    ) -> None:
        super().__init__()
        self.normalize = Normalize(1.0 / 255.0) if normalize else nn.Identity()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.stack1 = BasicBlock(width, width)
        self.stack2 = BasicBlock(width, 2 * width, stride=2)
        self.stack3 = BasicBlock(2 * width, 4 * width, stride=2)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.stack3(self.stack2(self.stack1(x)))
        return self.fc(x.mean((2, 3)))


def depthwise_separable(channels: int) -> nn.Sequential:
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    )


class DSCNN(nn.Module):
    """DS-CNN (MLPerf Tiny keyword spotting) on a 1-channel 49x10 feature map."""

    def __init__(
        self, num_classes: int = 10, width: int = 16, blocks: int = 4, normalize: bool = False
    ) -> None:
        super().__init__()
        self.normalize = Normalize(1.0 / 255.0) if normalize else nn.Identity()
        self.conv1 = nn.Conv2d(1, width, (10, 4), stride=2, padding=(5, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(0.2)
        self.blocks = nn.Sequential(*[depthwise_separable(width) for _ in range(blocks)])
        self.dropout2 = nn.Dropout(0.4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout1(self.relu1(self.bn1(self.conv1(self.normalize(x)))))
        x = self.dropout2(self.blocks(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class MnistNet(nn.Module):
    """PyTorch's classic MNIST example (without its log_softmax): relu after max pool,
    Dropout2d, ``x.view(-1, 320)``, F.dropout between the Linears."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return self.fc2(x)


def resnet_tiny(
    num_classes: int = 10,
    input_size: tuple[int, int] = (32, 32),
    channels: int = 1,
    width: int = 8,
    normalize: bool = False,
) -> nn.Module:
    """ResNet-8-like classifier; ``channels`` is the image's (1 = grayscale). Global average
    pooling makes it work at any ``input_size`` (taken so every factory has the argument)."""
    del input_size
    return ResNetTiny(num_classes, channels, width, normalize)


def ds_cnn(
    num_classes: int = 10,
    input_size: tuple[int, int] = (49, 10),
    width: int = 16,
    normalize: bool = False,
) -> nn.Module:
    """DS-CNN-like keyword spotter (1 input channel); any ``input_size`` of at least 10x4."""
    del input_size
    return DSCNN(num_classes, width, normalize=normalize)


def mnist_net(num_classes: int = 10, input_size: tuple[int, int] = (28, 28)) -> nn.Module:
    """The MNIST example's net; it needs a 28x28 (1-channel) input."""
    del input_size
    return MnistNet(num_classes)
