"""The shape-only lowering: the HwGraph ``lower`` builds for a policy, every number zero.

``structure(ops, policy)`` is the one place that decides what a lowered graph holds: its
nodes, ops, inputs, shapes, bit-widths, signedness, attributes, the keys, dtypes and shapes
of its arrays, and each node's channel mask. ``lower`` takes this structure and only fills in
the QAT model's integers; the search costs ``skeleton(...)``, the same structure with its
requantization estimated (``estimate_requant``) and pruned channels removed. So the cost the
search sees for a policy is the cost of the graph ``lower`` would build, by construction.
"""

from collections.abc import Mapping

import numpy as np

from ajpq.graph.estimate_requant import estimate_requant
from ajpq.graph.hwgraph import HwGraph, Node
from ajpq.graph.remove_pruned_channels import remove_pruned_channels
from ajpq.graph.requant import ADD_LEFT_SHIFT, integer_range
from ajpq.quant.activation_formats import (
    ACCUMULATOR_BITS,
    ActFormat,
    activation_formats,
    input_zero_point,
    requantizing_concats,
)
from ajpq.quant.capture import FloatOp
from ajpq.quant.masks import channel_masks
from ajpq.quant.policy import Policy


def structure(ops: list[FloatOp], policy: Policy, target: str = "ajpq") -> HwGraph:
    """The unpruned HwGraph of ``policy`` on the captured ``ops``: zero weights, biases,
    multipliers and shifts, true weight bit-widths and a ``mask`` array on every node. For
    ``target="tflite"`` every requantizer rounds twice (``rounding: double``), adds take
    TFLite's parameters, and every node holds its float32 ``scale`` (per tensor) and each
    layer its ``weight_scale``: the numbers a .tflite file stores."""
    formats = activation_formats(ops, policy, target)
    masks = channel_masks(ops, policy)
    requantizing = requantizing_concats(ops, target)
    shapes = {op.name: op.shape for op in ops}
    zero_point = input_zero_point(ops)
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for op in ops:
        if op.kind == "normalize":
            alias[op.name] = alias[op.inputs[0]]
            continue
        inputs = [alias[i] for i in op.inputs]
        node = Node(op.name, op.kind, inputs, tuple(op.shape), *formats[op.name])
        if op.kind == "input" and zero_point:  # pixel - zero_point (golden subtracts it)
            node.attrs["zero_point"] = zero_point
        if op.kind in ("conv", "linear"):
            bits = np.array(policy.layers[op.name].weight_bits, dtype=np.uint8)
            bits[~masks[op.name]] = 0
            _layer(op, node, shapes[op.inputs[0]], formats[op.inputs[0]], bits)
        elif op.kind in ("maxpool", "avgpool"):
            node.attrs.update({k: op.attrs[k] for k in ("kernel", "stride", "padding")})
            if op.kind == "avgpool":
                _requant(node)
        elif op.kind == "reorg":
            node.attrs["stride"] = op.attrs["stride"]
        elif op.kind == "concat":
            node.attrs["requant"] = op.name in requantizing
            if node.attrs["requant"]:
                _requant(node)
        elif op.kind == "add":
            _add(node)
        node.arrays["mask"] = masks[op.name].copy()
        if target == "tflite":
            _tflite(node)
        nodes.append(node)
        alias[op.name] = op.name
    return HwGraph(nodes, np.ones(nodes[-1].channels, dtype=np.float64))


def skeleton(
    ops: list[FloatOp], policy: Policy, factors8: Mapping[str, np.ndarray] | None = None
) -> HwGraph:
    """The pruned HwGraph ``lower`` would build for ``policy``, with zero weights and biases;
    multipliers and shifts estimated from ``factors8`` (``estimate_requant``), else zero."""
    graph = structure(ops, policy)
    if factors8 is not None:
        graph = estimate_requant(graph, factors8)
    return remove_pruned_channels(graph)


def _layer(
    op: FloatOp, node: Node, in_shape: tuple[int, ...], source: ActFormat, bits: np.ndarray
) -> None:
    channels = node.channels
    if op.kind == "conv":
        groups = op.attrs["groups"]
        weight_shape = (channels, in_shape[0] // groups, *op.attrs["kernel"])
    else:
        weight_shape = (channels, in_shape[0])
    node.arrays.update(
        weight=np.zeros(weight_shape, dtype=np.int8),
        bias=np.zeros(channels, dtype=np.int32),
        weight_bits=bits,
    )
    if op.kind == "conv":
        node.attrs.update({k: op.attrs[k] for k in ("stride", "padding", "groups")})
    node.attrs["input_bits"] = source.bits
    if node.bits == ACCUMULATOR_BITS:  # the head: int32 accumulators out
        node.attrs["requant"] = False
    else:
        _requant(node)


def _requant(node: Node) -> None:
    node.arrays["multiplier"] = np.zeros(node.channels, dtype=np.int32)
    node.arrays["shift"] = np.zeros(node.channels, dtype=np.int8)
    _requant_attrs(node)


def _requant_attrs(node: Node) -> None:
    lo, hi = integer_range(node.bits, node.signed)
    node.attrs.update(requant=True, act_min=lo, act_max=hi)


def _tflite(node: Node) -> None:
    """TFLite's arithmetic: double rounding, its add, float32 scales kept for the file."""
    node.arrays["scale"] = np.zeros(1, dtype=np.float32)
    if node.op in ("conv", "linear"):
        node.arrays["weight_scale"] = np.zeros(node.channels, dtype=np.float32)
    if node.attrs.get("requant"):
        node.attrs["rounding"] = "double"
    if node.op == "add":
        node.attrs["left_shift"] = ADD_LEFT_SHIFT
        for key in ("multiplier", "shift_a", "shift_b", "shift"):
            dtype = np.int32 if key == "multiplier" else np.int8
            node.arrays[key] = np.zeros(node.channels, dtype=dtype)


def _add(node: Node) -> None:
    index = np.arange(node.channels, dtype=np.int32)
    node.arrays.update(
        multiplier_a=np.zeros(node.channels, dtype=np.int32),
        multiplier_b=np.zeros(node.channels, dtype=np.int32),
        shift=np.zeros(node.channels, dtype=np.int8),
        index_a=index,
        index_b=index.copy(),
    )
    _requant_attrs(node)
