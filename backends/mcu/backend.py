"""The mcu backend behind the ``ajpq.backends.Backend`` protocol.

Its estimate is the linear cost table of ``estimate.py``; its reference is the board itself:
``measure`` compiles the graph, flashes it and runs one image over serial, ``evidence`` turns
the per-layer counts the firmware reports into table rows and ``calibrate`` re-fits the table.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ajpq.backends import Calibration, Cost, Evidence
from ajpq.boards import BoardSpec, Measurement, get
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph


class McuBackend:
    """C with Huffman-packed weights, the ajpq firmware runtime, measured over serial."""

    name = "mcu"
    board_kind = "mcu"

    def compile(
        self, hw: HwGraph, board: "str | BoardSpec", out_dir: str | Path, **options: Any
    ) -> Any:
        from ajpq.backends.mcu import compile as compile_mcu

        return compile_mcu(hw, board, out_dir, **options)

    def describe(self, artifact: Any) -> str:
        return f"artifact in {artifact.out_dir} (report.json, firmware {artifact.elf})"

    def load_artifact(self, out_dir: Path) -> Any:
        from ajpq.backends.mcu.artifact import Artifact

        return Artifact.load(out_dir)

    def estimate(
        self,
        hw: HwGraph,
        board: "str | BoardSpec",
        calibration: Calibration = None,
        fps: float | None = None,
    ) -> Cost:
        from ajpq.backends.mcu.estimate import estimate

        spec = get(board)
        cost = estimate(hw, spec, calibration)
        return Cost(
            latency_s=cost.latency_s,
            fps=1.0 / cost.latency_s if cost.latency_s > 0 else float("inf"),
            count=cost.count,
            unit=cost.unit,
            resources={"flash_bytes": cost.flash_bytes, "ram_bytes": cost.ram_bytes},
            limits={"flash_bytes": spec.flash_bytes, "ram_bytes": spec.ram_bytes},
            per_layer=cost.per_layer,
        )

    def measure(
        self,
        hw: HwGraph,
        board: "str | BoardSpec",
        out_dir: Path,
        image: Any,
        connect: Callable[[str], Any] | None = None,
        fps: float | None = None,
    ) -> Measurement:
        """Compile ``hw`` into ``out_dir``, flash it and time one run of ``image``."""
        from ajpq.boards import Board

        spec = get(board)
        artifact = self.compile(hw, spec, out_dir)
        make_board = connect or Board
        with make_board(spec.id) as device:
            device.flash(artifact)
            with device.open() as session:
                measured = session.benchmark(runs=1, warmup=0, x=np.asarray(image))
        measured.info["board"] = spec.id  # evidence plans the kernels for this board's RAM
        return measured

    def evidence(self, hw: HwGraph, measurement: Measurement) -> Evidence:
        from ajpq.backends.mcu.estimate import evidence

        layers = measurement.per_layer
        if len(layers) != len(hw.nodes) - 1:
            raise AjpqError(
                f"the board reported {len(layers)} layers but the graph has "
                f"{len(hw.nodes) - 1}; flash the firmware built from this graph"
            )
        return evidence(
            hw,
            np.array([entry["count"] for entry in layers]),
            np.array([entry["decode_count"] for entry in layers]),
            measurement.info.get("board", "qemu-mps2-an386"),
        )

    def calibrate(self, rows: Evidence) -> Calibration:
        from ajpq.backends.mcu.estimate import fit_table

        return fit_table(rows)

    def stored_weight_bytes(self, hw: HwGraph) -> int:
        from ajpq.backends.mcu.huffman import stored_weight_bytes

        return stored_weight_bytes(hw)

    def calibration_key(self) -> str:
        """What invalidates a calibration: the firmware sources (kernels, runtime)."""
        from ajpq.backends.mcu.estimate import firmware_hash

        return firmware_hash()


MCU = McuBackend()
