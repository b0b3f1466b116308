"""FINN backend: HwGraph -> QONNX -> finn-plus steps -> a folded dataflow build dir.

``compile`` runs every estimate-only step here (no Vivado) and leaves a build dir that
``finn build`` continues on a Vivado host; ``estimate`` returns finn-plus's cost estimates of
such a compile. The search uses ``backend.FINN`` (the ``ajpq.backends.Backend``), whose
``estimate`` is the analytical model of layers.py and cost_model.py (no finn-plus).
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq import boards
from ajpq.backends.finn import finn_folding, folding, shim
from ajpq.backends.finn.layers import check_input
from ajpq.backends.finn.report import Cost, read_cost, write_extras, write_report
from ajpq.backends.finn.steps import STEPS, BuildContext, run_steps
from ajpq.boards import BoardSpec
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph

__all__ = ["Cost", "FinnArtifact", "STRATEGIES", "compile", "estimate", "STEPS"]

STRATEGIES = ("ajpq", "finn-target-fps")


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
    report: Path | None = None  # report.json: every HW node, its folding, cycles, resources


def board_spec(board: str | BoardSpec) -> BoardSpec:
    """The FPGA board ``board`` names (or is); an MCU board is one sentence."""
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
        standalone_thresholds=True,
    )


def _folder(spec: BoardSpec, clock_ns: float, target_fps: float | None, strategy: str):  # noqa: ANN202
    def apply(model: Any, ctx: BuildContext) -> Any:
        from finn.transformation.general import ApplyConfig

        if strategy == "finn-target-fps":
            model, result = finn_folding.fold_within_budget(model, spec, clock_ns)
        else:
            result = folding.fold(model, spec, clock_ns, target_fps)
        ctx.notes["folding"], ctx.notes["strategy"] = result, strategy
        path = folding.write_config(result.config, ctx.out_dir / "folding_config.json")
        return model.transform(ApplyConfig(str(path)))

    return apply


def compile(  # noqa: A001 - the backend contract's name
    hw: HwGraph,
    board: str | BoardSpec = "ultra96-v2",
    out_dir: str | Path = "finn-build",
    target_fps: float | None = None,
    clock_ns: float = 5.0,
    console: Any = None,
    *,
    strategy: str = "ajpq",
    resume: str | Path | None = None,
) -> FinnArtifact:
    """Run the FINN steps for ``board`` into ``out_dir`` and return the artifact.

    ``strategy``: "ajpq" (folding.py) or "finn-target-fps" (FINN's SetFolding, highest
    target within the same budget). ``resume``: an earlier build dir of the same graph whose
    checkpoints up to specialize_layers are reused (only folding onwards runs again).
    """
    from ajpq.backends.finn.build_dir import write_build_dir

    if strategy not in STRATEGIES:
        raise AjpqError(f"unknown folding strategy '{strategy}'; known: {STRATEGIES}")
    check_input(hw)
    spec = board_spec(board)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = _folder(spec, clock_ns, target_fps, strategy)
    ctx = BuildContext(hw, out, _config(spec, out, clock_ns, None), folder)
    model = run_steps(ctx, resume=None if resume is None else Path(resume))
    write_extras(model, out)
    cost = read_cost(model, out, spec)
    artifact = write_build_dir(FinnArtifact, spec, out, model, clock_ns, cost)
    artifact.report = write_report(out, cost, spec, clock_ns, ctx.notes)
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
