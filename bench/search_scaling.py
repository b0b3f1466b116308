"""The same AJPQ search on 1 and on 2 workers (Ray, one emulated board each) on this machine:
wall time, speed-up, how loaded the machine was, and a paper estimate for N hosts x M boards
from the measured per-candidate times; prints JSON.

    python bench/search_scaling.py                       # Skynet 0.125 32x64, 24 episodes
    python bench/search_scaling.py --episodes 4 --n-train 64 --train-images 32   # smoke run

Both runs search the same model with the same seed, budget and episodes; the board's
calibration sweep is measured once beforehand and copied into both out dirs. A worker gets one
CPU and one torch thread (``farm.THREADS``), so 2 workers need 2 idle cores.

Goal: 2 workers >= 1.7x faster than 1 on an idle 2-core machine, judged on each search's whole
wall time, Ray's start-up and the workers' included (about 8 s, paid once per search); the
episodes alone are reported beside it. A missed goal is printed in ``missed``, with the load
average next to it.

Paper estimate: a round of K = N x M candidates takes the slowest candidate's time plus the
driver's share (planning, the agent's update, the checkpoint), both measured here:
``rounds x (candidate_s + driver_s)`` with ``rounds = ceil(episodes / K)``.
"""

import argparse
import json
import math
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

import ajpq
from ajpq.search import Budget, SearchConfig, search

GOAL_SPEEDUP = 1.7
FARMS = ((1, 1), (1, 2), (2, 2), (4, 4), (8, 4))  # (hosts, boards per host) for the estimate


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--width-mult", type=float, default=0.125)
    parser.add_argument("--input-size", type=int, nargs=2, default=(32, 64))
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-val", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="fp32 training before the search")
    parser.add_argument("--train-images", type=int, default=128, help="QAT images a candidate")
    parser.add_argument("--val-images", type=int, default=64)
    parser.add_argument("--weight-bytes", type=int, default=3000)
    parser.add_argument("--estimate-episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("build/bench-scaling"))
    return parser.parse_args(argv)


class Load:
    """The 1-minute load average, sampled every second while a run goes."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "Load":
        self.before = os.getloadavg()[0]
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict[str, float]:
        peak = max(self.samples, default=self.before)
        return {"load_before": round(self.before, 2), "load_peak": round(peak, 2)}


def timed_search(model: Any, data: Any, workers: int, out: Path, args: Any) -> dict[str, Any]:
    config = SearchConfig(
        warmup_episodes=2, train_images=args.train_images, val_images=args.val_images,
        calibrate=True,
    )  # fmt: skip
    with Load() as load:
        started = time.monotonic()
        result = search(
            model, *data, budget=Budget(weight_bytes=args.weight_bytes), episodes=args.episodes,
            out_dir=out, seed=args.seed, config=config, progress=False, workers=workers,
        )  # fmt: skip
        seconds = time.monotonic() - started
    log = json.loads((out / "farm.json").read_text())["candidates"]
    candidate_s = [c["score_s"] + c["measure_s"] for c in log]
    rounds = math.ceil(args.episodes / workers)
    return {
        "workers": workers,
        "seconds": round(seconds, 1),
        "episodes_seconds": round(log[-1]["round_end_s"], 1),
        "candidate_s_mean": round(sum(candidate_s) / len(candidate_s), 2),
        "score_s_mean": round(sum(c["score_s"] for c in log) / len(log), 2),
        "measure_s_mean": round(sum(c["measure_s"] for c in log) / len(log), 2),
        "driver_s_per_round": round(
            (log[-1]["round_end_s"] - sum(max_per_round(log, workers))) / rounds, 2
        ),
        "best_accuracy": round(result.best.accuracy, 4),
        **load.summary(),
    }


def max_per_round(log: list[dict[str, Any]], workers: int) -> list[float]:
    rounds = [log[i : i + workers] for i in range(0, len(log), workers)]
    return [max(c["score_s"] + c["measure_s"] for c in r) for r in rounds]


def estimate(run: dict[str, Any], episodes: int) -> list[dict[str, Any]]:
    """Wall time of ``episodes`` on N hosts x M boards, from one run's measured times."""
    rows = []
    for hosts, boards in FARMS:
        k = hosts * boards
        seconds = math.ceil(episodes / k) * (run["candidate_s_mean"] + run["driver_s_per_round"])
        rows.append(
            {"hosts": hosts, "boards_per_host": boards, "K": k, "minutes": round(seconds / 60, 1)}
        )
    return rows


def calibrated_dirs(model: Any, data: Any, args: Any, dirs: list[Path]) -> None:
    """Measure the calibration sweep once (a 1-episode search) and copy it into each dir."""
    sweep = args.out / "sweep"
    config = SearchConfig(warmup_episodes=1, train_images=8, val_images=8, calibrate=True)
    search(model, *data, budget=Budget(weight_bytes=args.weight_bytes), episodes=1,
           out_dir=sweep, config=config, progress=False)  # fmt: skip
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
        for cached in sweep.glob("calibration-*.json"):
            shutil.copy(cached, directory)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_arguments(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    torch.manual_seed(args.seed)
    size = tuple(args.input_size)
    model = ajpq.models.skynet(args.width_mult, size)
    data = ajpq.data.aerial(args.n_train, args.n_val, input_size=size, seed=args.seed)
    ajpq.train(model, *data, epochs=args.epochs, seed=args.seed, progress=False)
    dirs = [args.out / f"workers-{k}" for k in (1, 2)]
    calibrated_dirs(model, data, args, dirs)
    runs = [timed_search(model, data, k, d, args) for k, d in zip((1, 2), dirs, strict=True)]
    one, two = runs
    speedup = one["seconds"] / two["seconds"]  # the whole search: Ray's start-up included
    report = {
        "model": f"skynet {args.width_mult} {size[0]}x{size[1]}",
        "episodes": args.episodes,
        "cpus": os.cpu_count(),
        "runs": runs,
        "speedup_2_vs_1": round(speedup, 2),
        "speedup_episodes_only": round(one["episodes_seconds"] / two["episodes_seconds"], 2),
        "estimate_minutes": estimate(one, args.estimate_episodes),
        "goal": f"2 workers >= {GOAL_SPEEDUP}x faster than 1 on an idle 2-core machine",
        "missed": [] if speedup >= GOAL_SPEEDUP else [
            f"speed-up {speedup:.2f}x < {GOAL_SPEEDUP}x (load average before the runs: "
            f"{one['load_before']}, {two['load_before']}; peak {two['load_peak']})"
        ],
    }  # fmt: skip
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
