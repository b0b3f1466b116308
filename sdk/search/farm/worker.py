"""One farm worker: a Ray actor that owns one board for its lifetime and evaluates candidates
on it (QAT fine-tune, score, compile, flash, measure).

The class is plain Python; ``pool.start_workers`` makes it a Ray actor placed by the board's
custom resource, so it runs on the host the board is plugged into.
"""

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from torch import nn

from ajpq.backends import Calibration
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.search.episodes import Episodes, Weights
from ajpq.search.hardware import HardwareLoop, HardwareRecord
from ajpq.search.space import SearchSpace


@dataclass(frozen=True)
class Slot:
    """One board of the farm: its kind, the Ray resource that places its worker, and where
    it is plugged in (the serial device and debug probe; None: found on the host)."""

    board: str
    resource: str
    name: str  # how records name the board, e.g. "qemu-mps2-an386:node1"
    port: str | None = None
    probe: str | None = None


@dataclass(frozen=True)
class Evaluated:
    """What a worker sends back for one candidate."""

    accuracy: float
    weights: Weights
    record: HardwareRecord | None  # None: the board cannot take it (over its flash or RAM)
    worker: str = ""
    score_s: float = 0.0  # the QAT fine-tune and its score
    measure_s: float = 0.0  # compile, flash and run on the board


class Owned:
    """The worker's board, lent to one measurement. Afterwards the board is closed: an
    emulated board's QEMU stops (an idle one busy-waits on its UART and takes a core from the
    next candidate's fine-tune); a real board only closes its serial port. No other process
    flashes it either way: the worker keeps it for the search."""

    def __init__(self, board: Any) -> None:
        self.board = board

    def __enter__(self) -> Any:
        return self.board

    def __exit__(
        self, kind: type[BaseException] | None, value: object, tb: TracebackType | None
    ) -> None:
        self.board.close()


class BoardWorker:
    """Evaluates candidates of one search on one board. ``setup``: the driver's episode setup
    (task, budget, config, QAT and reward subsets, seed), without its hardware loop."""

    def __init__(
        self, model: nn.Module, setup: dict[str, Any], backend: str, slot: Slot, threads: int,
        image: np.ndarray, fps: float | None,
    ) -> None:  # fmt: skip
        torch.set_num_threads(threads)  # Ray does not enforce num_cpus
        self.slot = slot
        self.out_dir = Path(tempfile.mkdtemp(prefix="ajpq-farm-"))
        self.episodes = Episodes(model, SearchSpace.of(model), {**setup, "out_dir": self.out_dir})
        self.board = self._board(slot)
        self.loop = HardwareLoop(
            backend, slot.board, self.out_dir, image, connect=self._connect, fps=fps
        )

    @staticmethod
    def _board(slot: Slot) -> Any:
        from ajpq.boards import Board, get

        if get(slot.board).kind != "mcu":
            return None  # an FPGA backend's reference is its toolchain, not a board
        return Board(slot.board, port=slot.port, probe=slot.probe)

    def _connect(self, board: str) -> Owned:
        return Owned(self.board)

    def hello(self) -> dict[str, Any]:
        """Who and where this worker is (the driver logs it; tests kill it by pid)."""
        return {"name": self.slot.name, "pid": os.getpid(), "host": socket.gethostname()}

    def evaluate(self, episode: int, policy: Policy, calibration: Calibration) -> Evaluated:
        started = time.perf_counter()
        accuracy, qmodel = self.episodes.score(policy)
        scored = time.perf_counter()
        record = self.measure(lower(qmodel.eval()), "candidate", f"episode-{episode}", episode,
                              calibration)  # fmt: skip
        weights = {k: v.detach().cpu() for k, v in qmodel.state_dict().items()}
        seconds = (scored - started, time.perf_counter() - scored)
        return Evaluated(accuracy, weights, record, self.slot.name, *seconds)

    def measure(
        self, graph: HwGraph, kind: str, label: str, episode: int | None, calibration: Calibration
    ) -> HardwareRecord | None:
        """``graph`` measured on this board, next to the driver's estimate (its calibration)."""
        self.loop.calibration = calibration
        self.loop.records = []
        record = self.loop.measure(graph, kind, label, episode, refit=False)
        return None if record is None else replace(record, board=self.slot.name)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
        shutil.rmtree(self.out_dir, ignore_errors=True)
