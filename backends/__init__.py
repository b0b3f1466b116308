"""Backends behind one protocol, registered explicitly by name.

A backend turns a HwGraph into something a board runs (``compile``) and says, cheaply, what
that will cost (``estimate``, called inside every search episode). Its estimate is calibrated
against a reference it trusts (``measure``: the board over serial for mcu, finn-plus's own
estimate reports for finn): ``evidence`` turns one reference measurement into JSON rows and
``calibrate`` fits a calibration to all rows so far. The search, the baselines, the demo and
the CLI use only this module: ``get(name)`` and the ``Backend`` protocol.

Adding a backend: a folder ``backends/<name>/`` with a class that satisfies ``Backend`` and
one line in ``_LOADERS`` below.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ajpq.errors import AjpqError

if TYPE_CHECKING:
    from ajpq.boards.spec import BoardSpec
    from ajpq.graph.hwgraph import HwGraph

Calibration = Any  # a backend's own JSON-able fitted parameters (None: its defaults)
Evidence = list[dict[str, Any]]  # JSON rows from one reference measurement


@dataclass(frozen=True)
class Cost:
    """A backend's estimate of ``hw`` on a board.

    ``latency_s``: seconds for one inference at the board clock (under QEMU an
    instruction-count proxy); ``fps``: inferences per second the design sustains (an mcu runs
    one at a time, so 1 / latency_s; a FINN dataflow pipeline overlaps frames).
    ``resources`` and ``limits`` share keys (mcu: flash_bytes, ram_bytes; finn: LUT, BRAM_18K,
    URAM, DSP); a limit of 0 means the board file does not say.
    """

    latency_s: float
    fps: float
    count: float  # cycles (or instructions) per inference; finn: the bottleneck node's cycles
    unit: str  # "cycles" | "instructions"
    resources: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    per_layer: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def fits(self) -> bool:
        """Every resource within the board's limit."""
        return all(self.resources.get(k, 0.0) <= v for k, v in self.limits.items() if v)

    def over(self) -> dict[str, tuple[float, float]]:
        """The resources over their limit: name -> (needed, limit)."""
        return {
            k: (self.resources.get(k, 0.0), v)
            for k, v in self.limits.items()
            if v and self.resources.get(k, 0.0) > v
        }


@runtime_checkable
class Backend(Protocol):
    """What every backend provides (see the module docstring)."""

    name: str
    board_kind: str  # the BoardSpec.kind it compiles for: "mcu" | "fpga"

    def compile(
        self, hw: "HwGraph", board: "str | BoardSpec", out_dir: str | Path, **options: Any
    ) -> Any:
        """Build ``hw`` for ``board`` into ``out_dir``; returns the backend's Artifact."""
        ...

    def describe(self, artifact: Any) -> str:
        """One line: what ``compile`` left where, and what to do with it next."""
        ...

    def load_artifact(self, out_dir: Path) -> Any:
        """The Artifact ``compile`` left in ``out_dir``."""
        ...

    def estimate(
        self,
        hw: "HwGraph",
        board: "str | BoardSpec",
        calibration: Calibration = None,
        fps: float | None = None,
    ) -> Cost:
        """Cheap cost of ``hw`` on ``board`` (no compiler). ``fps``: the throughput the design
        must reach, for backends that trade resources for speed (finn folds to it)."""
        ...

    def measure(
        self,
        hw: "HwGraph",
        board: "str | BoardSpec",
        out_dir: Path,
        image: Any,
        connect: Callable[[str], Any] | None = None,
        fps: float | None = None,
    ) -> Any:
        """The reference the estimate is calibrated to, as an ``ajpq.boards.Measurement``
        (mcu: compile, flash and run ``image`` on the board; ``connect`` makes the Board)."""
        ...

    def evidence(self, hw: "HwGraph", measurement: Any) -> Evidence:
        """JSON rows that ``calibrate`` fits, from one ``measure`` of ``hw``."""
        ...

    def calibrate(self, rows: Evidence) -> Calibration:
        """A calibration fitted to ``rows`` (the defaults where rows say nothing)."""
        ...

    def stored_weight_bytes(self, hw: "HwGraph") -> int:
        """The bytes ``hw``'s weights take in what this backend deploys."""
        ...

    def calibration_key(self) -> str:
        """Changes when a stored calibration no longer holds (new kernels, new compiler)."""
        ...


_LOADERS: dict[str, str] = {
    "mcu": "ajpq.backends.mcu.backend:MCU",
    "finn": "ajpq.backends.finn.backend:FINN",
    "tflite": "ajpq.backends.tflite.backend:TFLITE",
}
BACKEND_NAMES = tuple(_LOADERS)


def get(name: str) -> Backend:
    """The backend registered as ``name`` (its module is imported on first use)."""
    if name not in _LOADERS:
        raise AjpqError(f"unknown backend '{name}'; available: {', '.join(BACKEND_NAMES)}")
    module, attribute = _LOADERS[name].split(":")
    return getattr(import_module(module), attribute)
