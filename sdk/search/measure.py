"""Measure the best search candidates on an mcu board with the self-test firmware.

``measure_best`` compiles the ``k`` most accurate candidates' graphs with the mcu backend,
runs each on the board (``Artifact.run_selftest``) and fills ``Candidate.measured_latency``.

Units: a real board's timer counts cycles, so ``measured_latency = cycles / clock_hz`` is
seconds. Under QEMU (``-icount``) the timer counts instructions, and
``measured_latency = instructions / clock_hz`` is an **instruction-count proxy** (one
instruction per cycle), not a time: compare it with the estimate (also instructions at the
clock), not with a stopwatch. ``Measurement.unit`` says which one you have.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from ajpq.boards import get
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.quant.quantize import quantize
from ajpq.search.candidates import Candidate, SearchResult


@dataclass(frozen=True)
class Measurement:
    candidate: Candidate  # with measured_latency filled
    counts: np.ndarray  # timer counts per inference (one per image)
    unit: str  # "instructions" (QEMU -icount: a proxy) or "cycles" (a real board)
    timer_source: str


def candidate_graph(result: SearchResult, candidate: Candidate, model: nn.Module | None) -> HwGraph:
    """The best candidate's fine-tuned graph; another one's quantized from ``model`` without
    fine-tuning (the same shapes and bit-widths, so the same kernels and near-equal counts)."""
    if candidate.policy == result.best_policy:
        return result.best_graph
    if model is None:
        raise AjpqError(
            f"candidate of episode {candidate.episode} is not the best; pass the float model "
            "(model=...) to measure it, or use k=1"
        )
    return lower(quantize(model, candidate.policy))


def measure_best(
    result: SearchResult,
    board: str = "qemu-mps2-an386",
    k: int = 3,
    images: np.ndarray | None = None,
    model: nn.Module | None = None,
    out_dir: str | Path = "build/ajpq-measure",
    timeout_s: float = 120.0,
) -> list[Measurement]:
    """Compile and run the ``k`` most accurate candidates on ``board``; replace them in
    ``result.candidates`` with copies whose ``measured_latency`` is the mean count over
    ``images`` (default: one random image) divided by the board clock (see the module doc:
    under QEMU an instruction-count proxy)."""
    from ajpq.backends.mcu import compile

    spec = get(board)
    ranked = sorted(range(len(result.candidates)), key=lambda i: -result.candidates[i].accuracy)
    shape = result.best_graph.nodes[0].shape
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
    measurements = []
    for rank, index in enumerate(ranked[:k]):
        candidate = result.candidates[index]
        graph = candidate_graph(result, candidate, model)
        artifact = compile(graph, spec, Path(out_dir) / f"rank{rank}", firmware=False)
        selftest = artifact.run_selftest(images, timeout_s=timeout_s)
        seconds = float(np.mean(selftest.counts)) / spec.clock_hz
        measured = replace(candidate, measured_latency=seconds)
        result.candidates[index] = measured
        measurements.append(
            Measurement(measured, selftest.counts, selftest.unit, selftest.timer_source)
        )
    return measurements
