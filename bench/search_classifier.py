"""AJPQ search of a user-style ResNet classifier on real digits vs the five baselines; prints JSON.

    python bench/search_classifier.py            # 128 episodes (~20 min on 2 cores)
    python bench/search_classifier.py --quick    # the same flow, 4 episodes (~5 min)

(The fp32 model's first training adds ~2 min; 64 episodes took 10.6 min in all.)

The data is scikit-learn's handwritten digits (``ajpq.data.digits``: real scans, no download,
upsampled to 32x32, one channel). The model is written as a PyTorch user writes it (below:
residual blocks with ``nn.Identity`` and strided 1x1 shortcuts, ``F.relu``, ``x.mean((2, 3))``,
``nn.Linear``). Its fp32 weights are trained once and cached outside the repo
(``--cache``, keyed by every training setting); the JSON says how they were made.

The weight budget is fp32 bytes / ``--compression`` (10). AJPQ searches with the QEMU board in
the loop (``SearchConfig(calibrate=True)``); the baselines (uniform 8/4, Deep Compression,
HAQ-like, AMC-like) use the same config and the search's calibration. Then AJPQ's best policy
and every baseline's get the SAME final fine-tune (quantized afresh from the fp32 weights,
``--final-epochs`` at ``--final-lr`` on the whole train split), are lowered, and scored on the
whole val split by the golden executor (``HwGraph.run`` on uint8 images, argmax of the head);
each is compiled for the board, flashed, checked against golden on ``--board-images`` images
and benchmarked (instructions per inference under QEMU ``-icount``).

Goal: AJPQ >= 10x smaller than fp32 at <= 1 point top-1 below fp32, and smaller (weight bytes)
than every baseline within 1 point of fp32. A missed goal is listed in ``missed`` and printed
on stderr as ``MISSED: ...``.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import ajpq
from ajpq.backends import get as get_backend
from ajpq.data import digits
from ajpq.data.samples import ArraySamples
from ajpq.graph.hwgraph import HwGraph
from ajpq.search import Budget, SearchConfig, baselines, search
from ajpq.search.candidates import Candidate, SearchResult
from ajpq.tasks import Classification

GOAL_COMPRESSION = 10.0
GOAL_POINTS = 1.0  # top-1 points below fp32


class Block(nn.Module):
    """Two 3x3 conv + BN, plus the shortcut: identity, or a strided 1x1 conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class DigitsResNet(nn.Module):
    """A ResNet-8-like classifier on raw 0..255 pixels (the first BN absorbs the scale)."""

    def __init__(self, width: int = 12, channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.stack1 = Block(width, width)
        self.stack2 = Block(width, 2 * width, stride=2)
        self.stack3 = Block(2 * width, 4 * width, stride=2)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.stack3(self.stack2(self.stack1(x)))
        return self.fc(self.dropout(x.mean((2, 3))))


@dataclass(frozen=True)
class Settings:
    """What the bench runs with (``--quick`` shrinks the search and the final fine-tune)."""

    width: int
    input_size: tuple[int, int]
    val_count: int
    epochs: int
    lr: float
    episodes: int
    compression: float
    train_images: int
    val_images: int
    qat_epochs: int
    qat_lr: float
    final_epochs: int
    final_lr: float
    board_images: int
    board: str
    out: Path
    cache: Path
    seed: int
    resume: bool = False


def parse_arguments(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few episodes, short fine-tune")
    parser.add_argument("--width", type=int, default=12, help="channels of the first stack")
    parser.add_argument("--input-size", type=int, nargs=2, default=[32, 32])
    parser.add_argument("--val-count", type=int, default=360, help="digits kept for val")
    parser.add_argument("--epochs", type=int, default=40, help="fp32 training epochs")
    parser.add_argument("--lr", type=float, default=2e-3, help="fp32 learning rate")
    parser.add_argument("--episodes", type=int, default=None, help="default 128 (quick: 4)")
    parser.add_argument("--compression", type=float, default=GOAL_COMPRESSION)
    parser.add_argument("--train-images", type=int, default=None, help="QAT subset/episode")
    parser.add_argument("--val-images", type=int, default=360, help="reward subset")
    parser.add_argument("--qat-epochs", type=int, default=SearchConfig.qat_epochs)
    parser.add_argument("--qat-lr", type=float, default=SearchConfig.qat_lr)
    parser.add_argument("--final-epochs", type=int, default=None, help="default 8 (quick: 2)")
    parser.add_argument("--final-lr", type=float, default=5e-4)
    parser.add_argument("--board-images", type=int, default=20, help="board == golden check")
    parser.add_argument("--board", default="qemu-mps2-an386")
    parser.add_argument("--out", type=Path, default=Path("build/bench-classifier"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/ajpq/bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the search in --out")
    raw = parser.parse_args(argv)

    def chosen(value: int | None, full: int, quick: int) -> int:
        return value if value is not None else (quick if raw.quick else full)

    return Settings(
        raw.width, (raw.input_size[0], raw.input_size[1]), raw.val_count, raw.epochs, raw.lr,
        chosen(raw.episodes, 128, 4), raw.compression, chosen(raw.train_images, 800, 400),
        raw.val_images, raw.qat_epochs, raw.qat_lr,
        chosen(raw.final_epochs, 8, 2), raw.final_lr,
        raw.board_images, raw.board, raw.out, raw.cache.expanduser(), raw.seed, raw.resume,
    )  # fmt: skip


def fp32_model(
    settings: Settings, train: ArraySamples, val: ArraySamples
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained fp32 model, from the cache when these settings made it before."""
    h, w = settings.input_size
    key = (
        f"digits-resnet-w{settings.width}-{h}x{w}-val{settings.val_count}-e{settings.epochs}"
        f"-lr{settings.lr:g}-s{settings.seed}"
    )
    path = settings.cache / f"{key}.pt"
    torch.manual_seed(settings.seed)
    model = DigitsResNet(settings.width)
    if path.exists():
        found = torch.load(path, weights_only=False)
        model.load_state_dict(found["state_dict"])
        return model.eval(), {**found["made"], "cache": str(path)}
    result = ajpq.train(
        model, train, val, epochs=settings.epochs, lr=settings.lr, seed=settings.seed,
        task=Classification(),
    )  # fmt: skip
    made = {
        "how": (
            f"DigitsResNet(width={settings.width}) trained by ajpq.train on digits "
            f"(val_count={settings.val_count}, input {h}x{w}, seed {settings.seed}): "
            f"{result.epochs_run} epochs, lr {settings.lr:g}, batch 32, Classification()"
        ),
        "train_top1": round(result.metric, 4),
        "train_seconds": round(result.seconds, 1),
        "epochs": result.epochs_run,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "made": made}, path)
    return model.eval(), {**made, "cache": str(path)}


def golden_top1(graph: HwGraph, val: ArraySamples) -> float:
    """Top-1 of the integer graph on every val image: argmax of the head's real outputs."""
    outputs = graph.run(val.images).reshape(len(val.images), -1)
    real = outputs * graph.output_scale.reshape(1, -1)
    return float((real.argmax(axis=1) == val.targets).mean())


def on_board(graph: HwGraph, name: str, val: ArraySamples, settings: Settings) -> dict[str, Any]:
    """Compile for the board, flash, compare with golden on a few images, benchmark."""
    from ajpq.boards import Board

    artifact = ajpq.compile(graph, "mcu", settings.board, settings.out / "board" / name)
    images = val.images[: settings.board_images]
    with Board(settings.board) as board:
        board.flash(artifact)
        with board.open() as session:
            outputs = np.stack([session.infer(image) for image in images])
            measured = session.benchmark(runs=1, warmup=0)
    golden = graph.run(images)
    return {
        "instructions": measured.count,
        "unit": measured.unit,
        "flash_bytes": artifact.report["flash_bytes"],
        "ram_bytes": artifact.report["ram_bytes"],
        "board_equals_golden": bool(np.array_equal(outputs.reshape(golden.shape), golden)),
    }


def final_row(
    model: nn.Module, policy: ajpq.Policy, name: str, data: tuple[ArraySamples, ArraySamples],
    settings: Settings, fp32_bytes: int,
) -> dict[str, Any]:  # fmt: skip
    """The same final fine-tune for every policy, then golden top-1, sizes and the board."""
    train, val = data
    torch.manual_seed(settings.seed)
    qmodel = ajpq.quantize(model, policy, input_size=settings.input_size)
    started = time.monotonic()
    ajpq.train(
        qmodel, train, val, epochs=settings.final_epochs, lr=settings.final_lr,
        seed=settings.seed, progress=False, task=Classification(),
    )  # fmt: skip
    graph = ajpq.lower(qmodel.eval())
    weight_bytes = int(graph.summary()["weight_bytes"])
    return {
        "name": name,
        "top1": round(golden_top1(graph, val), 4),
        "weight_bytes": weight_bytes,
        "stored_bytes": get_backend("mcu").stored_weight_bytes(graph),
        "compression_vs_fp32": round(fp32_bytes / weight_bytes, 2),
        **on_board(graph, name, val, settings),
        "fine_tune_seconds": round(time.monotonic() - started, 1),
    }


def goals(fp32_top1: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The bench's goals as booleans, and a plain line for each one missed."""
    ajpq_row, others = rows[0], rows[1:]
    points_below = 100 * (fp32_top1 - ajpq_row["top1"])
    close = [r for r in others if 100 * (fp32_top1 - r["top1"]) <= GOAL_POINTS]
    not_beaten = [r["name"] for r in close if r["weight_bytes"] <= ajpq_row["weight_bytes"]]
    found = {
        "goal_10x_smaller": ajpq_row["compression_vs_fp32"] >= GOAL_COMPRESSION,
        "goal_within_1_point": points_below <= GOAL_POINTS,
        "goal_smaller_than_baselines_within_1_point": not not_beaten,
    }
    missed = []
    if not found["goal_10x_smaller"]:
        missed.append(f"AJPQ is {ajpq_row['compression_vs_fp32']}x smaller than fp32, not 10x")
    if not found["goal_within_1_point"]:
        missed.append(f"AJPQ top-1 is {points_below:.2f} points below fp32 (goal <= 1)")
    if not_beaten:
        missed.append(f"within 1 point of fp32 and no larger than AJPQ: {', '.join(not_beaten)}")
    return {**found, "missed": missed}


def search_config(settings: Settings) -> SearchConfig:
    """The search's knobs; the baselines get the same ones."""
    return SearchConfig(
        warmup_episodes=max(1, settings.episodes // 2),
        train_images=settings.train_images,
        val_images=settings.val_images,
        qat_epochs=settings.qat_epochs,
        qat_lr=settings.qat_lr,
        calibrate=True,
    )


def final_rows(
    model: nn.Module, result: SearchResult, others: list[Candidate],
    data: tuple[ArraySamples, ArraySamples], settings: Settings, fp32_bytes: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """AJPQ's best policy first, then each baseline's, all after the same final fine-tune."""
    chosen = [("ajpq", result.best), *((o.name, o) for o in others)]
    rows = []
    for name, candidate in chosen:
        row = final_row(model, candidate.policy, name, data, settings, fp32_bytes)
        row["search_top1"] = round(candidate.accuracy, 4)  # after the search's short QAT
        rows.append({**row, "fits_budget": candidate.feasible})
    return rows


def main(argv: list[str]) -> dict[str, Any]:
    settings = parse_arguments(argv)
    began = time.monotonic()
    train, val = digits(settings.val_count, settings.input_size, settings.seed)
    model, made = fp32_model(settings, train, val)
    task = Classification()
    fp32_top1 = ajpq.evaluate(model, val, task)
    int8_policy = ajpq.Policy.uniform(model, 8, 8, settings.input_size)
    int8 = ajpq.lower(ajpq.quantize(model, int8_policy, input_size=settings.input_size))
    fp32_bytes = 4 * int(int8.summary()["params"])  # as the demo counts it
    budget = Budget(weight_bytes=int(fp32_bytes / settings.compression))
    config = search_config(settings)
    started = time.monotonic()
    result = search(
        model, train, val, board=settings.board, budget=budget, episodes=settings.episodes,
        out_dir=settings.out / "search", seed=settings.seed, config=config, task=task,
        resume=settings.resume,
    )  # fmt: skip
    search_seconds = time.monotonic() - started
    others = baselines(
        model, train, val, budget, board=settings.board, config=config,
        out_dir=settings.out / "baselines", seed=settings.seed, calibration=result.calibration,
        task=task,
    )  # fmt: skip
    rows = final_rows(model, result, others, (train, val), settings, fp32_bytes)
    reached = goals(fp32_top1, rows)
    for line in reached["missed"]:
        print(f"MISSED: {line}", file=sys.stderr)
    return {
        "data": f"sklearn digits, {len(train)} train / {len(val)} val, {settings.input_size}",
        "fp32": {"top1": round(fp32_top1, 4), "weight_bytes": fp32_bytes, **made},
        "budget_weight_bytes": budget.weight_bytes,
        "search": {
            "episodes": settings.episodes,
            "warmup_episodes": config.warmup_episodes,
            "qat_images": config.train_images,
            "reward_images": config.val_images,
            "qat_epochs": config.qat_epochs,
            "qat_lr": config.qat_lr,
            "candidates": len(result.candidates),
            "seconds": round(search_seconds, 1),
        },  # fmt: skip
        "final_fine_tune": {
            "epochs": settings.final_epochs,
            "lr": settings.final_lr,
            "train_images": len(train),
            "from": "fp32 weights, quantized afresh",
        },  # fmt: skip
        "board": settings.board,
        "rows": rows,
        **reached,
        "wall_seconds": round(time.monotonic() - began, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
