"""Pass: physically remove pruned channels (HwGraph -> new HwGraph).

Every node carries a ``mask`` of the channels (or flattened features) it keeps; a pruned
channel is all zeros. This pass drops those channels from each node's outputs and from its
consumers' inputs (weights' input channels, depthwise gathers, add gathers), so the MACs and
weight bytes of the result are what the kept channels imply. Numbers do not change.
"""

from dataclasses import replace

import numpy as np

from ajpq.graph.hwgraph import HwGraph, Node

PER_CHANNEL = (
    "weight",
    "bias",
    "weight_bits",
    "multiplier",
    "shift",
    "multiplier_a",
    "multiplier_b",
    "acc_scale",
    "weight_scale",
    "shift_a",
    "shift_b",
)


def remove_pruned_channels(graph: HwGraph) -> HwGraph:
    kept: dict[str, np.ndarray] = {}  # node -> indices of the original channels it keeps
    nodes = []
    for node in graph.nodes:
        mask = node.arrays.get("mask", np.ones(node.channels, dtype=bool))
        keep = np.flatnonzero(mask)
        arrays = {
            k: (v[keep] if k in PER_CHANNEL else v) for k, v in node.arrays.items() if k != "mask"
        }
        inputs = [kept[name] for name in node.inputs]
        if node.op in ("conv", "linear"):
            _shrink_inputs(node, arrays, keep, inputs[0])
        elif node.op == "add":
            arrays["index_a"] = np.searchsorted(inputs[0], keep).astype(np.int32)
            arrays["index_b"] = np.searchsorted(inputs[1], keep).astype(np.int32)
        shape = (len(keep), *node.shape[1:])
        nodes.append(replace(node, shape=shape, arrays=arrays, attrs=dict(node.attrs)))
        kept[node.name] = keep
    head = kept[graph.output.name]
    return graph.replace(nodes, output_scale=graph.output_scale[head])


def _shrink_inputs(node: Node, arrays: dict, keep: np.ndarray, inputs: np.ndarray) -> None:
    if node.op == "conv" and node.attrs["groups"] > 1:
        if not np.array_equal(keep, inputs):  # the depthwise conv pruned channels on its own
            arrays["in_index"] = np.searchsorted(inputs, keep).astype(np.int32)
        node.attrs = {**node.attrs, "groups": len(keep)}
    else:
        arrays["weight"] = arrays["weight"][:, inputs]
