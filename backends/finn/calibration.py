"""Fit the analytical cost model to finn-plus's estimate reports.

``evidence`` pairs each HW node finn-plus reported with the model's layer for it and
evaluates the model at finn-plus's own folding, so a row compares resource and cycle
formulas only (not the folding). ``calibrate`` fits, per op and quantity, the ratio of
finn-plus's sum to the model's sum (or, where the model says 0, finn-plus's mean per node).
A VVAU finn-plus moved to DSPs or an SWG whose line buffer it moved to BRAM is costed that
way (the estimate makes the same moves, cost_model.rebind); a Thresholding whose memories it
moved to BRAM is left out (the estimate keeps thresholds in LUTRAM).
"""

from typing import Any

from ajpq.backends.finn import cost_model
from ajpq.backends.finn.layers import Layer

QUANTITIES = ("cycles", *cost_model.RESOURCES)
Calibration = dict[str, dict[str, dict[str, float]]]  # {"scale"|"offset": {op: {qty: v}}}


def base_op(op_type: str) -> str:
    """FINN's op name without its _hls / _rtl variant."""
    return op_type.removesuffix("_hls").removesuffix("_rtl")


def _rebound(node: dict[str, Any]) -> bool:
    """Whether folding.free_luts moved this node's thresholds to BRAM (not modelled)."""
    return bool(node.get("depth_trigger_bram"))


def _key(layer: Layer) -> tuple:
    """What identifies a layer among those of its op regardless of folding."""
    if layer.op == "ConvolutionInputGenerator":
        return (layer.op, layer.channels, tuple(layer.ifm), layer.depthwise)
    return (layer.op, cost_model.cycles(layer, cost_model.unfolded(layer)))


def _node_key(node: dict[str, Any]) -> tuple:
    op = base_op(node["op_type"])
    if op == "ConvolutionInputGenerator":
        return (op, node["IFMChannels"], tuple(node["IFMDim"]), bool(node["depthwise"]))
    parallel = node.get("PE", 1) * node.get("SIMD", 1)
    return (op, node["cycles"] * parallel)


def node_fold(node: dict[str, Any], layer: Layer) -> cost_model.Fold:
    fold = cost_model.unfolded(layer)
    fold |= {k: int(node[k]) for k in fold if node.get(k) is not None}
    op = base_op(node["op_type"])
    fold["dsp"] = int(op == "VVAU" and node.get("resType") == "dsp")
    fold["bram"] = int(op == "ConvolutionInputGenerator" and node.get("ram_style") == "block")
    return fold


def pair(layers: list[Layer], nodes: list[dict[str, Any]]) -> list[tuple[Layer, dict]]:
    """Each finn-plus node with the model's layer of the same op and size (first unused)."""
    free: dict[tuple, list[Layer]] = {}
    for layer in layers:
        free.setdefault(_key(layer), []).append(layer)
    pairs = []
    for node in nodes:
        matches = free.get(_node_key(node), [])
        if matches:
            pairs.append((matches.pop(0), node))
    return pairs


def evidence(layers: list[Layer], nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One JSON row per paired node: the model's numbers at finn-plus's folding and finn's."""
    rows = []
    for layer, node in pair(layers, nodes):
        fold = node_fold(node, layer)
        model = {"cycles": cost_model.cycles(layer, fold), **cost_model.resources(layer, fold)}
        rows.append(
            {
                "op": layer.op,
                "layer": layer.name,
                "node": node["name"],
                "fold": fold,
                "rebound": _rebound(node),
                "model": {k: float(model[k]) for k in QUANTITIES},
                "finn": {k: float(node.get(k, 0.0)) for k in QUANTITIES},
            }
        )
    return rows


def calibrate(rows: list[dict[str, Any]]) -> Calibration:
    """Per op and quantity: finn / model summed over the rows (1 where rows say nothing)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row["rebound"]:
            continue
        op = sums.setdefault(row["op"], {k: [0.0, 0.0, 0.0] for k in QUANTITIES})
        for k in QUANTITIES:
            op[k][0] += row["finn"][k]
            op[k][1] += row["model"][k]
            op[k][2] += 1
    scale: dict[str, dict[str, float]] = {}
    offset: dict[str, dict[str, float]] = {}
    for op, quantities in sums.items():
        for k, (finn, model, count) in quantities.items():
            if model > 0:
                scale.setdefault(op, {})[k] = finn / model
            elif finn > 0:
                offset.setdefault(op, {})[k] = finn / count
    return {"scale": scale, "offset": offset}
