"""The FINN build as a short list of named steps, each checkpointed into the build dir.

Every step takes and returns a qonnx ``ModelWrapper`` and its result is saved as
``NN_<name>.onnx``, so a failed build can be read (netron) and resumed from the last good
step. finn-plus is used through ``shim`` only; nothing here needs Vivado.
"""

import contextlib
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq.backends.finn import shim
from ajpq.errors import AjpqError, UnsupportedOp
from ajpq.graph.hwgraph import HwGraph

HW_DOMAINS = ("finn.custom_op.fpgadataflow", "finn.custom_op.fpgadataflow.hls")


@dataclass
class BuildContext:
    """What the steps share: the graph, the build dir and FINN's build config."""

    hw: HwGraph
    out_dir: Path
    config: Any  # finn.builder.build_dataflow_config.DataflowBuildConfig
    folding: Callable[[Any, "BuildContext"], Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # folding result, step seconds


Step = Callable[[Any, BuildContext], Any]


def step_export_qonnx(_: Any, ctx: BuildContext) -> Any:
    """HwGraph -> QONNX (``HwGraph.to_qonnx``)."""
    from qonnx.core.modelwrapper import ModelWrapper

    path = ctx.out_dir / "export.onnx"
    ctx.hw.to_qonnx(path)
    model = ModelWrapper(str(path))
    for node in model.graph.node:  # remember which HwGraph node each ONNX node came from
        node.doc_string = node.doc_string or f"ajpq:{node.output[0].split('.')[0]}"
    return model


def step_cleanup(model: Any, _: BuildContext) -> Any:
    """qonnx cleanup, InferShapes, FoldConstants, InferDataTypes."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(model)
    return model.transform(InferShapes()).transform(FoldConstants()).transform(InferDataTypes())


def step_qonnx_to_finn(model: Any, ctx: BuildContext) -> Any:
    """Quant weights -> FINN DataTypes (finn-plus ``step_qonnx_to_finn``)."""
    return shim.builder().step_qonnx_to_finn(model, ctx.config)


def step_tidy_up(model: Any, ctx: BuildContext) -> Any:
    """finn-plus ``step_tidy_up`` (names, shapes, datatypes)."""
    return shim.builder().step_tidy_up(model, ctx.config)


def step_streamline(model: Any, _: BuildContext) -> Any:
    """StreamlinePlus around the conv lowering, reorg as Im2Col, concat moved to NHWC."""
    shim.load()
    from finn.transformation.streamline import absorb
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC, MoveTransposePastJoinConcat
    from finn.transformation.streamline.streamline_plus import StreamlinePlus
    from qonnx.transformation.general import RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    from ajpq.backends.finn.reorg import ReorgToIm2Col

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(StreamlinePlus())
    model = model.transform(ReorgToIm2Col()).transform(InferShapes()).transform(InferDataTypes())
    model = model.transform(LowerConvsToMatMul()).transform(MakeMaxPoolNHWC())
    model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
    model = model.transform(MakeMaxPoolNHWC()).transform(absorb.AbsorbConsecutiveTransposes())
    model = model.transform(StreamlinePlus())
    model = model.transform(MoveTransposePastJoinConcat())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())
    return model.transform(InferDataLayouts()).transform(RemoveUnusedTensors())


def step_convert_to_hw(model: Any, ctx: BuildContext) -> Any:
    """finn-plus ``step_convert_to_hw``: MVAU, VVAU, SWG, Pool, FMPadding, Concat, ...

    The final NHWC -> NCHW Transpose is kept out of the conversion (it would become an
    unspecializable Shuffle): it stays on the host, like the first one.
    """
    last = model.find_producer(model.graph.output[0].name)
    if last is None or last.op_type != "Transpose":
        return shim.builder().step_convert_to_hw(model, ctx.config)
    model.graph.node.remove(last)
    out_info = model.graph.output.pop()
    inner = model.get_tensor_valueinfo(last.input[0])
    model.graph.value_info.remove(inner)
    model.graph.output.append(inner)
    model = shim.builder().step_convert_to_hw(model, ctx.config)
    model.graph.value_info.append(model.graph.output.pop())
    model.graph.output.append(out_info)
    model.graph.node.append(last)
    return model


def step_minimize_bit_width_initial(model: Any, ctx: BuildContext) -> Any:
    """finn-plus ``step_minimize_bit_width_initial``: tight accumulator and threshold widths.

    Run before specialization and folding (as in finn-plus' default steps): otherwise they
    see the 32-bit placeholder accumulators of convert_to_hw, and a standalone 8-bit
    Thresholding layer's 255 thresholds per channel are costed at 33 bits instead of ~20.
    """
    return shim.builder().step_minimize_bit_width_initial(model, ctx.config)


def check_all_mapped(model: Any) -> None:
    """UnsupportedOp naming the first node between the host Transposes that is no HW op."""
    nodes = list(model.graph.node)
    inner = nodes[1:-1] if nodes and nodes[-1].op_type == "Transpose" else nodes[1:]
    for node in inner:
        if node.domain not in HW_DOMAINS:
            origin = node.doc_string.removeprefix("ajpq:") if node.doc_string else "?"
            raise UnsupportedOp(
                f"FINN could not map HwGraph node '{origin}' (FINN node '{node.name}', "
                f"{node.op_type}) to a HW op; the finn backend supports conv, depthwise "
                "conv, maxpool, concat and reorg with integer activations — see "
                "04_streamline.onnx in the build dir"
            )


def step_create_dataflow_partition(model: Any, ctx: BuildContext) -> Any:
    """Split off the HW ops (all of them, or UnsupportedOp); the child model is saved."""
    check_all_mapped(model)
    return shim.builder().step_create_dataflow_partition(model, ctx.config)


def step_specialize_layers(model: Any, ctx: BuildContext) -> Any:
    """Pick the _hls / _rtl variant of every HW op for the board's part."""
    return shim.builder().step_specialize_layers(model, ctx.config)


def step_folding(model: Any, ctx: BuildContext) -> Any:
    """Choose PE/SIMD to the board budget (folding.py) and apply it as a FINN config."""
    if ctx.folding is None:
        return model
    return ctx.folding(model, ctx)


def step_minimize_bit_width(model: Any, ctx: BuildContext) -> Any:
    """finn-plus ``step_minimize_bit_width`` (weights, accumulators, thresholds)."""
    return shim.builder().step_minimize_bit_width(model, ctx.config)


def step_generate_estimate_reports(model: Any, ctx: BuildContext) -> Any:
    """FINN's analytical estimates into out_dir/report/estimate_*.json."""
    return shim.builder().step_generate_estimate_reports(model, ctx.config)


STEPS: list[tuple[str, Step]] = [
    ("qonnx", step_export_qonnx),
    ("cleanup", step_cleanup),
    ("qonnx_to_finn", step_qonnx_to_finn),
    ("tidy", step_tidy_up),
    ("streamline", step_streamline),
    ("convert_to_hw", step_convert_to_hw),
    ("minimize_bit_width_initial", step_minimize_bit_width_initial),
    ("dataflow_partition", step_create_dataflow_partition),
    ("specialize_layers", step_specialize_layers),
    ("folding", step_folding),
    ("minimize_bit_width", step_minimize_bit_width),
    ("estimate_reports", step_generate_estimate_reports),
]


def checkpoint_name(index: int, name: str) -> str:
    return f"{index:02d}_{name}.onnx"


@contextlib.contextmanager
def quiet(log: Path, step: str) -> Iterator[None]:
    """FINN's prints (stdout and stderr) and warnings go to ``log`` (the build dir's finn.log)."""
    with open(log, "a") as stream, warnings.catch_warnings():
        stream.write(f"--- {step}\n")

        def to_log(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
            stream.write(warnings.formatwarning(message, category, filename, lineno))

        warnings.showwarning = to_log
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield


def run_steps(
    ctx: BuildContext,
    until: str | None = None,
    resume: Path | None = None,
    resume_after: str = "specialize_layers",
) -> Any:
    """Run STEPS in order (up to and including ``until``), saving each model into out_dir.

    With ``resume`` (an earlier build dir), start from its checkpoint of ``resume_after``.
    """
    model, start = None, 0
    seconds = ctx.notes.setdefault("step_seconds", {})
    if resume is not None:
        shim.load()
        from qonnx.core.modelwrapper import ModelWrapper

        start = [name for name, _ in STEPS].index(resume_after) + 1
        checkpoint = Path(resume) / checkpoint_name(start - 1, resume_after)
        if not checkpoint.is_file():
            raise AjpqError(
                f"cannot resume from {resume}: it has no {checkpoint.name} (a build dir from "
                "another ajpq version numbers its steps differently); compile without resume"
            )
        model = ModelWrapper(str(checkpoint))
        if (Path(resume) / "intermediate_models").is_dir():
            shutil.copytree(
                Path(resume) / "intermediate_models",
                ctx.out_dir / "intermediate_models",
                dirs_exist_ok=True,
            )
    for index, (name, step) in enumerate(STEPS[start:], start):
        began = time.perf_counter()
        with quiet(ctx.out_dir / "finn.log", name):
            model = step(model, ctx)
        model.save(str(ctx.out_dir / checkpoint_name(index, name)))
        seconds[name] = round(time.perf_counter() - began, 2)
        if name == until:
            break
    return model
