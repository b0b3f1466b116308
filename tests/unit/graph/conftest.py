import pytest
import torch
from torch import nn

from ajpq.models import skynet
from ajpq.models.random_init import randomize_batchnorm

SIZE = (64, 128)


@pytest.fixture(scope="session")
def small_skynet() -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(skynet(width_mult=0.25, input_size=SIZE))


def random_images(count: int, size: tuple[int, int] = SIZE, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, *size), generator=generator).float()
