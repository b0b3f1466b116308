"""Measurement: the one result type of running (or costing) a model for real.

A board's ``Session.benchmark`` returns one (output, timer counts, per-layer counts), and so
does a backend's ``measure`` (the reference its estimate is calibrated to: the board for
mcu, finn-plus's own estimate reports for finn, with ``timer_source == "estimate"``).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """One benchmark: the output, the mean count per inference and where it came from.

    ``per_layer`` holds one dict per layer: ``index``, ``count`` (the layer, including its
    weight decode) and ``decode_count``, all from the last measured run (finn: one dict per
    HW node with its cycles and resources). ``resources``: what the design occupies (finn:
    LUT, BRAM_18K, URAM, DSP), empty for a board run.
    """

    output: np.ndarray | None
    count: int
    unit: str  # "cycles" | "instructions"
    per_layer: list[dict[str, Any]]
    timer_source: str  # "dwt" | "systick-icount" | "estimate"
    latency_s: float | None
    runs: int = 1
    min_count: int = 0
    max_count: int = 0
    info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    resources: dict[str, float] = field(default_factory=dict)
    fps: float | None = None  # finn: the pipeline's throughput; None for a board run
