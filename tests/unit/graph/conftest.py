import pytest
import torch
from torch import nn

from ajpq.models import skynet

SIZE = (64, 128)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BN layers non-trivial statistics so folding and scales are really exercised."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) * 0.6 - 0.3)
    return model.eval()


@pytest.fixture(scope="session")
def small_skynet() -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(skynet(width_mult=0.25, input_size=SIZE))


def random_images(count: int, size: tuple[int, int] = SIZE, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, *size), generator=generator).float()
