"""The demo's FINN column: dataflow estimates for the FPGA board, in a worker process.

The estimates are ~50 s a graph of single-threaded finn-plus Python. The worker runs them at
the lowest CPU priority while the demo feeds the MCU board (QEMU leaves a core mostly idle
then); training keeps both cores busy and hardly yields to it.
"""

import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import ajpq
from ajpq.graph.hwgraph import HwGraph


def finn_worker() -> ProcessPoolExecutor:
    """One worker process for finn_row_from_file, set up by background_worker."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a process using OpenMP
        initializer=background_worker,
        initargs=(os.getpid(),),
    )


def background_worker(parent: int) -> None:
    """Lowest CPU priority; Ctrl-C left to the demo, which drops the estimates to come; and
    (on Linux, best effort) ended with the demo, even one killed by SIGKILL, instead of
    finishing an estimate for nobody."""
    os.setpriority(os.PRIO_PROCESS, 0, 19)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died before the signal was asked for
            os._exit(1)


def stop_now(worker: ProcessPoolExecutor) -> None:
    """Drop the estimates still queued and end the one running (an error or Ctrl-C in the
    demo should not wait ~50 s for an estimate nobody will read)."""
    processes = list((getattr(worker, "_processes", None) or {}).values())  # 3.14 has
    worker.shutdown(wait=False, cancel_futures=True)  # terminate_workers(); 3.11 not
    for process in processes:
        process.terminate()


def finn_row_from_file(name: str, graph_path: Path, out_dir: Path, board: str) -> dict[str, Any]:
    """finn_row for the graph saved at graph_path (what the worker runs)."""
    return finn_row(name, HwGraph.load(graph_path), out_dir, board)


def finn_row(name: str, graph: HwGraph, out_dir: Path, board: str) -> dict[str, Any]:
    """The table's FINN cells for ``graph`` on ``board`` (estimates: no Vivado needed)."""
    try:
        artifact = ajpq.compile(graph, "finn", board, out_dir / f"finn-{name}")
    except ajpq.errors.BudgetExceeded as exc:  # reported in the table, not hidden
        needed = getattr(exc, "needed", {})  # the fully folded (smallest) design's resources
        return {
            "finn_error": str(exc),
            "finn_board": board,
            "finn_fps": needed.get("fps"),
            "finn_lut": needed.get("LUT"),
            "finn_bram18": needed.get("BRAM_18K"),
            "finn_dsp": needed.get("DSP"),
        }
    cost = artifact.cost
    return {
        "finn_fps": cost.fps,
        "finn_latency_s": cost.latency_s,
        "finn_lut": cost.resources.get("LUT", 0.0),
        "finn_bram18": cost.resources.get("BRAM_18K", 0.0),
        "finn_dsp": cost.resources.get("DSP", 0.0),
        "finn_board": board,
    }
