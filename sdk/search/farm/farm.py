"""The driver's handle on the farm: the Ray connection and the worker pool."""

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from torch import nn

from ajpq.backends import Calibration
from ajpq.graph.hwgraph import HwGraph
from ajpq.search.farm.cluster import connect, require_ray
from ajpq.search.farm.farm_file import FarmFile
from ajpq.search.farm.pool import WorkerPool
from ajpq.search.hardware import HardwareRecord

THREADS = 1  # torch threads (and Ray CPUs) per worker


class Farm:
    def __init__(self, pool: WorkerPool, started_ray: bool) -> None:
        self.pool = pool
        self.size = len(pool.workers)  # K: the policies of a round, fixed for the search
        self.started_ray = started_ray

    @classmethod
    def start(
        cls, workers: int | str, board: str, farm_file: str | Path | None, model: nn.Module,
        setup: dict[str, Any], backend: str, image: np.ndarray, fps: float | None,
        console: Console,
    ) -> "Farm":  # fmt: skip
        """Join (or start) Ray, and start one worker per board with the model and data."""
        ray = require_ray()
        started = not ray.is_initialized()
        farm = FarmFile.load(farm_file) if farm_file is not None else None
        slots = connect(workers, board, farm)
        try:
            shared = {**setup, "cost": None, "hardware": None}  # the driver keeps both
            shared.pop("finalist_train", None)  # and runs the finalists
            args = (ray.put(model), ray.put(shared), backend, image, fps)
            pool = WorkerPool.start(slots, args, THREADS, console)
        except BaseException:
            if started:
                ray.shutdown()
            raise
        return cls(pool, started)

    def measure_all(
        self, graphs: dict[str, HwGraph], calibration: Calibration
    ) -> list[HardwareRecord | None]:
        """Measure ``graphs`` (the calibration sweep) spread over the boards."""
        jobs = [
            (lambda w, g=graph, n=name: w.measure.remote(g, "calibration", n, None, calibration))
            for name, graph in graphs.items()
        ]
        return self.pool.run(jobs)

    def close(self) -> None:
        self.pool.close()
        if self.started_ray:
            require_ray().shutdown()
