"""AJPQ search of Skynet vs the five baselines at one budget; prints JSON.

    python bench/search_skynet.py                         # width 0.5, 160x320 (issue 5 goal)
    python bench/search_skynet.py --width-mult 0.125 --input-size 32 64 --n-train 64 \
        --n-val 32 --epochs 1 --episodes 2 --train-images 64 --val-images 32   # smoke run

Goal: AJPQ within 1 point of fp32 mean IoU at >= 12x smaller weights than fp32 (the default
budget is fp32 bytes / 12), smaller than every baseline at equal IoU, search <= 20 minutes.
For AJPQ's best and each baseline the JSON has the mean IoU after the same short QAT
fine-tune, weight bytes, compression vs fp32, BOPs and instructions per inference measured on
the emulated board (QEMU -icount; ``qemu-mps2-an386-4m`` holds 160x320 activations). The
fp32 model and the data are cached in ``--out/cache``; the Pareto plot goes to ``--out``.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

import ajpq
from ajpq.data import Dataset, aerial
from ajpq.graph.lower import lower
from ajpq.models.checkpoint import load_model, save_model
from ajpq.quant.quantize import quantize
from ajpq.search import Budget, Candidate, SearchConfig, baselines, pareto_plot, search
from ajpq.search.hardware import HardwareLoop


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width-mult", type=float, default=0.5)
    parser.add_argument("--input-size", type=int, nargs=2, default=[160, 320])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=6, help="fp32 training epochs")
    parser.add_argument("--train-max-seconds", type=float, default=1800.0)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--compression", type=float, default=12.0, help="budget: fp32 bytes / x")
    parser.add_argument("--train-images", type=int, default=400, help="QAT subset per episode")
    parser.add_argument("--val-images", type=int, default=200, help="reward subset")
    parser.add_argument("--qat-seconds", type=float, default=60.0)
    parser.add_argument("--board", default="qemu-mps2-an386-4m")
    parser.add_argument("--out", type=Path, default=Path("build/bench-search"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def fp32_model(arguments: argparse.Namespace, data: tuple[Dataset, Dataset]) -> tuple[Any, dict]:
    h, w = arguments.input_size
    key = f"w{arguments.width_mult}-{h}x{w}-n{arguments.n_train}-e{arguments.epochs}"
    path = arguments.out / "cache" / f"skynet-fp32-{key}.pt"
    if path.exists():
        model, extra = load_model(path)
        return model.eval(), extra
    torch.manual_seed(arguments.seed)
    model = ajpq.models.skynet(arguments.width_mult, (h, w))
    result = ajpq.train(
        model, *data, epochs=arguments.epochs, seed=arguments.seed, progress=True,
        max_seconds=arguments.train_max_seconds,
    )  # fmt: skip
    extra = {"mean_iou": result.metric, "seconds": result.seconds, "epochs": result.epochs_run}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path, **extra)
    return model.eval(), extra


def row(candidate: Candidate, fp32_bytes: int, instructions: int) -> dict[str, Any]:
    return {
        "mean_iou": round(candidate.accuracy, 4),
        "weight_bytes": candidate.weight_bytes,
        "compression_vs_fp32": round(fp32_bytes / candidate.weight_bytes, 2),
        "bops": candidate.bops,
        "qemu_instructions": instructions,
        "feasible": candidate.feasible,
    }


def main(argv: list[str]) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    began = time.monotonic()
    size = (arguments.input_size[0], arguments.input_size[1])
    data = aerial(arguments.n_train, arguments.n_val, input_size=size, seed=arguments.seed)
    model, trained = fp32_model(arguments, data)
    int8 = lower(quantize(model, ajpq.Policy.uniform(model, 8, 8)))
    fp32_bytes = 4 * int8.summary()["params"]  # as the demo counts it
    budget = Budget(weight_bytes=int(fp32_bytes / arguments.compression))
    config = SearchConfig(
        warmup_episodes=max(1, arguments.episodes // 2),
        train_images=arguments.train_images,
        val_images=arguments.val_images,
        qat_seconds=arguments.qat_seconds,
        calibrate=True,
    )
    started = time.monotonic()
    result = search(
        model, *data, board=arguments.board, budget=budget, episodes=arguments.episodes,
        out_dir=arguments.out / "search", seed=arguments.seed, config=config,
    )  # fmt: skip
    search_seconds = time.monotonic() - started
    started = time.monotonic()
    others = baselines(
        model, *data, budget, board=arguments.board, config=config,
        out_dir=arguments.out / "baselines", seed=arguments.seed, calibration=result.calibration,
    )  # fmt: skip
    baseline_seconds = time.monotonic() - started
    loop = HardwareLoop("mcu", arguments.board, arguments.out / "measure", data[1].images[0])
    best = result.best
    record = next(r for r in result.hardware if r.episode == best.episode)
    rows = {"ajpq": row(best, fp32_bytes, record.measured)}
    for other in others:
        graph = lower(quantize(model, other.policy).eval())
        record = loop.measure(graph, "benchmark", other.name, None, refit=False)
        measured = None if record is None else record.measured
        rows[other.name] = row(other, fp32_bytes, measured)
    pareto_plot(result.candidates, others, arguments.out / "pareto.png")
    candidates = [r for r in result.hardware if r.kind == "candidate"]
    return {
        "model": {"width_mult": arguments.width_mult, "input_size": list(size)},
        "fp32": {
            "mean_iou": round(float(trained["mean_iou"]), 4),
            "weight_bytes": fp32_bytes,
            "train_seconds": round(float(trained["seconds"]), 1),
            "epochs": trained["epochs"],
        },
        "budget_weight_bytes": budget.weight_bytes,
        "episodes": arguments.episodes,
        "rows": rows,
        "latency_estimate_error": [
            {
                "episode": r.episode,
                "estimated": round(r.estimated),
                "measured": r.measured,
                "error": round(r.error, 4),
            }
            for r in candidates
        ],  # fmt: skip
        "goal_iou_within_1_point": (float(trained["mean_iou"]) - best.accuracy) * 100 <= 1.0,
        "goal_12x_smaller": fp32_bytes / best.weight_bytes >= 12.0,
        "baselines_no_larger_and_no_worse": [
            o.name
            for o in others
            if o.weight_bytes <= best.weight_bytes and o.accuracy >= best.accuracy
        ],  # fmt: skip
        "search_seconds": round(search_seconds, 1),
        "baselines_seconds": round(baseline_seconds, 1),
        "wall_seconds": round(time.monotonic() - began, 1),
        "pareto_png": str(arguments.out / "pareto.png"),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
