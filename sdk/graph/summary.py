"""HwGraph.summary(): parameters, MACs, BOPs and weight bytes, per layer and in total."""

from typing import Any

import numpy as np

from ajpq.graph.hwgraph import HwGraph, Node


def layer_summary(node: Node, input_shape: tuple[int, ...]) -> dict[str, Any]:
    weight = node.arrays["weight"]
    per_channel = int(np.prod(weight.shape[1:]))
    positions = int(np.prod(node.shape[1:])) if node.op == "conv" else 1
    bits = node.arrays["weight_bits"].astype(np.int64)
    macs = positions * per_channel * len(bits)
    in_bits = int(node.attrs.get("input_bits", 8))
    return {
        "name": node.name,
        "op": node.op,
        "in_channels": int(input_shape[0]),
        "out_channels": int(len(bits)),
        "params": int(weight.size),
        "bits": sorted({int(b) for b in bits}),
        "mean_bits": float(bits.mean()) if len(bits) else 0.0,
        "macs": macs,
        "bops": int(positions * per_channel * (bits * in_bits).sum()),
        "weight_bytes": int(np.ceil((bits * per_channel).sum() / 8)),
    }


def summary(graph: HwGraph) -> dict[str, Any]:
    shapes = {n.name: n.shape for n in graph.nodes}
    layers = [
        layer_summary(n, shapes[n.inputs[0]]) for n in graph.nodes if n.op in ("conv", "linear")
    ]
    totals = {
        key: sum(layer[key] for layer in layers)
        for key in ("params", "macs", "bops", "weight_bytes")
    }
    return {
        **totals,
        "layers": layers,
        "nodes": len(graph.nodes),
        "input_shape": list(graph.nodes[0].shape),
        "output_shape": list(graph.output.shape),
    }
