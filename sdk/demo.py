"""``ajpq demo``: the main job on the embedded default, end to end, with a summary table.

Synthetic aerial data -> fp32 Skynet -> a short AJPQ search (latency estimate calibrated on
the QEMU board, best candidates measured there) plus the uniform-8-bit and Deep-Compression
baselines at the same budget -> int8 / Deep Compression / AJPQ each QAT fine-tuned and
lowered (golden checked against Brevitas) -> compiled for the MCU board (flashed, fed
validation images over serial, the boxes it sends back checked against golden) and for FINN
(ultra96-v2 estimates, in a worker process: ``ajpq.demo_finn``) -> a Vela-style table,
``report.md``, ``report.json`` and the Pareto plot. Data and the fp32 model are cached in
``<out>/cache``.
"""

import json
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import ajpq
from ajpq.data import Dataset
from ajpq.demo_finn import finn_row_from_file, finn_worker, stop_now
from ajpq.graph.hwgraph import HwGraph
from ajpq.metrics import mean_iou
from ajpq.models.checkpoint import load_model, save_model
from ajpq.models.region import decode


@dataclass(frozen=True)
class DemoConfig:
    width_mult: float = 0.25
    input_size: tuple[int, int] = (64, 128)
    n_train: int = 3000
    n_val: int = 300
    epochs: int = 20
    finetune_epochs: int = 5  # every row's final QAT fine-tune, distilled from fp32
    # its rate: 2e-5 (QAT_LR) moves 3- and 4-bit weights too little (docs/quantization.md)
    finetune_lr: float = 1e-3
    episodes: int = 10  # AJPQ search episodes (half of them random exploration)
    budget_fraction: float = 0.4  # weight-bytes budget as a share of int8's: 2.5x smaller
    min_bits: int = 2  # lowest bit-width the search may give a kept channel
    max_sparsity: float = 0.3  # short fine-tunes do not repair heavy pruning (quantization.md)
    search_train: int = 600  # QAT subset per search episode
    search_lr: float = 1e-3  # the episodes' fine-tune rate: ranks policies as the final one does
    search_val: int = 200  # reward subset
    board: str = "qemu-mps2-an386"
    # on the board over serial, ~1.3 s an image on QEMU (its UART takes ~60 µs per byte)
    board_images: int = 20  # int8 and Deep Compression
    ajpq_board_images: int = 50  # the AJPQ winner: each output == golden's
    finn_board: str = "ultra96-v2"
    seed: int = 0

    @classmethod
    def quick(cls) -> "DemoConfig":
        return cls(
            width_mult=0.125,
            input_size=(32, 64),
            n_train=64,
            n_val=32,
            epochs=1,
            finetune_epochs=1,
            episodes=2,
            search_train=64,
            search_val=32,
            board_images=4,
            ajpq_board_images=8,
        )

    def key(self) -> str:
        h, w = self.input_size
        return (
            f"w{self.width_mult}-{h}x{w}-n{self.n_train}-{self.n_val}-e{self.epochs}-s{self.seed}"
        )


def cached_data(config: DemoConfig, cache: Path, fresh: bool) -> tuple[Dataset, Dataset]:
    h, w = config.input_size
    paths = [
        cache / f"aerial-{h}x{w}-{split}-{n}-s{config.seed}.npz"
        for split, n in (("train", config.n_train), ("val", config.n_val))
    ]
    if not fresh and all(p.exists() for p in paths):
        return Dataset.load(paths[0]), Dataset.load(paths[1])
    train, val = ajpq.data.aerial(config.n_train, config.n_val, config.input_size, config.seed)
    train.save(paths[0])
    val.save(paths[1])
    return train, val


def cached_model(
    config: DemoConfig, cache: Path, fresh: bool, train: Dataset, val: Dataset, console: Console
) -> tuple[torch.nn.Module, float]:
    path = cache / f"skynet-fp32-{config.key()}.pt"
    if not fresh and path.exists():
        model, extra = load_model(path)
        console.print(f"reusing the trained fp32 model {path} (pass --fresh to retrain)")
        return model, float(extra["mean_iou"])
    torch.manual_seed(config.seed)
    model = ajpq.models.skynet(config.width_mult, config.input_size)
    result = ajpq.train(model, train, val, epochs=config.epochs, seed=config.seed)
    save_model(model, path, mean_iou=result.metric)
    return model.eval(), result.metric


def graph_iou(
    graph: HwGraph, images: np.ndarray, boxes: np.ndarray, anchors: torch.Tensor
) -> float:
    """Mean IoU of the boxes decoded from the golden executor's integer outputs."""
    outputs = np.concatenate([graph.run(images[i : i + 64]) for i in range(0, len(images), 64)])
    return mean_iou(boxes_from_outputs(graph, outputs, anchors), boxes)


