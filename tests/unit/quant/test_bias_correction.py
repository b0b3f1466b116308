"""Bias correction: each kept channel's mean output matches the unpruned 8-bit model's to the
bias's rounding, pruned channels stay pruned, and the corrected model stays bit-exact with
its integer graph."""

import numpy as np
import pytest
import torch

from ajpq.errors import InvalidData
from ajpq.graph.lower import lower
from ajpq.models.random_init import randomize_batchnorm
from ajpq.quant.bias_correction import (
    blocks,
    channel_means,
    fake_quant_eval,
    hooked,
    reference_means,
)
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.models import ds_cnn

SIZE = (20, 10)


def model_and_images(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = randomize_batchnorm(ds_cnn(input_size=SIZE), seed).eval()
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (32, 1, *SIZE), generator=generator).float()
    return model, images


def pruned(model: torch.nn.Module, seed: int) -> Policy:
    return Policy.random(model, seed, 0.7, (2, 3, 4), (8,), SIZE)


def uniform8_means(model: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    reference = quantize(model, Policy.uniform(model, 8, 8, SIZE), images, SIZE)
    return reference_means(reference, images)


def mean_errors(qmodel: torch.nn.Module, means: dict, images: torch.Tensor) -> dict[str, float]:
    """Per layer: the largest |mean output - reference mean| over kept channels, in units of
    the channel's accumulator step (the corrected bias and the one before it each round by
    half a step)."""
    errors = {}

    def measure(name: str, block, inputs: tuple, outputs: tuple) -> None:
        y, step = outputs
        kept = block.mask > 0
        error = (channel_means(y) - means[name]).abs() / step.reshape(-1).abs()
        errors[name] = float(error[kept].max())

    with fake_quant_eval(qmodel), hooked(qmodel, measure):
        qmodel(images)
    return errors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_channels_mean_matches_the_unpruned_8_bit_model(seed: int) -> None:
    model, images = model_and_images(seed)
    means = uniform8_means(model, images)
    plain = quantize(model, pruned(model, seed), images, SIZE)
    corrected = quantize(model, pruned(model, seed), images, SIZE, bias_correction="all")
    assert max(mean_errors(plain, means, images).values()) > 10
    assert max(mean_errors(corrected, means, images).values()) <= 1.0 + 1e-3


def test_uniform_8_bit_model_needs_no_correction() -> None:
    model, images = model_and_images()
    plain = quantize(model, Policy.uniform(model, 8, 8, SIZE), images, SIZE)
    corrected = quantize(
        model, Policy.uniform(model, 8, 8, SIZE), images, SIZE, bias_correction="all"
    )
    for (name, a), (_, b) in zip(blocks(plain).items(), blocks(corrected).items(), strict=True):
        assert torch.equal(a.bias, b.bias), name


def test_pruned_channels_stay_pruned_and_the_graph_stays_bit_exact() -> None:
    model, images = model_and_images(3)
    policy = pruned(model, 3)
    qmodel = quantize(model, policy, images, SIZE, bias_correction="all")
    plain = quantize(model, policy, images, SIZE)
    for (name, a), (_, b) in zip(blocks(qmodel).items(), blocks(plain).items(), strict=True):
        dropped = a.mask == 0
        assert torch.equal(a.bias[dropped], b.bias[dropped]), name
        assert not torch.equal(a.bias, b.bias), name
    test = torch.randint(0, 256, (50, 1, *SIZE), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        out = qmodel.forward_quant(test.float())
    brevitas = torch.round(out.value / out.scale).to(torch.int64).numpy()
    assert np.array_equal(lower(qmodel).run(test.numpy().astype(np.uint8)), brevitas)


def test_bias_correction_without_images_is_refused() -> None:
    model, _ = model_and_images()
    with pytest.raises(InvalidData, match="bias_correction needs calibration images"):
        quantize(model, Policy.uniform(model, 4, 8, SIZE), input_size=SIZE, bias_correction="all")


def test_channel_means_reads_channels_of_conv_and_linear_outputs() -> None:
    conv = torch.arange(24.0).view(2, 3, 2, 2)
    assert channel_means(conv).tolist() == [7.5, 11.5, 15.5]
    assert channel_means(torch.tensor([[1.0, 2.0], [3.0, 6.0]])).tolist() == [2.0, 4.0]


def test_output_mode_corrects_the_last_layer_only() -> None:
    model, images = model_and_images(4)
    means = uniform8_means(model, images)
    plain = quantize(model, pruned(model, 4), images, SIZE)
    output = quantize(model, pruned(model, 4), images, SIZE, bias_correction="output")
    names = list(blocks(plain))
    changed = [
        name
        for (name, a), (_, b) in zip(blocks(plain).items(), blocks(output).items(), strict=True)
        if not torch.equal(a.bias, b.bias)
    ]
    assert changed == names[-1:]
    assert mean_errors(plain, means, images)[names[-1]] > 10
    assert mean_errors(output, means, images)[names[-1]] <= 1.0 + 1e-3


def test_an_unknown_mode_is_refused() -> None:
    model, images = model_and_images()
    with pytest.raises(InvalidData, match=r"bias_correction 'first' is not one of \('off'"):
        quantize(model, Policy.uniform(model, 4, 8, SIZE), images, SIZE, bias_correction="first")
