"""sort_channels_by_bits groups each layer's channels by bit-width and changes no number."""

import copy

import numpy as np
import pytest
import torch

import ajpq
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.sort_channels_by_bits import bit_groups, sort_channels_by_bits
from ajpq.models.random_init import randomize_batchnorm
from ajpq.quant.policy import LayerPolicy
from tests.unit.graph.conftest import SIZE, random_images

TINY_SIZE = (16, 16)
SKYNET_CASES = [
    "skynet_random0",
    "skynet_random1",
    "skynet_random2",
    "skynet_sparsity",
    "skynet_dw",
]
TINY_CASES = ["tiny_random1", "tiny_random2", "tiny_sparsity", "tiny_dw", "tiny_unpruned"]
DEPTHWISE = {"skynet_dw": "bundle3.dw", "tiny_dw": "dw"}


def own_depthwise_bits(policy: ajpq.Policy, name: str) -> ajpq.Policy:
    """A depthwise layer that prunes channels and mixes bit-widths on its own."""
    channels = len(policy.layers[name].weight_bits)
    bits = tuple(int(b) for b in np.resize([2, 8, 0, 5, 8, 3], channels))
    layers = dict(policy.layers)
    layers[name] = LayerPolicy(bits, policy.layers[name].act_bits)
    return ajpq.Policy(layers)


def skynet_graph(model: torch.nn.Module, case: str) -> HwGraph:
    if case == "skynet_sparsity":
        policy = ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 6, 4])
    elif case == "skynet_dw":
        policy = own_depthwise_bits(ajpq.Policy.random(model, seed=3, prune_max=0.6), "bundle3.dw")
    else:
        policy = ajpq.Policy.random(model, seed=int(case[-1]), prune_max=0.6)
    return ajpq.lower(ajpq.quantize(model, policy))


def tiny_graph(case: str) -> HwGraph:
    torch.manual_seed(3)
    model = randomize_batchnorm(ajpq.models.tiny_cnn(), seed=3)
    if case == "tiny_sparsity":
        policy = ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 6, 4], input_size=TINY_SIZE)
    else:
        seed = 4 if case in ("tiny_dw", "tiny_unpruned") else int(case[-1])
        policy = ajpq.Policy.random(model, seed=seed, prune_max=0.6, input_size=TINY_SIZE)
        if case == "tiny_dw":
            policy = own_depthwise_bits(policy, "dw")
    calibration = random_images(16, TINY_SIZE, seed=7)
    qmodel = ajpq.quantize(model, policy, calibration=calibration, input_size=TINY_SIZE)
    return ajpq.lower(qmodel, prune=case != "tiny_unpruned")


@pytest.fixture(scope="module")
def graphs(small_skynet: torch.nn.Module) -> dict[str, HwGraph]:
    built = {case: skynet_graph(small_skynet, case) for case in SKYNET_CASES}
    built.update({case: tiny_graph(case) for case in TINY_CASES})
    return built


def images_for(case: str) -> np.ndarray:
    size = SIZE if case.startswith("skynet") else TINY_SIZE
    return random_images(24, size, seed=11).numpy().astype(np.uint8)


def layers(graph: HwGraph) -> list:
    return [node for node in graph.nodes if node.op in ("conv", "linear")]


@pytest.mark.parametrize("case", SKYNET_CASES + TINY_CASES)
def test_sorting_changes_no_number(graphs: dict[str, HwGraph], case: str) -> None:
    graph = graphs[case]
    images = images_for(case)
    result = sort_channels_by_bits(graph)
    assert np.array_equal(result.run(images), graph.run(images))
    assert result.run(images).dtype == np.int64
    assert [n.shape for n in result.nodes] == [n.shape for n in graph.nodes]
    assert np.array_equal(result.output_scale, graph.output_scale)


