"""The CLI's user-model side: the shared options of ``ajpq train|quantize|search``, the model
and data each command works on (Skynet + synthetic aerial data, or ``--model`` + ``--data``),
``ajpq train --model``, the search's summary line, and ``ajpq data digits``."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from torch import nn

from ajpq.cli_model import Standardized, UserArgs, parse_size, user_run
from ajpq.data.samples import Normalization, Samples, calibration_batch
from ajpq.errors import AjpqError
from ajpq.tasks import Task

ModelOption = Annotated[
    str | None, typer.Option("--model", help="your model: pkg.module:factory (an nn.Module)")
]
WeightsOption = Annotated[Path | None, typer.Option(help="--model's state_dict file (.pt)")]
DataOption = Annotated[
    Path | None, typer.Option(help="--model's data: .npz of images + labels (or boxes)")
]
TaskOption = Annotated[str | None, typer.Option(help="--model's task: classification|detection")]
InputSizeOption = Annotated[
    str | None, typer.Option(help="--model's input HxW (default: the data's image size)")
]
NormalizeOption = Annotated[
    str | None,
    typer.Option(help="--model was trained on (pixels/255-mean)/std: MEAN,STD or M1,M2/S1,S2"),
]
ValFractionOption = Annotated[
    float | None,
    typer.Option(help="share of --data held out for validation [default: 0.2, or the train's]"),
]

BEST_GRAPH = "best.hwg"  # the search's best model, lowered: what `ajpq compile` reads

data_app = typer.Typer(no_args_is_help=True, help="Write datasets as .npz files for --data.")


@dataclass(frozen=True)
class Job:
    """What a command works on; task and normalization None for Skynet (its defaults)."""

    model: nn.Module
    train: Samples | None
    val: Samples | None
    input_size: tuple[int, int] | None
    task: Task | None = None
    normalization: Normalization | None = None
    calibration: Any = None  # a batch of real images for the activation scales, or None


def model_and_data(
    user: UserArgs,
    checkpoint: Path | None,
    seed: int,
    aerial: dict[str, int] | None,
    need_data: bool,
) -> Job:
    """--model with its weights and --data; else the Skynet checkpoint and, when ``aerial``
    gives the counts, synthetic aerial data at its input size."""
    if user.model is not None:
        run = user_run(user, checkpoint, seed, need_weights=True, need_data=need_data)
        size = run.spec.input_size
        if size is None:
            raise AjpqError(f"--model {user.model} needs --input-size HxW (or --data)")
        return Job(
            run.model, run.train, run.val, size, run.task, run.spec.normalization,
            calibration_batch(run.train),
        )  # fmt: skip
    import ajpq
    from ajpq.models.checkpoint import load_model

    user.check_without_model()
    if checkpoint is None:
        raise AjpqError(
            "give a checkpoint from `ajpq train` (or --model pkg.module:factory with its weights)"
        )
    model, _ = load_model(checkpoint)
    train = val = None
    if aerial is not None:
        train, val = ajpq.data.aerial(**aerial, input_size=model.input_size, seed=seed)
    return Job(model, train, val, model.input_size)


def train_user(user: UserArgs, output: Path, epochs: int, seed: int, console: Console) -> None:
    """``ajpq train --model``: train on --data (standardized as --normalize says) and save the
    model's own state_dict with what rebuilds it."""
    import ajpq
    from ajpq.models.checkpoint import save_user_model

    run = user_run(user, None, seed, need_weights=False, need_data=True)
    assert run.train is not None and run.val is not None
    normalization = run.spec.normalization
    net = run.model if normalization is None else Standardized(run.model, normalization)
    result = ajpq.train(net, run.train, run.val, epochs=epochs, seed=seed, task=run.task)
    config = run.spec.to_config()
    save_user_model(run.model, output, config, metric=result.metric, metric_name=result.metric_name)
    console.print(
        f"val {result.metric_name} {result.metric:.4f} after {result.epochs_run} epochs "
        f"({result.seconds:.0f} s); saved {output} (use it with --model {user.model})"
    )


def search_summary(result: Any, out_dir: Path) -> str:
    """One line: the best candidate with the task's metric, its size, latency and files."""
    best = result.best
    return (
        f"{len(result.candidates)} candidates; best {result.metric} {best.accuracy:.4f} at "
        f"{best.weight_bytes:,} weight bytes, {best.bops:,} BOPs, estimated "
        f"{best.estimated_latency * 1e3:.2f} ms"
        + ("" if best.estimated_fps is None else f" ({best.estimated_fps:,.0f} fps)")
        + (
            f", measured {best.measured_latency * 1e3:.2f} ms at the board clock"
            if best.measured_latency is not None
            else ""
        )
        + f"; policy and model in {out_dir}, HwGraph {out_dir / BEST_GRAPH}"
    )


@data_app.command("digits")
def digits_command(
    output: Annotated[Path, typer.Option("-o", "--output", help=".npz file to write")],
    size: Annotated[str, typer.Option(help="image size HxW (upsampled from 8x8)")] = "32x32",
) -> None:
    """scikit-learn's handwritten digits (1,797 real images, 10 classes) as images + labels."""
    from ajpq.data import ArraySamples
    from ajpq.data.digits import digits_arrays

    images, labels = digits_arrays(parse_size(size, "--size"))
    written = ArraySamples(images, labels).save(output)
    height, width = images.shape[2:]
    print(f"saved {written}: {len(labels):,} images 1x{height}x{width} uint8, labels 0..9")
