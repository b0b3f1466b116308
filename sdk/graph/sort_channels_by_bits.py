"""Pass: make each layer's output channels of equal weight bit-width contiguous.

A conv/linear whose per-output-channel ``weight_bits`` are mixed gets its output channels
reordered by a stable sort on descending bit-width, so a code generator can pack (or
Huffman-code) each bit-width group separately; every node gets a ``bit_groups`` array of
rows ``[bit_width, first_channel, channel_count]`` over its new order. Consumers are rewritten
so the graph computes exactly the same numbers: dense conv/linear weights take the new input
order as columns, depthwise convs and adds gather through ``in_index``/``index_a``/``index_b``,
and data-movement ops (pools, reorg, concat, flatten) pass their inputs' order on. The graph's
output node keeps its channel order: that order is the model's contract.

Each node's order is an array ``order``: new channel ``i`` holds what old channel
``order[i]`` held (features, for a flattened tensor).
"""

from dataclasses import replace

import numpy as np

from ajpq.errors import UnsupportedOp
from ajpq.graph.hwgraph import HwGraph, Node
from ajpq.graph.remove_pruned_channels import PER_CHANNEL as REMOVED_PER_CHANNEL

PER_CHANNEL = (*REMOVED_PER_CHANNEL, "mask")  # the pruning pass drops masks; this pass keeps them
MOVES_DATA = ("maxpool", "avgpool", "reorg", "concat", "flatten")


def sort_channels_by_bits(graph: HwGraph) -> HwGraph:
    keep = _order_kept(graph)
    shapes = {node.name: node.shape for node in graph.nodes}
    orders: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.nodes:
        arrays = {key: np.array(value) for key, value in node.arrays.items()}
        inputs = [orders[name] for name in node.inputs]
        in_shapes = [shapes[name] for name in node.inputs]
        if node.op == "input":
            order = np.arange(node.channels)
        elif node.op in ("conv", "linear"):
            order = _layer(node, arrays, inputs[0], node.name in keep)
        elif node.op == "add":
            order = _add(arrays, inputs, node.name in keep)
        else:
            order = _moved(node, inputs, in_shapes)
        if node.op != "input":
            _permute(arrays, order)
        if node.op in ("conv", "linear"):
            arrays["bit_groups"] = bit_groups(arrays["weight_bits"])
        nodes.append(replace(node, inputs=list(node.inputs), attrs=dict(node.attrs), arrays=arrays))
        orders[node.name] = order
    return graph.replace(nodes, output_scale=graph.output_scale.copy(), meta=dict(graph.meta))


def bit_groups(weight_bits: np.ndarray) -> np.ndarray:
    """(G, 3) int32 rows ``[bit_width, first_channel, channel_count]``, one per run of equal
    bit-widths along the channels (one per bit-width once the channels are sorted)."""
    bits = np.asarray(weight_bits, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, bits[1:] != bits[:-1]])
    counts = np.diff(np.r_[starts, len(bits)])
    return np.stack([bits[starts], starts, counts], axis=1).astype(np.int32)


def _order_kept(graph: HwGraph) -> set[str]:
    """Nodes whose output order must not change: the output node, and, through data
    movement (which cannot reorder on its own), whatever feeds it."""
    kept = {graph.output.name}
    for node in reversed(graph.nodes):
        if node.name in kept and node.op in MOVES_DATA:
            kept.update(node.inputs)
    return kept


def _by_bits(weight_bits: np.ndarray, tie_break: np.ndarray | None = None) -> np.ndarray:
    """Stable order by descending bit-width (ties by ``tie_break``, then position)."""
    descending = -np.asarray(weight_bits, dtype=np.int64)
    if tie_break is None:
        return np.argsort(descending, kind="stable")
    return np.lexsort((tie_break, descending))


def _layer(node: Node, arrays: dict, source: np.ndarray, keep: bool) -> np.ndarray:
    """Rewrite a conv/linear's inputs for the ``source`` order; return its output order."""
    if node.op == "conv" and node.attrs["groups"] > 1:
        return _depthwise(node, arrays, source, keep)
    arrays["weight"] = arrays["weight"][:, source]
    bits = arrays["weight_bits"]
    return np.arange(len(bits)) if keep else _by_bits(bits)


def _depthwise(node: Node, arrays: dict, source: np.ndarray, keep: bool) -> np.ndarray:
    """A depthwise conv picks its own order (by its bits, ties in its input's new order) and
    gathers its input channels through ``in_index``."""
    channels = node.channels
    old_index = node.arrays.get("in_index", np.arange(channels))
    reads = np.argsort(source)[old_index]  # new input position each old output channel reads
    bits = arrays["weight_bits"]
    order = np.arange(channels) if keep else _by_bits(bits, tie_break=reads)
    in_index = reads[order].astype(np.int32)
    identity = len(in_index) == len(source) and np.array_equal(in_index, np.arange(channels))
    if "in_index" in node.arrays or not identity:
        arrays["in_index"] = in_index
    return order


def _add(arrays: dict, inputs: list[np.ndarray], keep: bool) -> np.ndarray:
    """An add follows input a's order; its gathers keep adding the same pairs."""
    reads_a = np.argsort(inputs[0])[arrays["index_a"]]
    reads_b = np.argsort(inputs[1])[arrays["index_b"]]
    order = np.arange(len(reads_a)) if keep else np.argsort(reads_a, kind="stable")
    arrays["index_a"] = reads_a[order].astype(arrays["index_a"].dtype)
    arrays["index_b"] = reads_b[order].astype(arrays["index_b"].dtype)
    return order


def _moved(node: Node, inputs: list[np.ndarray], in_shapes: list[tuple]) -> np.ndarray:
    """The output order of a data-movement op, given its inputs' orders."""
    if node.op in ("maxpool", "avgpool"):
        return inputs[0]
    if node.op == "concat":
        offsets = np.cumsum([0] + [shape[0] for shape in in_shapes[:-1]])
        shifted = [order + offset for order, offset in zip(inputs, offsets, strict=True)]
        return np.concatenate(shifted)
    if node.op == "reorg":
        channels, blocks = in_shapes[0][0], node.attrs["stride"] ** 2
        return np.concatenate([k * channels + inputs[0] for k in range(blocks)])
    if node.op == "flatten":
        spatial = int(np.prod(in_shapes[0][1:]))
        return (inputs[0][:, None] * spatial + np.arange(spatial)[None, :]).reshape(-1)
    raise UnsupportedOp(
        f"HwGraph node '{node.name}' uses op '{node.op}', which sort_channels_by_bits cannot "
        "reorder; teach its _moved function how that op moves channels"
    )


def _permute(arrays: dict, order: np.ndarray) -> None:
    if np.array_equal(order, np.arange(len(order))):
        return
    for key in PER_CHANNEL:
        if key in arrays:
            arrays[key] = arrays[key][order]