def brevitas_mismatches(qmodel: ajpq.QuantModel, graph: HwGraph, images: np.ndarray) -> int:
    with torch.no_grad():
        out = qmodel.forward_quant(torch.from_numpy(images).float())
    expected = torch.round(out.value / out.scale).to(torch.int64).numpy()
    return int((graph.run(images) != expected).sum())


def quantized_row(
    name: str,
    model: torch.nn.Module,
    policy: ajpq.Policy,
    config: DemoConfig,
    data: tuple[Dataset, Dataset],
    out_dir: Path,
    graphs: dict[str, HwGraph],
) -> dict[str, Any]:
    train, val = data
    qmodel = ajpq.quantize(model, policy, calibration=torch.from_numpy(train.images[:32]).float())
    ajpq.train(
        qmodel, train, val, epochs=config.finetune_epochs, lr=config.finetune_lr,
        seed=config.seed, teacher=model,
    )  # fmt: skip
    qmodel.eval()
    graph = ajpq.lower(qmodel)
    graph.save(out_dir / f"{name}.hwg")
    graphs[name] = graph
    policy.save(out_dir / f"{name}-policy.json")
    summary = graph.summary()
    return {
        "model": name,
        "mean_iou": graph_iou(graph, val.images, val.boxes, model.anchors),
        "brevitas_mean_iou": ajpq.evaluate(qmodel, val),
        "golden_vs_brevitas_mismatches": brevitas_mismatches(qmodel, graph, val.images),
        "outputs_checked": int(len(val) * np.prod(graph.output.shape)),
        "weight_bytes": summary["weight_bytes"],
        "params": summary["params"],
        "macs": summary["macs"],
        "bops": summary["bops"],
    }


def boxes_from_outputs(graph: HwGraph, outputs: np.ndarray, anchors: torch.Tensor) -> np.ndarray:
    real = outputs * graph.output_scale.reshape(1, -1, 1, 1)
    return decode(torch.from_numpy(real).float(), anchors).numpy()


def mcu_row(
    name: str,
    graph: HwGraph,
    val: Dataset,
    out_dir: Path,
    config: DemoConfig,
    console: Console,
    anchors: torch.Tensor,
) -> dict[str, Any]:
    """Compile for the MCU board, flash it, run validation images over serial, and score the
    boxes decoded from what the board sent back."""
    from ajpq.boards import Board

    artifact = ajpq.compile(graph, "mcu", config.board, out_dir / f"mcu-{name}")
    count = config.ajpq_board_images if name == "AJPQ" else config.board_images
    images, boxes = val.images[:count], val.boxes[:count]
    with Board(config.board) as board:
        board.flash(artifact)
        with board.open() as session:
            outputs = np.stack([session.infer(image) for image in track(images, name, console)])
            measured = session.benchmark(runs=2, warmup=1)
    golden = graph.run(images)
    board_iou = mean_iou(boxes_from_outputs(graph, outputs, anchors), boxes)
    golden_iou = mean_iou(boxes_from_outputs(graph, golden, anchors), boxes)
    exact = bool(np.array_equal(outputs, golden))
    console.print(
        f"{name}: flash {artifact.report['flash_bytes']:,} B, RAM {artifact.report['ram_bytes']:,}"
        f" B, {measured.count:,} {measured.unit} per inference; {len(images)} images over serial:"
        f" board == golden: {exact}, IoU from the board {board_iou:.4f} (golden {golden_iou:.4f})"
    )
    return {
        "flash_bytes": artifact.report["flash_bytes"],
        "ram_bytes": artifact.report["ram_bytes"],
        "peak_arena_bytes": artifact.report["peak_arena_bytes"],
        "huffman_bytes": artifact.report["weights"]["huffman_bytes"],
        "board_count": measured.count,
        "board_unit": measured.unit,
        "board_images": len(images),
        "board_mean_iou": board_iou,
        "golden_mean_iou_same_images": golden_iou,
        "board_equals_golden": exact,
    }


def track(images: np.ndarray, name: str, console: Console) -> Any:
    """A progress bar over the images sent to the board."""
    from rich.progress import track as rich_track

    return rich_track(images, f"{name} on the board", console=console, transient=True)


