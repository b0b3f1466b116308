"""Pass: estimate a policy's requantization multipliers and shifts without QAT.

A requantizing node's real factor per output channel is M = s_in * s_w / s_out (an add has
one per input). Read once off the model's uniform 8-bit lowering (``requant_factors``), it
follows a policy's bit-widths: a b-bit weight scale is max|w| / (2^(b-1) - 1) and an
activation scale is the activation's range over 2^b - 1 (unsigned) or 2^(b-1) (signed), so
each scale is its 8-bit value times a ratio of such integers.
ReLU6 ranges are constants; a learned ReLU range is taken to be the same at every bit-width,
which is where the estimate can miss QAT's. Backends' cost estimates read the shifts (they
choose a kernel's requantization path); the multipliers are estimates too.
"""

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ajpq.errors import InvalidGraph
from ajpq.graph.hwgraph import HwGraph, Node
from ajpq.graph.requant import quantize_multiplier_pairs, quantize_multipliers

REFERENCE_BITS = 8


def requant_factors(graph: HwGraph) -> dict[str, np.ndarray]:
    """Each requantizing node's real factors multiplier x 2^-shift, one per channel
    (an add: one row of two per channel)."""
    factors = {}
    for node in graph.nodes:
        shift = node.arrays.get("shift")
        if "multiplier" in node.arrays:
            factors[node.name] = _real(node.arrays["multiplier"], shift)
        elif "multiplier_a" in node.arrays:
            pair = (_real(node.arrays[key], shift) for key in ("multiplier_a", "multiplier_b"))
            factors[node.name] = np.stack(list(pair), axis=1)
    return factors


def estimate_requant(graph: HwGraph, factors8: Mapping[str, np.ndarray]) -> HwGraph:
    """Fill every multiplier and shift of an unpruned graph (``skeleton.structure``) from the
    8-bit factors ``factors8`` of the same model, scaled to the graph's bit-widths."""
    ratios: dict[str, np.ndarray] = {}  # per node: its scale / its scale at 8 bits, per channel
    nodes = []
    for node in graph.nodes:
        inputs = [ratios[name] for name in node.inputs]
        arrays = dict(node.arrays)
        if "shift" in node.arrays:
            if node.name not in factors8:
                raise InvalidGraph(
                    f"no 8-bit requantization factors for node '{node.name}'; compute them "
                    "with requant_factors on this model's uniform 8-bit lowering"
                )
            arrays.update(_estimate(node, factors8[node.name], inputs))
        ratios[node.name] = _output_ratio(node, inputs)
        nodes.append(replace(node, attrs=dict(node.attrs), arrays=arrays))
    return graph.replace(nodes)


def _estimate(node: Node, factors: np.ndarray, inputs: list[np.ndarray]) -> dict:
    out = _ratio(node.bits, node.signed)
    if node.op == "add":
        multiplier_a, multiplier_b, shift = quantize_multiplier_pairs(
            factors[:, 0] * inputs[0] / out, factors[:, 1] * inputs[1] / out
        )
        pruned = ~node.arrays["mask"]
        multiplier_a[pruned], multiplier_b[pruned] = 0, 0
        return {
            "multiplier_a": multiplier_a.astype(np.int32),
            "multiplier_b": multiplier_b.astype(np.int32),
            "shift": shift,
        }
    multiplier, shift = quantize_multipliers(factors * _source_ratio(node, inputs) / out)
    return {"multiplier": multiplier, "shift": shift}


def _source_ratio(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """The ratio of a node's accumulator scale (input x weight) to its 8-bit one."""
    if node.op == "concat":
        return np.concatenate(inputs)
    if node.op == "avgpool":
        return inputs[0]
    depthwise = node.op == "conv" and node.attrs["groups"] > 1
    source = inputs[0] if depthwise else inputs[0][0]
    bits = np.maximum(node.arrays["weight_bits"].astype(np.float64), 2)  # pruned: any width
    return source * (2.0 ** (REFERENCE_BITS - 1) - 1) / (np.exp2(bits - 1) - 1)


def _output_ratio(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    channels = node.channels
    if node.op == "add" or node.attrs.get("requant"):
        return np.full(channels, _ratio(node.bits, node.signed))
    if node.op in ("maxpool", "concat"):
        return np.concatenate(inputs)
    if node.op == "reorg":
        return np.tile(inputs[0], node.attrs["stride"] ** 2)
    if node.op == "flatten":
        return np.repeat(inputs[0], channels // len(inputs[0]))
    return np.ones(channels)  # the image (8-bit) and the head (nothing reads its scale)


def _ratio(bits: int, signed: bool) -> float:
    """An activation's scale at ``bits`` over its scale at 8 bits."""
    return _largest(REFERENCE_BITS, signed) / _largest(bits, signed)


def _largest(bits: int, signed: bool) -> int:
    """What an activation's range is divided by for its scale (Brevitas: 2^b - 1 unsigned,
    2^(b-1) signed)."""
    return 1 << (bits - 1) if signed else (1 << bits) - 1


def _real(multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return multiplier.astype(np.float64) * np.exp2(-shift.astype(np.float64))
