"""Read FINN's estimate reports into a ``Cost`` and write ``report.json`` (every HW node).

FINN writes ``report/estimate_*.json``; we add ``extra_luts.json`` (our LUT estimate for the
ops FINN reports as 0 LUT) and ``report.json``: per node name, op type, PE/SIMD, cycles,
LUT/BRAM_18K/URAM/DSP, then totals, % of the board budget, fps, latency and the bottleneck.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ajpq.backends.finn import folding
from ajpq.boards import BoardSpec

ATTRS = ("PE", "SIMD", "parallel_window")
RESOURCE_KEYS = ("LUT", "BRAM_18K", "URAM", "DSP")


@dataclass
class Cost:
    """FINN's analytical estimate of a folded dataflow accelerator."""

    fps: float
    latency_s: float
    resources: dict[str, float]
    per_layer: dict[str, dict[str, Any]]
    bottleneck: str = ""
    board_percent: dict[str, float] | None = None


def write_extras(model: Any, out_dir: Path) -> None:
    from finn.util.basic import getHWCustomOp

    extra = {n.name: folding.extra_luts(getHWCustomOp(n)) for n in model.graph.node}
    (out_dir / "extra_luts.json").write_text(json.dumps(extra, indent=1))


def read_cost(model: Any, out_dir: Path, board: BoardSpec) -> Cost:
    """FINN's estimates (LUT raised by extra_luts) for each node of ``model``."""
    from finn.util.basic import getHWCustomOp

    report = out_dir / "report"
    perf = json.loads((report / "estimate_network_performance.json").read_text())
    layer_res = json.loads((report / "estimate_layer_resources.json").read_text())
    layer_cycles = json.loads((report / "estimate_layer_cycles.json").read_text())
    extra = json.loads((out_dir / "extra_luts.json").read_text())
    per_layer = {}
    for node in model.graph.node:
        inst, res = getHWCustomOp(node), layer_res.get(node.name, {})
        types = inst.get_nodeattr_types()
        per_layer[node.name] = {
            "op_type": node.op_type,
            **{a: inst.get_nodeattr(a) for a in ATTRS if a in types},
            "cycles": int(layer_cycles.get(node.name, 0)),
            **{k: float(res.get(k, 0)) for k in RESOURCE_KEYS},
        }
        per_layer[node.name]["LUT"] += extra.get(node.name, 0)
    totals = {k: sum(layer[k] for layer in per_layer.values()) for k in RESOURCE_KEYS}
    limit = folding.budget(board, 1.0)
    return Cost(
        fps=float(perf["estimated_throughput_fps"]),
        latency_s=float(perf["estimated_latency_ns"]) * 1e-9,
        resources=totals,
        per_layer=per_layer,
        bottleneck=str(perf.get("max_cycles_node_name", "")),
        board_percent={k: round(100 * totals[k] / v, 1) for k, v in limit.items() if v},
    )


def write_report(
    out_dir: Path, cost: Cost, board: BoardSpec, clock_ns: float, notes: dict[str, Any]
) -> Path:
    """``report.json``: every HW node with its folding, cycles and resources, plus totals."""
    result = notes.get("folding")
    body = {
        "board": board.id,
        "clock_ns": clock_ns,
        "budget_fraction": folding.BUDGET_FRACTION,
        "budget": folding.budget(board),
        **{k: v for k, v in asdict(cost).items() if k != "per_layer"},
        "folding": None
        if result is None
        else {
            "strategy": notes.get("strategy"),
            "stop_reason": result.stop_reason,
            "steps": len(result.steps),
        },
        "step_seconds": notes.get("step_seconds", {}),
        "nodes": [{"name": name, **layer} for name, layer in cost.per_layer.items()],
    }
    path = out_dir / "report.json"
    path.write_text(json.dumps(body, indent=1))
    return path
