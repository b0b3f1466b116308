"""What compile leaves for ``finn build`` on a Vivado host: model, config, README."""

import json
from pathlib import Path
from typing import Any

from ajpq.boards import BoardSpec
from ajpq.errors import AjpqError

README = """# FINN build dir (ajpq)

Produced by `ajpq.backends.finn.compile` without Vivado. Each `NN_<step>.onnx` is the model
after that step; `report/estimate_*.json` are FINN's analytical estimates (LUT raised by
`extra_luts.json` for ops FINN reports as 0 LUT); `report.json` lists every HW node with
its PE/SIMD, cycles and resources, the totals, % of the board and the bottleneck.

`model.onnx` is the folded dataflow partition (after specialize_layers, folding and
minimize_bit_width). The input NCHW->NHWC and output NHWC->NCHW Transposes run on the host
(see `intermediate_models/dataflow_parent.onnx`).

On a host with Vivado/Vitis HLS and finn-plus 1.6.1:

    finn build dataflow_build_config.json model.onnx

The config starts at step_minimize_bit_width-compatible steps (already applied here) and
continues with FIFO sizing, HLS IP generation, stitched IP and the {shell} shell for {board}.
FIFO depths were not sized here (that needs rtlsim): `auto_fifo_depths` is on.
"""

HOST_NODES = ("Transpose (input NCHW->NHWC)", "Transpose (output NHWC->NCHW)")
VIVADO_STEPS = [
    "step_hw_codegen",
    "step_hw_ipgen",
    "step_set_fifo_depths",
    "step_create_stitched_ip",
    "step_measure_rtlsim_performance",
    "step_out_of_context_synthesis",
    "step_synthesize_bitfile",
    "step_make_driver",
    "step_deployment_package",
]


def write_build_dir(
    artifact_cls: type, spec: BoardSpec, out: Path, model: Any, clock_ns: float, cost: Any
) -> Any:
    model_path = out / "model.onnx"
    model.save(str(model_path))
    finn = spec.extra.get("finn", {})
    config = {
        "output_dir": "output",
        "synth_clk_period_ns": clock_ns,
        "board": finn.get("board"),
        "fpga_part": spec.part,
        "shell_flow_type": finn.get("shell", "vivado_zynq").replace("zynq_iodma", "vivado_zynq"),
        "folding_config_file": "folding_config.json",
        "auto_fifo_depths": True,
        "standalone_thresholds": True,  # as converted here (Thresholding layers)
        "steps": VIVADO_STEPS,
        "generate_outputs": ["estimate_reports", "stitched_ip", "bitfile", "pynq_driver"],
    }
    config_path = out / "dataflow_build_config.json"
    config_path.write_text(json.dumps(config, indent=2))
    (out / "README.md").write_text(
        README.replace("{shell}", str(finn.get("shell"))).replace("{board}", str(finn.get("board")))
    )
    return artifact_cls(
        backend="finn",
        board=spec.id,
        out_dir=out,
        model=model_path,
        build_config=config_path,
        folding_config=out / "folding_config.json",
        cost=cost,
        host_nodes=list(HOST_NODES),
    )


def load_artifact(out: Path) -> Any:
    """The FinnArtifact ``compile`` left in ``out`` (read back from its report.json)."""
    from ajpq.backends.finn import FinnArtifact
    from ajpq.backends.finn.report import Cost

    report = out / "report.json"
    if not report.is_file():
        raise AjpqError(
            f"{out} has no report.json; compile into it with `ajpq compile --backend finn`"
        )
    body = json.loads(report.read_text())
    nodes = {node.pop("name"): node for node in body["nodes"]}
    cost = Cost(
        fps=body["fps"],
        latency_s=body["latency_s"],
        resources=body["resources"],
        per_layer=nodes,
        bottleneck=body.get("bottleneck", ""),
        board_percent=body.get("board_percent"),
    )
    return FinnArtifact(
        backend="finn",
        board=body["board"],
        out_dir=out,
        model=out / "model.onnx",
        build_config=out / "dataflow_build_config.json",
        folding_config=out / "folding_config.json",
        cost=cost,
        host_nodes=list(HOST_NODES),
        report=report,
    )
