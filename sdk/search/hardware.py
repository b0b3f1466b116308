"""The backend's reference in the search loop: the board (mcu) or the toolchain's own
estimate (finn).

At the search's start a calibration sweep lowers the searched model at a few policies (dense
8-bit to 70 % pruned 2-bit) and measures each with the backend's ``measure`` (mcu: compile,
flash, run once over serial; finn: finn-plus's estimate reports), and the backend's
``calibrate`` fits its estimate to the evidence; the sweep is cached in ``out_dir`` by board,
the backend's ``calibration_key`` and the model. During the search every new best candidate
is measured the same way: its record keeps the estimate made before the measurement next to
the measured count, and the calibration is re-fitted with it.

A board that stops answering pauses the hardware step (``pause_s``), is flashed again and
tried ``tries`` times in all; then the search stops with ``BoardLost`` and its checkpoint intact.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from torch import nn

from ajpq.backends import Calibration, Cost
from ajpq.backends import get as get_backend
from ajpq.boards import Measurement, get
from ajpq.errors import AjpqError, BudgetExceeded, ToolchainMissing, UnsupportedOp
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize

# (name, sparsity, bit-widths by importance): from the largest to the smallest models, with
# the low bit-widths whose requantization takes the kernels' slow path
SWEEP = (
    ("dense-8", 0.0, [8]),
    ("pruned20-2", 0.2, [2]),
    ("pruned50-4.3.2", 0.5, [4, 3, 2]),
    ("pruned70-8.2", 0.7, [8, 2]),
)


PAUSE_S = 2.0  # seconds the hardware step waits before it flashes and tries again
TRIES = 3


MeasureAll = Callable[[dict[str, HwGraph]], list["HardwareRecord | None"]]


class BoardLost(AjpqError):
    """The board stopped answering during the search's hardware step, after every retry."""


@dataclass(frozen=True)
class HardwareRecord:
    """One whole-model measurement on the board, next to the estimate made before it."""

    kind: str  # "calibration" or "candidate"
    label: str
    episode: int | None
    estimated: float  # count the cost table predicted before this measurement
    measured: int  # count the board reported for one inference
    unit: str  # "instructions" (QEMU -icount) or "cycles"
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)  # per-node evidence
    measured_latency: float | None = None  # seconds (under QEMU an instruction-count proxy)
    estimated_fps: float | None = None
    measured_fps: float | None = None  # finn: finn-plus's estimate; None for a board
    estimated_resources: dict[str, float] = field(default_factory=dict)
    measured_resources: dict[str, float] = field(default_factory=dict)
    board: str = ""  # which board of a farm measured it (empty: this process's board)

    @property
    def error(self) -> float:
        """(estimated - measured) / measured."""
        return (self.estimated - self.measured) / self.measured

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error": self.error}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "HardwareRecord":
        return cls(**{k: v for k, v in raw.items() if k != "error"})


def sweep_graphs(model: nn.Module, act_bits: int = 8) -> dict[str, HwGraph]:
    """The calibration sweep: the searched model lowered at each policy of SWEEP."""
    return {
        name: lower(quantize(model, Policy.from_sparsity(model, sparsity, bits, act_bits)))
        for name, sparsity, bits in SWEEP
    }


def _structure_hash(graphs: dict[str, HwGraph]) -> str:
    digest = hashlib.sha256()
    for name, graph in graphs.items():
        digest.update(name.encode())
        for node in graph.nodes:
            digest.update(f"{node.name}:{node.op}:{node.shape}".encode())
    return digest.hexdigest()[:12]


