"""Bias correction: after pruning and quantization, shift a conv's (or linear's) bias so its
mean output per channel on calibration images equals the unpruned 8-bit model's: the output
layer's only (``"output"``) or every layer's (``"all"``).

Pruning a channel removes its mean contribution from every layer that reads it, and low-bit
weights shift each output's mean a little (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction", correct the second from data as here).
Uncorrected, the shifts add up layer after layer: a Skynet with most channels of its last
pointwise layers pruned starts its fine-tune with every confidence high, and the no-object
loss then teaches it to forget where the object is. Correcting the output layer alone stops
that and leaves a healthy policy's fine-tune as it was; correcting every layer also stops it
but cost a healthy policy 3 points (docs/quantization.md).

Layers are corrected in order in one pass: each layer's shift is measured on inputs that the
layers before it have already corrected. The shifted bias is rounded to the accumulator scale
like any other, so the integer graph adds exactly what the QAT model adds.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ajpq.errors import InvalidData
from ajpq.quant.qat import QConv2d

MODES = ("off", "output", "all")


def channel_means(outputs: torch.Tensor) -> torch.Tensor:
    """Mean of a (N, C, ...) tensor per channel C."""
    return outputs.mean(dim=[d for d in range(outputs.dim()) if d != 1])


def blocks(model: nn.Module) -> dict[str, QConv2d]:
    """The model's convs and linears by module name, in the order they run."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QConv2d)}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidData(f"bias_correction {mode!r} is not one of {MODES}; pick one of them.")
    return mode


def corrected_layers(model: nn.Module, mode: str) -> list[str]:
    """The module names ``mode`` corrects: none, the last conv or linear, or all of them."""
    names = list(blocks(model)) if check_mode(mode) != "off" else []
    return names[-1:] if mode == "output" else names


@contextmanager
def fake_quant_eval(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode on its fake-quant floats (``exact = False``), without gradients;
    then back in the mode it came in."""
    was_training, was_exact = model.training, model.exact
    model.eval()
    model.exact = False
    try:
        with torch.no_grad():
            yield
    finally:
        model.exact = was_exact
        model.train(was_training)


@contextmanager
def hooked(model: nn.Module, hook: Callable[[str, QConv2d, tuple, Any], Any]) -> Iterator[None]:
    """``hook(name, block, inputs, outputs)`` on every conv and linear for the duration."""
    handles = [
        block.register_forward_hook(
            lambda module, inputs, outputs, name=name: hook(name, module, inputs, outputs)
        )
        for name, block in blocks(model).items()
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def reference_means(reference: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each conv's and linear's mean output per channel (before its activation) on
    ``images``, by module name."""
    means: dict[str, torch.Tensor] = {}

    def record(name: str, block: QConv2d, inputs: tuple, outputs: Any) -> None:
        means[name] = channel_means(outputs[0])

    with fake_quant_eval(reference), hooked(reference, record):
        reference(images)
    return means


def correct_biases(
    model: nn.Module, means: dict[str, torch.Tensor], images: torch.Tensor
) -> dict[str, float]:
    """Shift each kept channel's bias in the layers ``means`` names by its mean there
    (``reference_means`` of the unpruned model) minus its own mean output on ``images``,
    layer by layer in one pass; return the largest |shift| per layer, in output units."""
    shifts: dict[str, float] = {}

    def correct(name: str, block: QConv2d, inputs: tuple, outputs: Any) -> Any:
        if name not in means:
            return None
        shift = (means[name] - channel_means(outputs[0])) * block.mask
        block.bias += shift
        shifts[name] = float(shift.abs().max())
        return block.forward(*inputs)  # the corrected output; forward() skips the hooks

    with fake_quant_eval(model), hooked(model, correct):
        model(images)
    return shifts
