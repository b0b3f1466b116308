"""FINN backend: HwGraph -> QONNX -> finn-plus steps -> a folded dataflow build dir.

``compile`` runs every estimate-only step here (no Vivado) and leaves a build dir that
``finn build`` continues on a Vivado host; ``estimate`` returns FINN's cost estimates.
"""

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq import boards
from ajpq.backends.finn import folding, shim
from ajpq.backends.finn.steps import STEPS, BuildContext, run_steps
from ajpq.boards import BoardSpec
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph

__all__ = ["Cost", "FinnArtifact", "compile", "estimate", "STEPS"]


@dataclass
class Cost:
    """FINN's analytical estimate of a folded dataflow accelerator."""

    fps: float
    latency_s: float
    resources: dict[str, float]
    per_layer: dict[str, dict[str, Any]]


@dataclass
class FinnArtifact:
    backend: str
    board: str
    out_dir: Path
    model: Path  # the folded dataflow model, input of ``finn build`` on a Vivado host
    build_config: Path
    folding_config: Path
    cost: Cost
    host_nodes: list[str] = field(default_factory=list)


def _board(board: str | BoardSpec) -> BoardSpec:
    spec = boards.get(board) if isinstance(board, str) else board
    if spec.kind != "fpga":
        raise AjpqError(f"board '{spec.id}' is a {spec.kind} board; the finn backend needs fpga")
    return spec


def _config(spec: BoardSpec, out_dir: Path, clock_ns: float, folding_file: Path | None) -> Any:
    shim.load()
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    return DataflowBuildConfig(
        output_dir=str(out_dir),
        synth_clk_period_ns=clock_ns,
        fpga_part=spec.part,
        board=spec.extra.get("finn", {}).get("board"),
        folding_config_file=folding_file,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
    )


def _folder(spec: BoardSpec, clock_ns: float, target_fps: float | None):  # noqa: ANN202
    def apply(model: Any, ctx: BuildContext) -> Any:
        from finn.transformation.general import ApplyConfig

        config = folding.fold(model, spec, clock_ns, target_fps)
        path = folding.write_config(config, ctx.out_dir / "folding_config.json")
        return model.transform(ApplyConfig(str(path)))

    return apply


def _read_cost(out_dir: Path) -> Cost:
    report = out_dir / "report"
    perf = json.loads((report / "estimate_network_performance.json").read_text())
    layer_res = json.loads((report / "estimate_layer_resources.json").read_text())
    layer_cycles = json.loads((report / "estimate_layer_cycles.json").read_text())
    extra = json.loads((out_dir / "extra_luts.json").read_text())
    per_layer = {
        name: {
            **res,
            "LUT": float(res.get("LUT", 0)) + extra.get(name, 0),
            "cycles": layer_cycles.get(name, 0),
        }
        for name, res in layer_res.items()
        if name != "total"
    }
    keys = ("LUT", "BRAM_18K", "URAM", "DSP")
    totals = {k: sum(float(r.get(k, 0)) for r in per_layer.values()) for k in keys}
    return Cost(
        fps=float(perf["estimated_throughput_fps"]),
        latency_s=float(perf["estimated_latency_ns"]) * 1e-9,
        resources=totals,
        per_layer=per_layer,
    )


def _write_extras(model: Any, out_dir: Path) -> None:
    from finn.util.basic import getHWCustomOp

    extra = {n.name: folding.extra_luts(getHWCustomOp(n)) for n in model.graph.node}
    (out_dir / "extra_luts.json").write_text(json.dumps(extra, indent=1))


def compile(  # noqa: A001 - the backend contract's name
    hw: HwGraph,
    board: str | BoardSpec = "ultra96-v2",
    out_dir: str | Path = "finn-build",
    target_fps: float | None = None,
    clock_ns: float = 5.0,
    console: Any = None,
) -> FinnArtifact:
    """Run the FINN steps for ``board`` into ``out_dir`` and return the artifact."""
    from ajpq.backends.finn.build_dir import write_build_dir

    spec = _board(board)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = BuildContext(
        hw, out, _config(spec, out, clock_ns, None), _folder(spec, clock_ns, target_fps)
    )
    model = run_steps(ctx)
    _write_extras(model, out)
    cost = _read_cost(out)
    artifact = write_build_dir(FinnArtifact, spec, out, model, clock_ns, cost)
    if console is not None:
        console.print(
            f"finn: {len(model.graph.node)} HW nodes, {cost.fps:.0f} fps, "
            f"LUT {cost.resources['LUT']:.0f}, BRAM_18K {cost.resources['BRAM_18K']:.0f}, "
            f"DSP {cost.resources['DSP']:.0f} -> {out}"
        )
    return artifact


def estimate(hw: HwGraph, board: str | BoardSpec = "ultra96-v2", clock_ns: float = 5.0) -> Cost:
    """FINN's estimate of ``hw`` folded to ``board`` (runs the steps in a temporary dir)."""
    with tempfile.TemporaryDirectory(prefix="ajpq-finn-") as tmp:
        return compile(hw, board, tmp, clock_ns=clock_ns).cost
