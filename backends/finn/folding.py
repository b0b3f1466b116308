"""Fold a specialized FINN dataflow model to a board: PE/SIMD per layer within a budget.

Greedy bottleneck balancing over *units*: a depthwise sliding-window generator (SWG) and the
VVAU or Pool it feeds are one unit, because FINN needs the SWG's SIMD equal to that node's PE.
Every unit starts at its least parallel setting; the slowest unit (FINN's ``get_exp_cycles``)
repeatedly gets its next legal step, kept only if FINN's resource estimate (plus
``extra_luts`` for the ops FINN reports as 0 LUT) stays within ``fraction`` of the board's
LUT, BRAM and DSP. Steps, in order: PE (MVAU: SIMD then PE) to the next divisor; then for a
depthwise unit whose VVAU has all channels in parallel, the whole k×k window at once (VVAU
SIMD = k², SWG ``parallel_window`` = 1: one window per cycle instead of one pixel of it); a
standard SWG with SIMD at its channel count goes ``parallel_window`` likewise. Folding stops
when the bottleneck cannot be sped up (a resource reached its budget, or the node is fully
parallel) or ``target_fps`` is reached. When LUT blocks a step, ``free_luts`` first moves
the biggest LUT user it can to another resource with room (SWG line buffer to BRAM, MACs
to DSPs) and folding goes on. FINN's own SetFolding is the baseline
(``finn_folding.py``).
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq.boards import BoardSpec
from ajpq.errors import BudgetExceeded

BUDGET_FRACTION = 0.85
FINN_ZERO_LUT_OPS = ("DuplicateStreams", "StreamingConcat", "Pool", "FMPadding")
MAX_STREAM_BITS = 8191  # FINN's MAX_ALLOWED_AP_INT_W
NO_URAM_DEPTH = 1 << 30  # a Thresholding_rtl depth_trigger_uram no memory reaches
CONFIG_ATTRS = (
    "parallel_window",
    "ram_style",
    "resType",
    "depth_trigger_bram",
    "depth_trigger_uram",
)
KEYS = ("LUT", "BRAM_18K", "DSP")
Step = dict[tuple[str, str], int]  # {("lead" | "swg", attribute): value}


@dataclass(frozen=True)
class Knob:
    """One parallelism attribute of a node and the dimension its value must divide."""

    attr: str
    bound: int


@dataclass
class Unit:
    """Nodes folded together: ``lead`` and the depthwise SWG tied to it (if any)."""

    lead: Any
    swg: Any = None

    @property
    def members(self) -> list[Any]:
        return [self.lead] if self.swg is None else [self.swg, self.lead]

    def cycles(self) -> int:
        return max(inst.get_exp_cycles() for inst in self.members)


@dataclass
class Folding:
    """The result of ``fold``: FINN folding config, why it stopped, the bottleneck node."""

    config: dict
    stop_reason: str
    bottleneck: str
    steps: list[str] = field(default_factory=list)  # "node: ATTR=v,..." in the order taken


def op_kind(inst: Any) -> str:
    return inst.onnx_node.op_type.split("_")[0]


def _next_divisor(value: int, bound: int) -> int | None:
    return next((d for d in range(value + 1, bound + 1) if bound % d == 0), None)


def knobs(inst: Any) -> list[Knob]:
    """PE/SIMD attributes of a HW op (a depthwise SWG's SIMD follows its unit's lead)."""
    op, get = op_kind(inst), inst.get_nodeattr
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
    """Our LUT estimate for logic FINN's estimator leaves out (registers, muxes, compare)."""
    op = op_kind(inst)
    if inst.onnx_node.op_type == "Thresholding_rtl":  # FINN counts its LUTRAM only
        return threshold_comparator_luts(inst)
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


