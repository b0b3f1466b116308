"""The shape-only lowering (skeleton) is the graph lower() builds, but for the numbers."""

import numpy as np
import pytest
import torch

import ajpq
from ajpq.errors import InvalidGraph
from ajpq.graph import skeleton as skeleton_module
from ajpq.graph.estimate_requant import requant_factors
from ajpq.graph.hwgraph import HwGraph
from ajpq.models.random_init import randomize_batchnorm
from ajpq.quant.activation_formats import ActFormat
from ajpq.quant.capture import capture
from ajpq.quant.policy import LayerPolicy, Policy
from tests.unit.graph.conftest import SIZE

SKYNET_SIZE = (32, 64)
TINY_SIZE = (16, 16)
STRUCTURE_ARRAYS = ("weight_bits", "index_a", "index_b", "in_index")


def own_depthwise_bits(policy: Policy, name: str) -> Policy:
    """A depthwise layer that prunes channels and mixes bit-widths on its own."""
    channels = len(policy.layers[name].weight_bits)
    bits = tuple(int(b) for b in np.resize([2, 8, 0, 5, 8, 3], channels))
    return Policy({**policy.layers, name: LayerPolicy(bits, policy.layers[name].act_bits)})


def shift_errors(shadow: HwGraph, lowered: HwGraph) -> np.ndarray:
    """Estimated minus lowered shift of every requantized channel."""
    pairs = [
        (a, b) for a, b in zip(shadow.nodes, lowered.nodes, strict=True) if "shift" in a.arrays
    ]
    return np.concatenate(
        [a.arrays["shift"].astype(int) - b.arrays["shift"].astype(int) for a, b in pairs]
    )


def assert_same_graph(shadow: HwGraph, lowered: HwGraph) -> None:
    assert [n.name for n in shadow.nodes] == [n.name for n in lowered.nodes]
    for ours, theirs in zip(shadow.nodes, lowered.nodes, strict=True):
        where = ours.name
        assert (ours.op, ours.inputs, ours.shape) == (theirs.op, theirs.inputs, theirs.shape), where
        assert (ours.bits, ours.signed, ours.attrs) == (theirs.bits, theirs.signed, theirs.attrs)
        layout = {key: (a.dtype, a.shape) for key, a in ours.arrays.items()}
        assert layout == {key: (a.dtype, a.shape) for key, a in theirs.arrays.items()}, where
        for key in STRUCTURE_ARRAYS:
            if key in ours.arrays:
                assert np.array_equal(ours.arrays[key], theirs.arrays[key]), (where, key)
    assert shadow.output_scale.shape == lowered.output_scale.shape
    ours_summary, theirs_summary = shadow.summary(), lowered.summary()
    for key in ("weight_bytes", "bops", "macs", "params"):
        assert ours_summary[key] == theirs_summary[key], key


def factors8(model: torch.nn.Module, size: tuple[int, int]) -> dict[str, np.ndarray]:
    uniform = ajpq.quantize(model, Policy.uniform(model, 8, 8, size), input_size=size)
    return requant_factors(ajpq.lower(uniform, prune=False))


@pytest.fixture(scope="module")
def skynet() -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    torch.manual_seed(0)
    model = randomize_batchnorm(ajpq.models.skynet(width_mult=0.125, input_size=SKYNET_SIZE))
    return model, factors8(model, SKYNET_SIZE)


@pytest.fixture(scope="module")
def tiny() -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    torch.manual_seed(3)
    model = randomize_batchnorm(ajpq.models.tiny_cnn(), seed=3)
    return model, factors8(model, TINY_SIZE)


def skynet_policy(model: torch.nn.Module, case: str) -> Policy:
    if case == "sparsity":
        return Policy.from_sparsity(model, 0.4, bits=[6, 4, 2], act_bits=4)
    if case == "uniform":
        return Policy.uniform(model, 8, 8)
    policy = Policy.random(model, seed=int(case[-1]), prune_max=0.6)
    return own_depthwise_bits(policy, "bundle3.dw") if case.startswith("dw") else policy


@pytest.mark.parametrize("case", ["uniform", "sparsity", "random0", "random1", "random2", "dw3"])
def test_skynet_skeleton_is_the_lowered_graph(skynet, case: str) -> None:
    model, factors = skynet
    policy = skynet_policy(model, case)
    lowered = ajpq.lower(ajpq.quantize(model, policy))
    shadow = skeleton_module.skeleton(capture(model), policy, factors)
    assert_same_graph(shadow, lowered)
    assert not shift_errors(shadow, lowered).any()  # ReLU6: constant ranges, exact shifts


@pytest.mark.parametrize("case", ["sparsity", "random5"])
def test_wider_skynet_skeleton_is_the_lowered_graph(small_skynet, case: str) -> None:
    policy = skynet_policy(small_skynet, case)
    lowered = ajpq.lower(ajpq.quantize(small_skynet, policy))
    shadow = skeleton_module.skeleton(capture(small_skynet), policy, factors8(small_skynet, SIZE))
    assert_same_graph(shadow, lowered)
    assert not shift_errors(shadow, lowered).any()


@pytest.mark.parametrize("case", ["uniform8", "random1", "random2", "random4", "dw4"])
def test_generic_cnn_skeleton_is_the_lowered_graph(tiny, case: str) -> None:
    """Residual add, learned ReLU ranges, global average pool, flatten and Linear."""
    model, factors = tiny
    if case == "uniform8":
        policy = Policy.uniform(model, 8, 8, input_size=TINY_SIZE)
    else:
        policy = Policy.random(model, seed=int(case[-1]), prune_max=0.6, input_size=TINY_SIZE)
    if case.startswith("dw"):
        policy = own_depthwise_bits(policy, "dw")
    lowered = ajpq.lower(ajpq.quantize(model, policy, input_size=TINY_SIZE))
    shadow = skeleton_module.skeleton(capture(model, TINY_SIZE), policy, factors)
    assert_same_graph(shadow, lowered)
    errors = shift_errors(shadow, lowered)
    print(case, np.unique(errors, return_counts=True))
    assert np.abs(errors).max() <= 2


def test_lower_refuses_a_structure_whose_formats_differ_from_the_qat_model(monkeypatch) -> None:
    torch.manual_seed(3)
    model = ajpq.models.tiny_cnn()
    qmodel = ajpq.quantize(model, Policy.uniform(model, 8, 4, TINY_SIZE), input_size=TINY_SIZE)
    true_formats = skeleton_module.activation_formats

    def wrong(ops: list, policy: Policy, target: str) -> dict[str, ActFormat]:
        return {**true_formats(ops, policy, target), "stem": ActFormat(8, False)}

    monkeypatch.setattr(skeleton_module, "activation_formats", wrong)
    with pytest.raises(InvalidGraph, match="'stem' is 4-bit"):
        ajpq.lower(qmodel)
