"""Fold a specialized FINN dataflow model to a board: PE/SIMD per layer within a budget.

Greedy bottleneck balancing: start every layer at its least parallel setting, then
repeatedly give the slowest layer (FINN's ``get_exp_cycles``) its next legal PE or SIMD step,
keeping the step only if FINN's resource estimate (plus ``extra_luts`` for the ops FINN
reports as 0 LUT) stays within ``fraction`` of the board's LUT, BRAM and DSP. It stops when
the bottleneck cannot be sped up, the budget is hit, or ``target_fps`` is reached. FINN's own
``SetFolding`` (its target_fps parallelization) is the baseline this is compared against.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ajpq.boards import BoardSpec

BUDGET_FRACTION = 0.85
FINN_ZERO_LUT_OPS = ("DuplicateStreams", "StreamingConcat", "Pool", "FMPadding")


@dataclass(frozen=True)
class Knob:
    """One parallelism attribute of a node and the dimension its value must divide."""

    attr: str
    bound: int


def _divisors_above(value: int, bound: int) -> int | None:
    return next((d for d in range(value + 1, bound + 1) if bound % d == 0), None)


def knobs(inst: Any) -> list[Knob]:
    """PE/SIMD attributes of a HW op in the order SetFolding raises them."""
    op = inst.onnx_node.op_type.split("_")[0]
    get = inst.get_nodeattr
    if op == "MVAU":
        return [Knob("SIMD", get("MW")), Knob("PE", get("MH"))]
    if op == "VVAU":
        return [Knob("PE", get("Channels")), Knob("SIMD", math.prod(get("Kernel")))]
    if op == "ConvolutionInputGenerator":
        return [Knob("SIMD", get("IFMChannels"))]
    if op == "FMPadding":
        return [Knob("SIMD", get("NumChannels"))]
    if op in ("Pool", "Thresholding"):
        return [Knob("PE", get("Channels") if op == "Pool" else get("NumChannels"))]
    if op == "DuplicateStreams":
        return [Knob("PE", get("NumChannels"))]
    if op == "StreamingConcat":
        return [Knob("SIMD", math.gcd(*get("ChannelsPerStream")))]
    if op == "ElementwiseAdd":
        return [Knob("PE", inst.get_normal_output_shape()[-1])]
    return []


def extra_luts(inst: Any) -> int:
    """Our LUT estimate for ops whose FINN estimator returns 0 LUT (registers, muxes, compare)."""
    op = inst.onnx_node.op_type.split("_")[0]
    if op not in FINN_ZERO_LUT_OPS:
        return 0
    width = inst.get_instream_width()
    if op == "DuplicateStreams":
        return 40 + width * inst.get_nodeattr("NumOutputStreams") // 2
    if op == "StreamingConcat":
        return 40 + width * len(inst.onnx_node.input)
    if op == "Pool":
        return 60 + 2 * inst.get_outstream_width() * math.prod(inst.get_nodeattr("KernelSize"))
    return 40 + 2 * width  # FMPadding: a mux between the stream and the pad value


def node_resources(inst: Any, part: str) -> dict[str, float]:
    """FINN's estimate of one node, LUT raised by ``extra_luts``."""
    res = dict(inst.node_res_estimation(part))
    res["LUT"] = float(res.get("LUT", 0)) + extra_luts(inst)
    return res


def budget(board: BoardSpec, fraction: float = BUDGET_FRACTION) -> dict[str, float]:
    """The resources folding may use: ``fraction`` of the board's LUT, BRAM_18K and DSP."""
    res = board.resources
    return {
        "LUT": fraction * res["lut"],
        "BRAM_18K": fraction * 2 * res["bram36"],
        "DSP": fraction * res["dsp"],
    }


def _total(per_node: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = ("LUT", "BRAM_18K", "URAM", "DSP")
    return {k: sum(float(r.get(k, 0)) for r in per_node.values()) for k in keys}


def _fits(total: dict[str, float], limit: dict[str, float]) -> bool:
    return all(total[k] <= v for k, v in limit.items())


def fold(model: Any, board: BoardSpec, clock_ns: float, target_fps: float | None = None) -> dict:
    """Set PE/SIMD on ``model`` (in place) and return the FINN folding config it amounts to."""
    from finn.util.basic import getHWCustomOp

    part, limit = board.part, budget(board)
    insts = {n.name: getHWCustomOp(n) for n in model.graph.node}
    for inst in insts.values():
        for knob in knobs(inst):
            inst.set_nodeattr(knob.attr, 1)
    resources = {name: node_resources(inst, part) for name, inst in insts.items()}
    if not _fits(_total(resources), limit):
        return config_of(insts)
    target_cycles = 0 if target_fps is None else 1e9 / (clock_ns * target_fps)
    frozen: set[str] = set()
    while True:
        cycles = {name: inst.get_exp_cycles() for name, inst in insts.items()}
        movable = [name for name in cycles if name not in frozen]
        if not movable:
            break
        slowest = max(movable, key=cycles.__getitem__)
        if cycles[slowest] <= target_cycles or cycles[slowest] < max(cycles.values()):
            break
        if not _step(insts[slowest], part, resources, limit):
            frozen.add(slowest)
    return config_of(insts)


def _step(inst: Any, part: str, resources: dict, limit: dict[str, float]) -> bool:
    """Raise the first knob of ``inst`` that can grow; keep it if the budget still holds."""
    for knob in knobs(inst):
        old = inst.get_nodeattr(knob.attr)
        if knob.attr == "SIMD" and inst.onnx_node.op_type.startswith("VVAU"):
            if inst.get_nodeattr("PE") < inst.get_nodeattr("Channels"):
                continue
        new = _divisors_above(old, knob.bound)
        if new is None:
            continue
        inst.set_nodeattr(knob.attr, new)
        before = resources[inst.onnx_node.name]
        resources[inst.onnx_node.name] = node_resources(inst, part)
        if _fits(_total(resources), limit):
            return True
        inst.set_nodeattr(knob.attr, old)
        resources[inst.onnx_node.name] = before
        return False
    return False


def config_of(insts: dict[str, Any]) -> dict:
    """The FINN folding config JSON ({node: {PE/SIMD: n}}) of the current attributes."""
    config: dict[str, Any] = {"Defaults": {}}
    for name, inst in insts.items():
        entry = {k.attr: inst.get_nodeattr(k.attr) for k in knobs(inst)}
        if entry:
            config[name] = entry
    return config


def write_config(config: dict, path: Path) -> Path:
    path.write_text(json.dumps(config, indent=2))
    return path