def threshold_comparator_luts(inst: Any) -> int:
    """Thresholding_rtl: per PE, one comparator per binary-search stage (one per output
    bit), as wide as the input (≈ 1 LUT per bit with the carry chain)."""
    stages = inst.get_output_datatype().bitwidth()
    return inst.get_nodeattr("PE") * stages * inst.get_input_datatype().bitwidth()


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


def total(per_node: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = ("LUT", "BRAM_18K", "URAM", "DSP")
    return {k: sum(float(r.get(k, 0)) for r in per_node.values()) for k in keys}


def overflow(used: dict[str, float], limit: dict[str, float]) -> str | None:
    """The resource most over its limit, or None when everything fits."""
    over = {k: used[k] / v if v else math.inf for k, v in limit.items() if used[k] > v}
    return max(over, key=over.__getitem__) if over else None


def units(model: Any) -> list[Unit]:
    """Group the HW nodes: each depthwise SWG joins the VVAU/Pool it feeds."""
    from finn.util.basic import getHWCustomOp

    insts = {n.name: getHWCustomOp(n) for n in model.graph.node}
    tied: dict[str, Any] = {}
    for node in model.graph.node:
        inst = insts[node.name]
        if op_kind(inst) == "ConvolutionInputGenerator" and inst.get_nodeattr("depthwise"):
            consumers = model.find_consumers(node.output[0]) or []
            if len(consumers) == 1 and op_kind(insts[consumers[0].name]) in ("VVAU", "Pool"):
                tied[consumers[0].name] = inst
    swgs = {id(s) for s in tied.values()}
    return [Unit(inst, tied.get(name)) for name, inst in insts.items() if id(inst) not in swgs]


def _streams_ok(inst: Any) -> bool:
    return max(inst.get_instream_width(), inst.get_outstream_width()) <= MAX_STREAM_BITS


def _candidates(unit: Unit) -> list[Step]:
    """The next legal settings of ``unit``, least added parallelism first.

    A VVAU may raise PE (next divisor of its channels; its SWG's SIMD follows) or take the
    whole k×k window at once (SIMD = k², SWG ``parallel_window``): for a pruned layer with a
    prime channel count (PE 1 → 67) the window (×9) is the far smaller step. An MVAU may
    raise SIMD or PE. Other ops raise their knob, then a standard SWG at full SIMD may go
    ``parallel_window``.
    """
    lead, op = unit.lead, op_kind(unit.lead)
    get = lead.get_nodeattr
    if op in ("VVAU", "Pool", "MVAU"):
        options = []
        for knob in knobs(lead):
            value = _next_divisor(get(knob.attr), knob.bound)
            if value is None or (op == "VVAU" and knob.attr == "SIMD"):
                continue
            step = {("lead", knob.attr): value}
            if unit.swg is not None and knob.attr == "PE":
                step[("swg", "SIMD")] = value
            options.append(step)
        window = math.prod(get("Kernel")) if op == "VVAU" else 1
        rtl_swg = unit.swg is not None and unit.swg.onnx_node.op_type.endswith("_rtl")
        if op == "VVAU" and get("SIMD") < window and rtl_swg:
            options.append({("lead", "SIMD"): window, ("swg", "parallel_window"): 1})
        return sorted(options, key=lambda step: _parallelism(lead, step))
    for knob in knobs(lead):
        value = _next_divisor(get(knob.attr), knob.bound)
        if value is not None:
            return [{("lead", knob.attr): value}]
    is_rtl_swg = lead.onnx_node.op_type == "ConvolutionInputGenerator_rtl"
    if is_rtl_swg and not get("parallel_window") and math.prod(get("ConvKernelDim")) > 1:
        return [{("lead", "parallel_window"): 1}]
    return []


def _parallelism(lead: Any, step: Step) -> int:
    values = {k.attr: lead.get_nodeattr(k.attr) for k in knobs(lead)}
    values |= {attr: value for (role, attr), value in step.items() if role == "lead"}
    return math.prod(values.values())


def _apply(unit: Unit, step: Step) -> Step:
    """Set ``step`` on the unit's members; return the values it replaced."""
    old = {}
    for (role, attr), value in step.items():
        inst = unit.lead if role == "lead" else unit.swg
        old[(role, attr)] = inst.get_nodeattr(attr)
        inst.set_nodeattr(attr, value)
    return old


def fold(model: Any, board: BoardSpec, clock_ns: float, target_fps: float | None = None) -> Folding:
    """Set PE/SIMD on ``model`` (in place); BudgetExceeded if even PE=SIMD=1 does not fit."""
    part, limit = board.part, budget(board)
    groups = units(model)
    for unit in groups:
        for inst in unit.members:
            for knob in knobs(inst):
                inst.set_nodeattr(knob.attr, 1)
            if "parallel_window" in inst.get_nodeattr_types():
                inst.set_nodeattr("parallel_window", 0)
    resources = {u.lead.onnx_node.name: _unit_resources(u, part) for u in groups}
    while overflow(total(resources), limit) == "LUT" and free_luts(groups, part, resources, limit):
        pass
    slowest_cycles = max((u.cycles() for u in groups), default=1)
    check_fits_unfolded(total(resources), limit, board, 1e9 / (clock_ns * max(slowest_cycles, 1)))
    target_cycles = 0 if target_fps is None else 1e9 / (clock_ns * target_fps)
    history: list[str] = []
    while True:
        slowest = max(groups, key=Unit.cycles)
        name = slowest.lead.onnx_node.name
        if slowest.cycles() <= target_cycles:
            reason = f"target {target_fps:.0f} fps reached"
            break
        steps = _candidates(slowest)
        if not steps:
            reason = f"bottleneck {name} is fully parallel"
            break
        taken = _take_first_that_fits(slowest, steps, part, resources, limit)
        if isinstance(taken, str) and taken.startswith("LUT"):
            if free_luts(groups, part, resources, limit):
                continue
        if isinstance(taken, str):
            reason = f"every next step of bottleneck {name} would exceed the {taken}"
            break
        history.append(f"{name}: " + ",".join(f"{a}={v}" for (_, a), v in taken.items()))
    bottleneck = max((i for u in groups for i in u.members), key=lambda i: i.get_exp_cycles())
    insts = {i.onnx_node.name: i for u in groups for i in u.members}
    return Folding(config_of(insts), reason, bottleneck.onnx_node.name, history)


def _take_first_that_fits(
    unit: Unit, steps: list[Step], part: str, resources: dict, limit: dict[str, float]
) -> Step | str:
    """Apply the first of ``steps`` that keeps the budget; else what it overflows."""
    name, before, over = unit.lead.onnx_node.name, resources[unit.lead.onnx_node.name], ""
    for step in steps:
        old = _apply(unit, step)
        resources[name] = _unit_resources(unit, part)
        worst = overflow(total(resources), limit)
        if worst is None and all(_streams_ok(i) for i in unit.members):
            return step
        over = over or (f"{worst} budget" if worst else "FINN stream width limit")
        _apply(unit, old)
        resources[name] = before
    return over


def _rebindings(inst: Any) -> list[dict[str, Any]]:
    """Ways to move ``inst``'s LUT use elsewhere: SWG line buffer or HLS threshold memory to
    BRAM, MACs to DSPs, the next-deepest stage of an RTL Thresholding's memory to BRAM."""
    op, types = op_kind(inst), inst.get_nodeattr_types()
    if op in ("ConvolutionInputGenerator", "Thresholding") and "ram_style" in types:
        return [{"ram_style": "block"}] if inst.get_nodeattr("ram_style") != "block" else []
    if op == "Thresholding" and "depth_trigger_bram" in types:
        return _threshold_memory_to_bram(inst)
    if op in ("MVAU", "VVAU") and "resType" in types and inst.get_nodeattr("resType") != "dsp":
        return [{"resType": "dsp"}]
    return []


def _threshold_memory_to_bram(inst: Any) -> list[dict[str, Any]]:
    """Thresholding_rtl keeps one memory per binary-search stage (depth C/PE · 2^s); every
    stage at least ``depth_trigger_bram`` deep goes to BRAM, the rest to LUTRAM. The move
    lowers the trigger to the deepest stage still in LUTRAM. ``depth_trigger_uram`` is set
    above every depth: with only the BRAM trigger set, FINN's estimate puts all stages in
    URAM, while the RTL puts them in BRAM and LUTRAM as the estimate then says."""
    trigger = inst.get_nodeattr("depth_trigger_bram") or math.inf
    depths = [int(depth) for _, depth in inst.get_pe_mem_geometries() if depth < trigger]
    if not depths:
        return []
    return [{"depth_trigger_bram": max(depths), "depth_trigger_uram": NO_URAM_DEPTH}]


def free_luts(groups: list[Unit], part: str, resources: dict, limit: dict[str, float]) -> bool:
    """Apply the rebinding that saves the most LUT while the budget still holds, if any."""
    best: tuple[float, Any, dict[str, Any], str, dict] | None = None
    for unit in groups:
        name = unit.lead.onnx_node.name
        for inst in unit.members:
            for move in _rebindings(inst):
                old = {attr: inst.get_nodeattr(attr) for attr in move}
                _set(inst, move)
                after = _unit_resources(unit, part)
                _set(inst, old)
                saved = resources[name]["LUT"] - after["LUT"]
                fits = overflow(total({**resources, name: after}), limit) is None
                if saved > 0 and fits and (best is None or saved > best[0]):
                    best = (saved, inst, move, name, after)
    if best is None:
        return False
    _, inst, move, name, after = best
    _set(inst, move)
    resources[name] = after
    return True


def _set(inst: Any, attributes: dict[str, Any]) -> None:
    for attr, value in attributes.items():
        inst.set_nodeattr(attr, value)


def _unit_resources(unit: Unit, part: str) -> dict[str, float]:
    per_member = [node_resources(inst, part) for inst in unit.members]
    return {
        k: sum(float(r.get(k, 0)) for r in per_member) for k in ("LUT", "BRAM_18K", "URAM", "DSP")
    }


def check_fits_unfolded(
    used: dict[str, float], limit: dict[str, float], board: BoardSpec, fps: float | None = None
) -> None:
    """BudgetExceeded naming the resource most over budget when PE=SIMD=1 does not fit;
    ``error.needed`` holds that design's resources (and its ``fps``, when given)."""
    worst = overflow(used, limit)
    if worst is None:
        return
    others = [k for k in KEYS if k != worst and used[k] > limit[k]]
    also = f" (also over: {', '.join(others)})" if others else ""
    error = BudgetExceeded(
        f"the model needs {used[worst]:,.0f} {worst} even fully folded (every PE/SIMD = 1), "
        f"{used[worst] - limit[worst]:,.0f} more than the {limit[worst]:,.0f} "
        f"({BUDGET_FRACTION:.0%} of {board.id}) it may use{also}; prune or quantize "
        f"further, or pick a bigger board"
    )
    error.needed = {**used, "fps": fps}  # the fully folded design, for reports that show it
    raise error


def config_of(insts: dict[str, Any]) -> dict:
    """The FINN folding config JSON ({node: {PE/SIMD/parallel_window: n}})."""
    config: dict[str, Any] = {"Defaults": {}}
    for name, inst in insts.items():
        entry = {k.attr: inst.get_nodeattr(k.attr) for k in knobs(inst)}
        for attr in CONFIG_ATTRS:
            if attr in inst.get_nodeattr_types():
                entry[attr] = inst.get_nodeattr(attr)
        if entry:
            config[name] = entry
    return config


def write_config(config: dict, path: Path) -> Path:
    path.write_text(json.dumps(config, indent=2))
    return path
