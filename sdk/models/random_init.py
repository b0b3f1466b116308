"""Untrained models with realistic BatchNorm statistics, for tests and size/speed benches."""

import torch
from torch import nn


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BN layers non-trivial statistics so folding and scales are really exercised.

    The BN scales (1.5..4.5) keep a random Skynet's activations alive through all its layers:
    at 0.5..1.5 they shrank below one 4-bit ReLU6 step within a few layers, and the outputs of
    4-bit and mixed policies no longer depended on the image (only on the biases)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) * 3.0 + 1.5)
                module.bias.copy_(torch.rand(n, generator=generator) * 0.6 - 0.3)
    return model.eval()
