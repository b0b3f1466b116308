"""The board in the search loop (mcu backend).

At the search's start a calibration sweep compiles the searched model at a few policies
(dense 8-bit to 70 % pruned 2-bit), flashes each to the board, runs it once over serial and
fits the estimate's cost table (``ajpq.backends.mcu.estimate.fit_table``) to the per-layer
counts the board reports; the sweep is cached in ``out_dir`` by board, firmware hash and
model. During the search every new best candidate is measured the same way: its record
keeps the estimate made before the measurement next to the measured count, and the table is
re-fitted with it, so later estimates use every measurement so far.

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

from ajpq.backends.mcu.estimate import (
    CostTable,
    default_table,
    estimate,
    evidence,
    firmware_hash,
    fit_table,
)
from ajpq.boards import get
from ajpq.errors import AjpqError
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
    """Measures graphs on ``board`` over serial and keeps the cost table fitted to them.

    ``connect`` makes the Board (``ajpq.boards.Board`` by default; tests pass one that
    disconnects to check the retry and the clean failure).
    """

    def __init__(
        self,
        board: str,
        out_dir: Path,
        image: np.ndarray,
        connect: Callable[[str], Any] | None = None,
        tries: int = TRIES,
        pause_s: float | None = None,
        console: Console | None = None,
    ) -> None:
        self.spec = get(board)
        self.out_dir = Path(out_dir)
        self.image = np.ascontiguousarray(image, dtype=np.uint8)
        self.connect = connect or _board
        self.tries = tries
        self.pause_s = PAUSE_S if pause_s is None else pause_s
        self.console = console or Console(stderr=True, quiet=True)
        self.records: list[HardwareRecord] = []
        self.table: CostTable = default_table()

    def latency(self, graph: HwGraph) -> float:
        """Seconds per inference at the board clock, from the current table."""
        return float(estimate(graph, self.spec, self.table).latency_s)

    def calibrate(self, graphs: dict[str, HwGraph]) -> None:
        """Measure ``graphs`` (see ``sweep_graphs``) on the board, or read the cached sweep,
        and fit the table to them."""
        key = f"{self.spec.id}-{firmware_hash()}-{_structure_hash(graphs)}"
        cache = self.out_dir / f"calibration-{key}.json"
        if cache.exists():
            found = [HardwareRecord.from_dict(r) for r in json.loads(cache.read_text())]
            self.records = [*found, *(r for r in self.records if r.kind != "calibration")]
            self.console.print(f"calibration of {self.spec.id}: cached in {cache.name}")
        else:
            for name, graph in graphs.items():
                record = self.measure(graph, "calibration", name, None, refit=False)
                self.console.print(
                    f"calibration on {self.spec.id}: {name} measured {record.measured:,} "
                    f"{record.unit} (default table estimated {record.estimated:,.0f})"
                )
            calibration = [r.to_dict() for r in self.records if r.kind == "calibration"]
            temporary = cache.with_suffix(".tmp")
            temporary.write_text(json.dumps(calibration))
            temporary.replace(cache)
        self.refit()

    def restore(self, candidates: list[HardwareRecord]) -> None:
        """Add a resumed search's candidate measurements and re-fit."""
        self.records = [r for r in self.records if r.kind == "calibration"] + candidates
        self.refit()

    def refit(self) -> None:
        self.table = fit_table([row for r in self.records for row in r.rows])

    def measure(
        self, graph: HwGraph, kind: str, label: str, episode: int | None, refit: bool = True
    ) -> HardwareRecord:
        """Run ``graph`` once on the board; record it next to the current estimate."""
        estimated = estimate(graph, self.spec, self.table).count
        measurement = self._run(graph, label)
        layers = measurement.per_layer
        rows = evidence(
            graph,
            np.array([entry["count"] for entry in layers]),
            np.array([entry["decode_count"] for entry in layers]),
        )
        record = HardwareRecord(
            kind, label, episode, estimated, int(measurement.count), measurement.unit, rows
        )
        self.records.append(record)
        if refit:
            self.refit()
        return record

    def _run(self, graph: HwGraph, label: str) -> Any:
        from ajpq.backends.mcu import compile

        artifact = compile(graph, self.spec, self.out_dir / "board" / label)
        for attempt in range(1, self.tries + 1):
            try:
                with self.connect(self.spec.id) as board:
                    board.flash(artifact)
                    with board.open() as session:
                        return session.benchmark(runs=1, warmup=0, x=self.image)
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
    """Estimated vs measured counts per board measurement, with the candidates' mean error."""
    candidates = [abs(r.error) for r in records if r.kind == "candidate"]
    caption = (
        f"candidates: mean |error| {100 * float(np.mean(candidates)):.1f}% "
        f"(estimate made before each measurement, table re-fitted after it)"
        if candidates
        else None
    )
    table = Table(title="board measurements: estimate vs board", caption=caption)
    for column in ("kind", "label", "estimated", "measured", "unit", "error"):
        table.add_column(column, justify="left" if column in ("kind", "label", "unit") else "right")
    for r in records:
        table.add_row(
            r.kind, r.label, f"{r.estimated:,.0f}", f"{r.measured:,}", r.unit,
            f"{100 * r.error:+.1f}%",
        )  # fmt: skip
    return table
