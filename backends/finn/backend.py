"""The finn backend behind ``ajpq.backends.Backend`` (registered as ``FINN``).

``compile`` runs the finn-plus steps (``ajpq.backends.finn.compile``); ``estimate`` is the
analytical model (layers.py + cost_model.py: no finn-plus, no ONNX, a few ms per call);
``measure`` is finn-plus's own estimate of a real compile (reference.py); ``evidence`` and
``calibrate`` fit the model to those (calibration.py).
"""

import hashlib
import math
from importlib import metadata
from pathlib import Path
from typing import Any

from ajpq.backends import Cost
from ajpq.backends.finn import calibration as fitting
from ajpq.backends.finn import cost_model, folding, reference
from ajpq.backends.finn.layers import Layer, layers
from ajpq.boards import BoardSpec, Measurement
from ajpq.graph.hwgraph import HwGraph

WEIGHT_OPS = ("conv", "linear")
MODEL_SOURCES = ("layers.py", "cost_model.py", "calibration.py", "steps.py", "folding.py")


def clock_ns(spec: BoardSpec) -> float:
    """The fabric clock period the board file names (FINN's synth_clk_period_ns)."""
    return 1e9 / spec.clock_hz


def _scaled(layer: Layer, fold: cost_model.Fold, calibration: dict) -> dict[str, float]:
    scale = calibration.get("scale", {}).get(layer.op, {})
    offset = calibration.get("offset", {}).get(layer.op, {})
    raw = {"cycles": cost_model.cycles(layer, fold), **cost_model.resources(layer, fold)}
    return {k: raw[k] * scale.get(k, 1.0) + offset.get(k, 0.0) for k in fitting.QUANTITIES}


def analytical_cost(
    hw: HwGraph, spec: BoardSpec, calibration: dict | None, fps: float | None
) -> Cost:
    """The cost model's ``Cost`` of ``hw`` folded to ``fps`` (cost_model.fold), LUT moved to
    DSP/BRAM while over the budget (cost_model.rebind), scaled by ``calibration``."""
    calibration = calibration or {}
    period = clock_ns(spec)
    layer_list = layers(hw)
    cycle_scale = {op: s.get("cycles", 1.0) for op, s in calibration.get("scale", {}).items()}
    target = None if fps is None else 1e9 / (period * fps)
    folds = cost_model.fold(layer_list, target, cycle_scale)
    limits = folding.budget(spec)
    used = [
        _scaled(layer, fold, calibration) for layer, fold in zip(layer_list, folds, strict=True)
    ]
    cost_model.rebind(
        layer_list, folds, used, limits, lambda layer, fold: _scaled(layer, fold, calibration)
    )
    per_layer = {
        layer.name: {"op_type": layer.op, **fold, **row}
        for layer, fold, row in zip(layer_list, folds, used, strict=True)
    }
    slowest = max((row["cycles"] for row in per_layer.values()), default=1.0)
    total = sum(row["cycles"] for row in per_layer.values())
    return Cost(
        latency_s=total * period * 1e-9,
        fps=1e9 / (period * max(slowest, 1.0)),
        count=slowest,
        unit="cycles",
        resources={k: sum(row[k] for row in per_layer.values()) for k in cost_model.RESOURCES},
        limits=limits,
        per_layer=per_layer,
    )


class FinnBackend:
    """FINN dataflow accelerators on FPGA boards (finn-plus, estimate-only without Vivado)."""

    name = "finn"
    board_kind = "fpga"

    def compile(self, hw: HwGraph, board: str | BoardSpec, out_dir: str | Path, **options: Any):  # noqa: ANN201, A003
        """``ajpq.backends.finn.compile`` (options: target_fps, clock_ns, console, strategy,
        resume); returns its FinnArtifact."""
        from ajpq.backends import finn

        return finn.compile(hw, board, out_dir, **options)

    def describe(self, artifact: Any) -> str:
        cost = artifact.cost
        return (
            f"FINN build dir {artifact.out_dir} ({cost.fps:.0f} fps, LUT "
            f"{cost.resources['LUT']:.0f}, report.json); finish it on a Vivado host with "
            "`finn build dataflow_build_config.json model.onnx`"
        )

    def load_artifact(self, out_dir: Path) -> Any:
        from ajpq.backends.finn.build_dir import load_artifact

        return load_artifact(Path(out_dir))

    def estimate(
        self,
        hw: HwGraph,
        board: str | BoardSpec,
        calibration: Any = None,
        fps: float | None = None,
    ) -> Cost:
        """The analytical cost of ``hw`` folded just enough to reach ``fps`` (None: every
        PE/SIMD at 1); ``limits`` is the budget compile folds to (folding.budget)."""
        from ajpq.backends.finn import board_spec

        return analytical_cost(hw, board_spec(board), calibration, fps)

    def measure(
        self,
        hw: HwGraph,
        board: str | BoardSpec,
        out_dir: Path,
        image: Any = None,
        connect: Any = None,
        fps: float | None = None,
    ) -> Measurement:
        """finn-plus's estimate reports of a compile folded to ``fps`` (``image`` and
        ``connect`` are unused: nothing runs on a board)."""
        from ajpq.backends.finn import board_spec

        spec = board_spec(board)
        return reference.measure(hw, spec, Path(out_dir), fps, clock_ns(spec))

    def evidence(self, hw: HwGraph, measurement: Measurement) -> list[dict[str, Any]]:
        """calibration.evidence: the model beside finn-plus, node by node."""
        return fitting.evidence(layers(hw), measurement.per_layer)

    def calibrate(self, rows: list[dict[str, Any]]) -> dict:
        """calibration.calibrate: per-op scale factors ({} scales with no rows)."""
        return fitting.calibrate(rows)

    def stored_weight_bytes(self, hw: HwGraph) -> int:
        """Bytes of every weight at its layer's widest channel's width (FINN keeps one
        DataType per weight tensor), each layer rounded up to whole bytes."""
        total = 0
        for node in hw.nodes:
            if node.op in WEIGHT_OPS:
                bits = int(max(node.arrays.get("weight_bits", [8]), default=8))
                total += math.ceil(node.arrays["weight"].size * bits / 8)
        return total

    def calibration_key(self) -> str:
        """What invalidates a calibration: the finn-plus version and the model's sources."""
        try:
            version = metadata.version("finn-plus")
        except metadata.PackageNotFoundError:
            version = "missing"
        digest = hashlib.sha256(version.encode())
        for name in MODEL_SOURCES:
            digest.update((Path(__file__).parent / name).read_bytes())
        return f"finn-plus-{version}-{digest.hexdigest()[:12]}"


FINN = FinnBackend()