def run_search(
    model: torch.nn.Module,
    data: tuple[Dataset, Dataset],
    int8_bytes: int,
    config: DemoConfig,
    out_dir: Path,
    console: Console,
) -> tuple[Any, list]:
    """The AJPQ search plus the uniform-8 and Deep Compression baselines, same budget."""
    import shutil

    from ajpq.search import SearchConfig, baselines, pareto_plot, report_table

    budget = ajpq.Budget(weight_bytes=int(int8_bytes * config.budget_fraction))
    console.print(
        f"budget: {budget.weight_bytes:,} weight bytes "
        f"({config.budget_fraction:.0%} of int8's {int8_bytes:,})"
    )
    search_config = SearchConfig(
        warmup_episodes=max(1, config.episodes // 2),
        train_images=config.search_train,
        val_images=config.search_val,
        min_bits=config.min_bits,
        max_sparsity=config.max_sparsity,
        qat_lr=config.search_lr,
        calibrate=True,  # the board in the loop: calibration sweep, new bests measured
    )
    shutil.rmtree(out_dir / "search", ignore_errors=True)
    result = ajpq.search(
        model,
        *data,
        backend="mcu",
        board=config.board,
        budget=budget,
        episodes=config.episodes,
        out_dir=out_dir / "search",
        seed=config.seed,
        config=search_config,
    )
    found = baselines(
        model,
        *data,
        budget,
        backend="mcu",
        board=config.board,
        config=search_config,
        out_dir=out_dir / "baselines",
        seed=config.seed,
        names=["uniform-8", "deep-compression"],
        calibration=result.calibration,
    )
    pareto_plot(result.candidates, found, out_dir / "pareto.png")
    console.print(report_table(result.candidates, found))
    return result, found


class Stopwatch:
    """Seconds per stage, so a report says where the time went (the README quotes the time
    after the fp32 training, which a second run reads from the cache)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.stages[stage] = round(now - self.last, 1)
        self.last = now

    def total(self) -> float:
        return time.monotonic() - self.start

    def describe(self) -> str:
        return ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in self.stages.items())


def deployed_rows(
    policies: dict[str, ajpq.Policy],
    model: torch.nn.Module,
    config: DemoConfig,
    data: tuple[Dataset, Dataset],
    out_dir: Path,
    console: Console,
    clock: Stopwatch,
) -> list[dict[str, Any]]:
    """Each policy fine-tuned, lowered and run on the MCU board, one after another, while
    the FINN worker estimates the graphs already lowered (a failed estimate is raised as
    soon as it is seen; an error or Ctrl-C here drops the estimates still to come)."""
    rows: list[dict[str, Any]] = []
    graphs: dict[str, HwGraph] = {}
    estimates: dict[str, Future[dict[str, Any]]] = {}
    anchors = model.anchors
    finn = finn_worker()
    try:
        for name, policy in policies.items():
            console.rule(f"4. {name}: QAT fine-tune, lower, golden check, MCU board, FINN")
            row = quantized_row(name, model, policy, config, data, out_dir, graphs)
            estimates[name] = finn.submit(
                finn_row_from_file, name, out_dir / f"{name}.hwg", out_dir, config.finn_board
            )
            console.print(f"{name}: FINN estimates for {config.finn_board} in the background")
            row.update(mcu_row(name, graphs[name], data[1], out_dir, config, console, anchors))
            rows.append(row)
            for estimate in estimates.values():
                if estimate.done():
                    estimate.result()  # raises the worker's error now, not after every row
            clock.lap(f"{name} row")
        for row in rows:
            row.update(estimates[row["model"]].result())
        clock.lap("FINN estimates left")
    except BaseException:
        stop_now(finn)
        raise
    finn.shutdown()
    return rows


def run_demo(config: DemoConfig, out_dir: Path, fresh: bool, console: Console) -> dict:
    from ajpq.demo_report import summary_table, verdict, write_markdown

    clock = Stopwatch()
    cache = out_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    console.rule("1. synthetic aerial data")
    data = cached_data(config, cache, fresh)
    console.print(f"{len(data[0])} train / {len(data[1])} val images at {config.input_size}")
    console.rule("2. fp32 Skynet")
    model, fp32_iou = cached_model(config, cache, fresh, *data, console)
    int8 = ajpq.Policy.uniform(model, 8, 8)
    params = ajpq.lower(ajpq.quantize(model, int8)).summary()
    clock.lap("data and fp32 model")
    rows = [
        {
            "model": "fp32",
            "mean_iou": fp32_iou,
            "weight_bytes": params["params"] * 4,
            "params": params["params"],
            "macs": params["macs"],
            "bops": params["macs"] * 32 * 32,
        }
    ]
    console.rule(f"3. AJPQ search with {config.board} in the loop, and baselines")
    result, found = run_search(model, data, params["params"], config, out_dir, console)
    clock.lap("search and baselines")
    deep_compression = next(c for c in found if c.name == "deep-compression")
    policies = {
        "int8": int8,
        "Deep Compression": deep_compression.policy,
        "AJPQ": result.best_policy,
    }
    rows += deployed_rows(policies, model, config, data, out_dir, console, clock)
    report = {
        "config": asdict(config),
        "rows": rows,
        "verdict": verdict(rows),
        "search": {
            "candidates": [c.to_dict() for c in result.candidates],
            "baselines": [c.to_dict() for c in found],
        },
        "seconds": clock.total(),
        "stage_seconds": clock.stages,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=str))
    write_markdown(report, out_dir / "report.md")
    console.print(summary_table(rows, report["verdict"]))
    console.print(
        f"wrote {out_dir / 'report.md'}, report.json and pareto.png in {report['seconds']:.0f} s"
        f" ({clock.describe()})"
    )
    return report
