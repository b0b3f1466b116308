"""Pruning really shrinks the graph: MACs are what the kept channels imply."""

import numpy as np

from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.unit.graph.conftest import SIZE


def skynet_macs(kept: list[int], height: int, width: int, anchors_out: int = 10) -> int:
    """Skynet's MACs from the kept output channels of its six pointwise layers, by hand."""
    k1, k2, k3, k4, k5, k6 = kept
    full, half, quarter, eighth = (
        height * width,
        height * width // 4,
        height * width // 16,
        height * width // 64,
    )
    concat = 4 * k3 + k5
    return (
        3 * 9 * full
        + 3 * k1 * full  # bundle 1 (then pool)
        + k1 * 9 * half
        + k1 * k2 * half  # bundle 2 (then pool)
        + k2 * 9 * quarter
        + k2 * k3 * quarter  # bundle 3 (then pool; bypass before it)
        + k3 * 9 * eighth
        + k3 * k4 * eighth  # bundle 4
        + k4 * 9 * eighth
        + k4 * k5 * eighth  # bundle 5
        + concat * 9 * eighth
        + concat * k6 * eighth  # bundle 6 on reorg ++ bundle 5
        + k6 * anchors_out * eighth
    )  # head


def test_half_pruned_skynet_has_the_macs_its_kept_channels_imply(small_skynet) -> None:
    policy = Policy.from_sparsity(small_skynet, 0.5, bits=8)
    graph = lower(quantize(small_skynet, policy))
    kept = [int(np.count_nonzero(policy.layers[f"bundle{i}.pw"].weight_bits)) for i in range(1, 7)]
    assert kept == [6, 12, 24, 48, 64, 12]  # half of 12, 24, 48, 96, 128, 24
    assert graph.summary()["macs"] == skynet_macs(kept, *SIZE)
    unpruned = lower(quantize(small_skynet, Policy.uniform(small_skynet, 8, 8)))
    assert unpruned.summary()["macs"] == skynet_macs([12, 24, 48, 96, 128, 24], *SIZE)
    assert graph.node("bundle6.dw").shape == (4 * 24 + 64, 8, 16)


def test_pruned_layer_has_no_pruned_weights(small_skynet) -> None:
    policy = Policy.from_sparsity(small_skynet, 0.5, bits=[8, 2])
    graph = lower(quantize(small_skynet, policy))
    node = graph.node("bundle3.pw")
    assert node.arrays["weight"].shape == (24, 12, 1, 1)
    assert sorted(set(node.arrays["weight_bits"].tolist())) == [2, 8]
    summary = {layer["name"]: layer for layer in graph.summary()["layers"]}
    assert summary["bundle3.pw"]["weight_bytes"] == (12 * 12 * 8 + 12 * 12 * 2) // 8
    assert (
        summary["bundle3.pw"]["bops"] == summary["bundle3.pw"]["macs"] // 24 * (12 * 8 + 12 * 2) * 8
    )
