"""FINN backend bench: Skynet folded for an FPGA board by ajpq's folding and by FINN's own
target_fps parallelization (SetFolding, highest target within the same 85 % budget).

Prints JSON: for each strategy the estimated fps and latency, LUT/BRAM_18K/DSP totals and %
of the board, the bottleneck node and why folding stopped; plus seconds per build step.
Weights are random with BN statistics randomised: FINN's estimates depend only on shapes and
bit-widths. The second strategy reuses the first build's checkpoints up to specialize_layers.

    python bench/finn_skynet.py [--width 1.0] [--size 160 320] [--bits 4] [--out DIR]
        [--resume EARLIER_OUT/ajpq]   # reuse a build's checkpoints up to specialize_layers
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import ajpq
from ajpq.backends import finn
from ajpq.models.random_init import randomize_batchnorm


def summary(artifact: finn.FinnArtifact, seconds: float) -> dict:
    report = json.loads(artifact.report.read_text())
    cost = artifact.cost
    return {
        "fps": round(cost.fps, 1),
        "latency_ms": round(cost.latency_s * 1e3, 3),
        "LUT": cost.resources["LUT"],
        "BRAM_18K": cost.resources["BRAM_18K"],
        "DSP": cost.resources["DSP"],
        "percent_of_board": cost.board_percent,
        "within_budget": all(cost.resources[k] <= v for k, v in report["budget"].items()),
        "bottleneck": cost.bottleneck,
        "bottleneck_cycles": cost.per_layer[cost.bottleneck]["cycles"],
        "stop_reason": report["folding"]["stop_reason"],
        "step_seconds": report["step_seconds"],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, nargs=2, default=(160, 320))
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--board", default="ultra96-v2")
    parser.add_argument("--clock-ns", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--resume", type=Path, default=None, help="an earlier build dir: skip to folding"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    began = time.perf_counter()
    model = randomize_batchnorm(ajpq.models.skynet(args.width, tuple(args.size)))
    policy = ajpq.Policy.uniform(model, args.bits, args.bits)
    hw = ajpq.lower(ajpq.quantize(model, policy))
    result = {
        "model": f"skynet width {args.width} at {args.size[0]}x{args.size[1]}",
        "policy": f"uniform {args.bits}-bit weights and activations",
        "board": args.board,
        "clock_ns": args.clock_ns,
        "lower_seconds": round(time.perf_counter() - began, 1),
    }
    out = args.out or Path(tempfile.mkdtemp(prefix="ajpq-finn-bench-"))
    previous = args.resume
    for strategy in finn.STRATEGIES:
        began = time.perf_counter()
        artifact = finn.compile(
            hw,
            args.board,
            out / strategy,
            clock_ns=args.clock_ns,
            strategy=strategy,
            resume=previous,
        )
        result[strategy] = summary(artifact, time.perf_counter() - began)
        previous = previous or out / strategy
    result["build_dirs"] = str(out)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