class HardwareLoop:
    """Measures graphs with ``backend``'s reference on ``board`` and keeps its estimate
    calibrated to them.

    ``connect`` makes the Board (``ajpq.boards.Board`` by default; tests pass one that
    disconnects to check the retry and the clean failure). ``fps``: the budget's frame rate,
    which the backend folds to (finn).
    """

    def __init__(
        self,
        backend: str,
        board: str,
        out_dir: Path,
        image: np.ndarray,
        connect: Callable[[str], Any] | None = None,
        tries: int = TRIES,
        pause_s: float | None = None,
        console: Console | None = None,
        fps: float | None = None,
    ) -> None:
        self.backend = get_backend(backend)
        self.spec = get(board)
        self.out_dir = Path(out_dir)
        self.image = np.ascontiguousarray(image, dtype=np.uint8)
        self.connect = connect or _board
        self.tries = tries
        self.pause_s = PAUSE_S if pause_s is None else pause_s
        self.console = console or Console(stderr=True, quiet=True)
        self.fps = fps
        self.records: list[HardwareRecord] = []
        self.calibration: Calibration = self.backend.calibrate([])

    def cost(self, graph: HwGraph) -> Cost:
        """The backend's estimate of ``graph`` with the current calibration."""
        return self.backend.estimate(graph, self.spec, self.calibration, self.fps)

    def calibrate(self, graphs: dict[str, HwGraph], measure: MeasureAll | None = None) -> None:
        """Measure ``graphs`` (see ``sweep_graphs``), or read the cached sweep, and fit the
        calibration to them. ``measure`` (a board farm's) measures them all elsewhere and
        returns their records, None for a graph the board cannot take."""
        folded = "" if self.fps is None else f"-fps{self.fps:g}"  # finn folds its reference
        key = f"{self.spec.id}-{self.backend.calibration_key()}-{_structure_hash(graphs)}{folded}"
        cache = self.out_dir / f"calibration-{key}.json"
        if cache.exists():
            found = [HardwareRecord.from_dict(r) for r in json.loads(cache.read_text())]
            self.records = [*found, *(r for r in self.records if r.kind != "calibration")]
            self.console.print(f"calibration of {self.spec.id}: cached in {cache.name}")
        else:
            measure = measure or self._measure_here
            for record in measure(graphs):
                if record is None:
                    continue
                if not any(r is record for r in self.records):  # measured elsewhere
                    self.records.append(record)
                self.console.print(
                    f"calibration on {record.board or self.spec.id}: {record.label} measured "
                    f"{record.measured:,} {record.unit} (default estimate {record.estimated:,.0f})"
                )
            calibration = [r.to_dict() for r in self.records if r.kind == "calibration"]
            temporary = cache.with_suffix(".tmp")
            temporary.write_text(json.dumps(calibration))
            temporary.replace(cache)
        self.refit()

    def _measure_here(self, graphs: dict[str, HwGraph]) -> list[HardwareRecord | None]:
        return [
            self.measure(g, "calibration", name, None, refit=False) for name, g in graphs.items()
        ]

    def restore(self, candidates: list[HardwareRecord]) -> None:
        """Add a resumed search's candidate measurements and re-fit."""
        self.records = [r for r in self.records if r.kind == "calibration"] + candidates
        self.refit()

    def refit(self) -> None:
        self.calibration = self.backend.calibrate([row for r in self.records for row in r.rows])

    def measure(
        self, graph: HwGraph, kind: str, label: str, episode: int | None, refit: bool = True
    ) -> HardwareRecord | None:
        """Measure ``graph`` once; record it next to the current estimate. None when the
        backend refuses to build it for the board (over its budget): nothing to measure."""
        estimate = self.cost(graph)
        try:
            measurement = self._run(graph, label)
        except BudgetExceeded as exc:
            self.console.print(f"[yellow]{label} is not measured on {self.spec.id}: {exc}")
            return None
        seconds = measurement.latency_s
        if seconds is None:
            seconds = measurement.count / self.spec.clock_hz
        record = HardwareRecord(
            kind, label, episode, estimate.count, int(measurement.count), measurement.unit,
            self.backend.evidence(graph, measurement), seconds, estimate.fps, measurement.fps,
            dict(estimate.resources), dict(measurement.resources),
        )  # fmt: skip
        self.records.append(record)
        if refit:
            self.refit()
        return record

    def _run(self, graph: HwGraph, label: str) -> Measurement:
        out = self.out_dir / "board" / label
        for attempt in range(1, self.tries + 1):
            try:
                return self.backend.measure(
                    graph, self.spec, out, self.image, self.connect, self.fps
                )
            except (BudgetExceeded, ToolchainMissing, UnsupportedOp):
                raise  # the build, not the board: retrying cannot help
            except (AjpqError, OSError) as exc:
                if attempt == self.tries:
                    raise BoardLost(
                        f"{self.spec.id} stopped answering while measuring {label} "
                        f"({attempt} tries; last: {exc})"
                    ) from None
                self.console.print(
                    f"[yellow]{self.spec.id} is not answering ({exc}); pausing the hardware "
                    f"step {self.pause_s:g} s, then flashing and trying again "
                    f"({attempt + 1}/{self.tries})"
                )
                time.sleep(self.pause_s)
        raise AssertionError("unreachable")


def _board(board: str) -> Any:
    from ajpq.boards import Board

    return Board(board)


def hardware_table(records: list[HardwareRecord]) -> Table:
    """Estimated vs measured counts per measurement, with the candidates' mean error; where
    the reference also reports fps and resources (finn), those side by side too."""
    candidates = [abs(r.error) for r in records if r.kind == "candidate"]
    caption = (
        f"candidates: mean |error| {100 * float(np.mean(candidates)):.1f}% "
        f"(estimate made before each measurement, calibration re-fitted after it)"
        if candidates
        else None
    )
    resources = sorted({k for r in records for k in r.measured_resources})
    fps = any(r.measured_fps is not None for r in records)
    title = "estimate vs reference" if resources else "board measurements: estimate vs board"
    table = Table(title=title, caption=caption)
    columns = ["kind", "label", "estimated", "measured", "unit", "error"]
    columns += ["fps est / ref"] * fps + [f"{k} est / ref" for k in resources]
    for column in columns:
        table.add_column(column, justify="left" if column in ("kind", "label", "unit") else "right")
    for r in records:
        row = [r.kind, r.label, f"{r.estimated:,.0f}", f"{r.measured:,}", r.unit]
        row.append(f"{100 * r.error:+.1f}%")
        if fps:
            row.append(_pair(r.estimated_fps, r.measured_fps))
        row += [_pair(r.estimated_resources.get(k), r.measured_resources.get(k)) for k in resources]
        table.add_row(*row)
    return table


def _pair(estimated: float | None, measured: float | None) -> str:
    if estimated is None or measured is None:
        return "-"
    error = f" ({100 * (estimated - measured) / measured:+.1f}%)" if measured else ""
    return f"{estimated:,.0f} / {measured:,.0f}{error}"