@pytest.mark.parametrize("case", SKYNET_CASES + TINY_CASES)
def test_bits_are_grouped_and_groups_tile_the_channels(
    graphs: dict[str, HwGraph], case: str
) -> None:
    graph = graphs[case]
    result = sort_channels_by_bits(graph)
    unsorted_before = 0
    for before, after in zip(layers(graph), layers(result), strict=True):
        bits = after.arrays["weight_bits"].astype(np.int64)
        groups = after.arrays["bit_groups"]
        assert groups.dtype == np.int32 and groups.shape[1] == 3
        assert groups[0, 1] == 0
        assert np.array_equal(groups[1:, 1], groups[:-1, 1] + groups[:-1, 2])
        assert groups[-1, 1] + groups[-1, 2] == len(bits)
        assert np.array_equal(np.repeat(groups[:, 0], groups[:, 2]), bits)
        assert sorted(bits.tolist()) == sorted(before.arrays["weight_bits"].tolist())
        if after.name == result.output.name:
            assert np.array_equal(bits, before.arrays["weight_bits"])
            continue
        assert np.all(np.diff(bits) <= 0)
        assert len(groups) == len(set(bits.tolist()))
        unsorted_before += int(np.any(np.diff(before.arrays["weight_bits"].astype(int)) > 0))
    assert unsorted_before > 0  # the case really exercised the reordering


@pytest.mark.parametrize("case", SKYNET_CASES + TINY_CASES)
def test_input_graph_is_left_unchanged(graphs: dict[str, HwGraph], case: str) -> None:
    graph = graphs[case]
    before = copy.deepcopy(graph)
    result = sort_channels_by_bits(graph)
    assert [n.name for n in graph.nodes] == [n.name for n in before.nodes]
    for node, saved, new in zip(graph.nodes, before.nodes, result.nodes, strict=True):
        assert (node.op, node.inputs, node.shape, node.attrs) == (
            saved.op,
            saved.inputs,
            saved.shape,
            saved.attrs,
        )
        assert sorted(node.arrays) == sorted(saved.arrays)
        for key, value in node.arrays.items():
            assert (
                np.array_equal(value, saved.arrays[key]) and value.dtype == saved.arrays[key].dtype
            )
            assert key not in new.arrays or not np.shares_memory(value, new.arrays[key])
    assert np.array_equal(graph.output_scale, before.output_scale)
    assert graph.meta == before.meta


@pytest.mark.parametrize("case", SKYNET_CASES + TINY_CASES)
def test_summary_totals_are_unchanged(graphs: dict[str, HwGraph], case: str) -> None:
    before = graphs[case].summary()
    after = sort_channels_by_bits(graphs[case]).summary()
    for key in ("params", "macs", "bops", "weight_bytes"):
        assert after[key] == before[key]


@pytest.mark.parametrize("case", ["skynet_random1", "tiny_dw", "tiny_unpruned"])
def test_sorting_twice_is_sorting_once(graphs: dict[str, HwGraph], case: str) -> None:
    once = sort_channels_by_bits(graphs[case])
    twice = sort_channels_by_bits(once)
    for a, b in zip(once.nodes, twice.nodes, strict=True):
        assert sorted(a.arrays) == sorted(b.arrays)
        for key in a.arrays:
            assert np.array_equal(a.arrays[key], b.arrays[key])


@pytest.mark.parametrize("case", ["skynet_dw", "tiny_dw"])
def test_depthwise_sorts_its_own_bits_through_in_index(
    graphs: dict[str, HwGraph], case: str
) -> None:
    name = DEPTHWISE[case]
    before = graphs[case].node(name)
    after = sort_channels_by_bits(graphs[case]).node(name)
    own_bits = before.arrays["weight_bits"].astype(np.int64)
    assert len(set(own_bits.tolist())) > 1 and np.any(np.diff(own_bits) > 0)
    assert np.all(np.diff(after.arrays["weight_bits"].astype(np.int64)) <= 0)
    in_index = after.arrays["in_index"]
    assert len(np.unique(in_index)) == len(in_index) == after.channels
    assert not np.array_equal(in_index, np.arange(after.channels))
    assert after.attrs["groups"] == before.attrs["groups"]


def test_bit_groups_of_unsorted_bits_are_runs() -> None:
    groups = bit_groups(np.array([8, 8, 4, 8, 2, 2], dtype=np.uint8))
    assert groups.tolist() == [[8, 0, 2], [4, 2, 1], [8, 3, 1], [2, 4, 2]]
    assert bit_groups(np.array([6, 6, 6])).tolist() == [[6, 0, 3]]
