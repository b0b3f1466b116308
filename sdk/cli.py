"""The ``ajpq`` command line (typer). Errors from ajpq print as one line and exit 2."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ajpq.cli_farm import farm_app
from ajpq.cli_model import UserArgs, parse_size
from ajpq.cli_user import (
    BEST_GRAPH,
    DataOption,
    InputSizeOption,
    ModelOption,
    NormalizeOption,
    TaskOption,
    ValFractionOption,
    WeightsOption,
    data_app,
    model_and_data,
    search_summary,
    train_user,
)
from ajpq.data.samples import calibration_batch
from ajpq.errors import AjpqError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ajpq: joint pruning + quantization of CNNs for MCUs and FPGAs.",
)
app.add_typer(data_app, name="data")
app.add_typer(farm_app, name="farm")
# Wide enough for the report tables when output is piped to a file or CI log.
console = Console() if sys.stdout.isatty() else Console(width=150)


@app.command()
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="checkpoint to write")],
    width: Annotated[float, typer.Option(help="Skynet width multiplier")] = 0.25,
    size: Annotated[str, typer.Option(help="input size HxW")] = "64x128",
    n_train: Annotated[int, typer.Option(help="synthetic training images")] = 2000,
    n_val: Annotated[int, typer.Option(help="synthetic validation images")] = 300,
    epochs: Annotated[int, typer.Option()] = 10,
    seed: Annotated[int, typer.Option()] = 0,
    model: ModelOption = None,
    weights: WeightsOption = None,
    data: DataOption = None,
    task: TaskOption = None,
    input_size: InputSizeOption = None,
    normalize: NormalizeOption = None,
    val_fraction: ValFractionOption = None,
) -> None:
    """Train an fp32 model and save a checkpoint: Skynet on synthetic aerial data, or --model
    on --data."""
    import ajpq
    from ajpq.models.checkpoint import save_model

    user = UserArgs(model, weights, data, task, input_size, normalize, val_fraction)
    if model is not None:
        train_user(user, output, epochs, seed, console)
        return
    user.check_without_model()
    shape = parse_size(size, "--size")
    train_set, val_set = ajpq.data.aerial(n_train, n_val, input_size=shape, seed=seed)
    net = ajpq.models.skynet(width_mult=width, input_size=shape)
    result = ajpq.train(net, train_set, val_set, epochs=epochs, seed=seed)
    save_model(net, output, mean_iou=result.metric)
    console.print(
        f"val mean IoU {result.metric:.4f} after {result.epochs_run} epochs "
        f"({result.seconds:.0f} s); saved {output}"
    )


@app.command()
def quantize(
    output: Annotated[Path, typer.Option("-o", "--output", help="HwGraph file to write")],
    checkpoint: Annotated[
        Path | None, typer.Argument(help="model from `ajpq train` (or --model + --weights)")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="policy JSON (default: uniform)")] = None,
    bits: Annotated[int, typer.Option(help="uniform weight bits without --policy")] = 8,
    act_bits: Annotated[int, typer.Option(help="uniform activation bits")] = 8,
    finetune_epochs: Annotated[int, typer.Option(help="QAT fine-tune epochs")] = 0,
    n_train: Annotated[int, typer.Option()] = 2000,
    n_val: Annotated[int, typer.Option()] = 300,
    seed: Annotated[int, typer.Option()] = 0,
    model: ModelOption = None,
    weights: WeightsOption = None,
    data: DataOption = None,
    task: TaskOption = None,
    input_size: InputSizeOption = None,
    normalize: NormalizeOption = None,
    val_fraction: ValFractionOption = None,
    target: Annotated[
        str, typer.Option(help="ajpq (mcu, finn) or tflite (for --backend tflite)")
    ] = "ajpq",
    weight_scale: Annotated[
        str, typer.Option(help="weight scales: max (largest |w|) or mse (better at 4 bits)")
    ] = "max",
    bias_correction: Annotated[
        str, typer.Option(help="off, output or all: match biases on 32 training images")
    ] = "off",
) -> None:
    """Quantize a checkpoint with a policy, optionally QAT fine-tune, lower, save a HwGraph."""
    import ajpq

    user = UserArgs(model, weights, data, task, input_size, normalize, val_fraction)
    needs_data = finetune_epochs > 0 or bias_correction != "off"
    aerial = {"n_train": n_train, "n_val": n_val} if needs_data else None
    job = model_and_data(user, checkpoint, seed, aerial, need_data=needs_data)
    net, shape = job.model, job.input_size
    chosen = (
        ajpq.Policy.load(policy, net, shape)
        if policy
        else ajpq.Policy.uniform(net, bits, act_bits, shape)
    )
    calibration = job.calibration
    if calibration is None and bias_correction != "off":
        calibration = calibration_batch(job.train)  # Skynet's aerial scenes
    qmodel = ajpq.quantize(
        net, chosen, calibration, shape, job.normalization, target, weight_scale, bias_correction
    )
    if finetune_epochs:
        from ajpq.quant.fold_input import fold_input

        teacher = net if job.normalization is None else fold_input(net, *job.normalization)
        ajpq.train(
            qmodel, job.train, job.val, epochs=finetune_epochs, task=job.task, teacher=teacher
        )  # QAT_LR, distilled from the float model
    graph = ajpq.lower(qmodel)
    graph.save(output)
    console.print(f"saved {output}: {graph.summary()['weight_bytes']:,} weight bytes")


@app.command("search")
def search_command(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="model from `ajpq train` (or --model + --weights)")
    ] = None,
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir")] = Path("build/ajpq-search"),
    weight_bytes: Annotated[int | None, typer.Option(help="budget: weight bytes")] = None,
    latency: Annotated[float | None, typer.Option(help="budget: seconds per inference")] = None,
    bops: Annotated[int | None, typer.Option(help="budget: bit operations")] = None,
    fps: Annotated[float | None, typer.Option(help="budget: inferences per second")] = None,
    board_fit: Annotated[
        bool, typer.Option(help="budget: fit the board (flash/RAM or LUT/BRAM/DSP)")
    ] = False,
    episodes: Annotated[int, typer.Option()] = 20,
    backend: Annotated[str, typer.Option()] = "mcu",
    board: Annotated[str, typer.Option()] = "qemu-mps2-an386",
    n_train: Annotated[int, typer.Option(help="synthetic training images")] = 2000,
    n_val: Annotated[int, typer.Option(help="synthetic validation images")] = 300,
    resume: Annotated[bool, typer.Option(help="continue a checkpointed search")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    board_in_loop: Annotated[
        bool,
        typer.Option(help="calibrate the estimate on the board (finn: finn-plus), measure bests"),
    ] = True,
    with_baselines: Annotated[
        bool, typer.Option("--baselines", help="also the 5 baselines; table + pareto.png")
    ] = False,
    train_images: Annotated[int, typer.Option(help="QAT subset per episode")] = 2000,
    finalists: Annotated[
        int, typer.Option(help="the best N by reward get a longer fine-tune before one is chosen")
    ] = 0,
    finalist_tolerance: Annotated[
        float, typer.Option(help="the fewest bytes among finalists this close to the best")
    ] = 0.0,
    finalist_bias_correction: Annotated[
        str, typer.Option(help="off, output or all: correct biases before the finalists' fine-tune")
    ] = "output",
    model: ModelOption = None,
    weights: WeightsOption = None,
    data: DataOption = None,
    task: TaskOption = None,
    input_size: InputSizeOption = None,
    normalize: NormalizeOption = None,
    val_fraction: ValFractionOption = None,
    workers: Annotated[
        int | None, typer.Option(help="spread over N emulated boards on this machine (Ray)")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="spread over a board farm: its Ray head, e.g. head:6379")
    ] = None,
    farm: Annotated[
        Path | None, typer.Option(help="the farm file (each board's serial port)")
    ] = None,
) -> None:
    """AJPQ: search per-channel bit-widths (0 = pruned) within a budget; checkpointed. Writes
    best_policy.json and the best model's HwGraph, best.hwg (for `ajpq compile`), to -o.
    --workers / --ray-address: one policy per board each round (docs/farm.md)."""
    import ajpq
    from ajpq.search import SearchConfig, baselines, pareto_plot, report_table

    if workers is not None and ray_address is not None:
        raise AjpqError("give --workers (boards here) or --ray-address (a farm), not both")
    user = UserArgs(model, weights, data, task, input_size, normalize, val_fraction)
    job = model_and_data(user, checkpoint, seed, {"n_train": n_train, "n_val": n_val}, True)
    net, train_set, val_set = job.model, job.train, job.val
    budget = ajpq.Budget(
        weight_bytes=weight_bytes, latency=latency, bops=bops, fps=fps, board_fit=board_fit
    )
    config = SearchConfig(
        calibrate=board_in_loop,
        train_images=train_images,
        finalists=finalists,
        finalist_tolerance=finalist_tolerance,
        finalist_bias_correction=finalist_bias_correction,
    )
    result = ajpq.search(
        net, train_set, val_set, backend=backend, board=board, budget=budget,
        episodes=episodes, out_dir=out_dir, seed=seed, resume=resume, config=config,
        task=job.task, input_normalization=job.normalization,
        workers=ray_address if ray_address is not None else workers, farm=farm,
    )  # fmt: skip
    if with_baselines:
        found = baselines(
            net, train_set, val_set, budget, backend=backend, board=board, config=config,
            out_dir=out_dir / "baselines", seed=seed, calibration=result.calibration,
            task=job.task, input_normalization=job.normalization,
        )  # fmt: skip
        console.print(report_table(result.candidates, found, result.metric))
        pareto_plot(result.candidates, found, out_dir / "pareto.png", result.metric)
    result.best_graph.save(out_dir / BEST_GRAPH)
    console.print(search_summary(result, out_dir))


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="a HwGraph file (.hwg)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print a HwGraph's parameters, MACs, BOPs and weight bytes, per layer and in total."""
    from ajpq.graph.hwgraph import HwGraph

    summary = HwGraph.load(path).summary()
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    table = Table(title=f"{path}  input {summary['input_shape']}  output {summary['output_shape']}")
    for column in ("layer", "op", "in", "out", "params", "bits", "MACs", "BOPs", "weight bytes"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for layer in summary["layers"]:
        table.add_row(
            layer["name"],
            layer["op"],
            str(layer["in_channels"]),
            str(layer["out_channels"]),
            f"{layer['params']:,}",
            ",".join(map(str, layer["bits"])),
            f"{layer['macs']:,}",
            f"{layer['bops']:,}",
            f"{layer['weight_bytes']:,}",
        )
    table.add_row(
        "total",
        "",
        "",
        "",
        f"{summary['params']:,}",
        "",
        f"{summary['macs']:,}",
        f"{summary['bops']:,}",
        f"{summary['weight_bytes']:,}",
        style="bold",
    )
    console.print(table)


@app.command("compile")
def compile_command(
    model: Annotated[Path, typer.Argument(help="a HwGraph file (.hwg)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="build directory")],
    backend: Annotated[str, typer.Option(help="mcu, finn or tflite")] = "mcu",
    board: Annotated[str, typer.Option(help="board id (hw/boards/*.toml)")] = "qemu-mps2-an386",
) -> None:
    """Compile a HwGraph for a board: generated C, host build, firmware ELF and a report
    (mcu); a FINN build (finn); a .tflite for TFLM, checked in TFLM (tflite)."""
    import ajpq
    from ajpq.graph.hwgraph import HwGraph

    artifact = ajpq.compile(
        HwGraph.load(model), backend=backend, board=board, out_dir=output, console=console
    )
    from ajpq.backends import get

    console.print(get(backend).describe(artifact))


def _artifact(path: Path) -> object:
    from ajpq.deploy import load_artifact

    return load_artifact(path)


@app.command()
def flash(
    artifact_dir: Annotated[Path, typer.Argument(help="build directory from `ajpq compile`")],
    board: Annotated[str, typer.Option(help="board id")] = "qemu-mps2-an386",
    port: Annotated[str | None, typer.Option(help="serial port of a real board")] = None,
    probe: Annotated[str | None, typer.Option(help="debug probe UID (pyOCD)")] = None,
) -> None:
    """Program a board with an artifact's firmware (QEMU: start it and keep it running)."""
    import time

    from ajpq.boards import Board

    artifact = _artifact(artifact_dir)
    target = Board(board, port=port, probe=probe)
    target.flash(artifact)
    if target.qemu is None:
        console.print(f"flashed {artifact.elf} to {board}; serial at {target.url}")
        return
    with target:
        with target.open() as session:
            info = session.info()
        console.print(
            f"{board} is running model {info['model_hash']} under QEMU "
            f"(pid {target.qemu.process.pid}); reach it with "
            f"`ajpq bench {artifact_dir} --board {board} --port {target.url}` or "
            f"pyserial serial_for_url('{target.url}'); press Ctrl-C to stop it"
        )
        try:
            while target.qemu.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopping QEMU")


@app.command()
def bench(
    artifact_dir: Annotated[Path, typer.Argument(help="build directory from `ajpq compile`")],
    board: Annotated[str, typer.Option(help="board id")] = "qemu-mps2-an386",
    runs: Annotated[int, typer.Option(help="measured inferences")] = 10,
    warmup: Annotated[int, typer.Option(help="inferences before measuring")] = 2,
    port: Annotated[str | None, typer.Option(help="serial port (a running board)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Measure latency on the board over serial: per inference and per layer."""
    import numpy as np

    from ajpq.boards import Board

    artifact = _artifact(artifact_dir)
    target = Board(board, port=port)
    with target:
        if port is None or not port.startswith("socket://"):
            target.flash(artifact)
        else:
            target.artifact = artifact  # a QEMU board started by `ajpq flash`
        with target.open() as session:
            image = np.random.default_rng(0).integers(0, 256, artifact.input_shape, np.uint8)
            m = session.benchmark(runs=runs, warmup=warmup, x=image)
    result = {
        "board": board,
        "model_hash": m.info["model_hash"],
        "count": m.count,
        "unit": m.unit,
        "timer_source": m.timer_source,
        "latency_s": m.latency_s,
        "runs": runs,
        "min_count": m.min_count,
        "max_count": m.max_count,
        "per_layer": m.per_layer,
    }
    if as_json:
        print(json.dumps(result, indent=1))
        return
    latency = "" if m.latency_s is None else f", {m.latency_s * 1e3:.3f} ms"
    console.print(
        f"{board}: {m.count:,} {m.unit} per inference{latency} "
        f"(timer {m.timer_source}, {runs} runs after {warmup} warm-up)"
    )


@app.command()
def boards(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the boards in hw/boards with their memory or FPGA resources."""
    from ajpq.boards import list_boards

    specs = list_boards()
    if as_json:
        print(json.dumps([spec.to_dict() for spec in specs], indent=1))
        return
    table = Table(title="boards (hw/boards/*.toml)")
    for column in (
        "id",
        "kind",
        "part",
        "core",
        "clock",
        "memory / resources",
        "flash via",
        "timer",
    ):
        table.add_column(column)
    for spec in specs:
        if spec.kind == "mcu":
            memory = f"{spec.flash_bytes // 1024} KiB flash, {spec.ram_bytes // 1024} KiB RAM"
            methods, timer = ", ".join(spec.flash.get("methods", [])), spec.timer
        else:
            r = spec.resources
            memory = (
                f"{r['lut']:,} LUT, {r['ff']:,} FF, {r['bram36']} BRAM36, "
                f"{r['uram']} URAM, {r['dsp']:,} DSP"
            )
            methods, timer = "-", "-"
        table.add_row(
            spec.id,
            spec.kind,
            spec.part,
            spec.core,
            f"{spec.clock_hz / 1e6:g} MHz",
            memory,
            methods,
            timer,
        )
    console.print(table)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir")] = Path("demo-out"),
    fresh: Annotated[bool, typer.Option(help="ignore cached data and model")] = False,
    quick: Annotated[bool, typer.Option(help="tiny sizes, for a smoke test")] = False,
) -> None:
    """The main job: data, fp32 Skynet, AJPQ search with the board in the loop and baselines,
    QAT, MCU board (IoU from its outputs) and FINN estimates, a summary table and report."""
    from ajpq.demo import DemoConfig, run_demo

    config = DemoConfig.quick() if quick else DemoConfig()
    run_demo(config, out_dir, fresh=fresh, console=console)


def main() -> None:
    """Console-script entry: ajpq errors become one line on stderr and exit status 2; Ctrl-C
    exits 130, as a shell expects of an interrupted command."""
    try:
        status = app(standalone_mode=False)  # typer returns 130 for Ctrl-C, does not raise
    except AjpqError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # usage errors (typer's click, vendored or not): message, no trace
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    if isinstance(status, int) and status:  # 130: Ctrl-C; any other: a typer.Exit(code)
        if status == 130:
            Console(stderr=True).print("interrupted", highlight=False)
        sys.exit(status)


if __name__ == "__main__":
    main()
