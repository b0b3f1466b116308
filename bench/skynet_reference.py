"""The benches' fp32 Skynet reference: trained once until its val mean IoU plateaus, cached
outside the repository (``~/.cache/ajpq/bench``), shared by ``search_skynet.py`` and
``train_skynet.py``.

    python bench/skynet_reference.py       # width 0.5, 160x320, 3,000 train / 1,000 val images

Prints the training curve (loss and val mean IoU per epoch) as JSON. The cache key holds every
setting, so a different recipe trains a different file; delete the file to retrain.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

import ajpq
from ajpq.data import Dataset, aerial
from ajpq.models.checkpoint import load_model, save_model

CACHE = Path.home() / ".cache/ajpq/bench"
CONVERGED_QAT_LR = 1e-3  # the reference's low-bit fine-tune rate (docs/quantization.md)


@dataclass(frozen=True)
class Recipe:
    """How the reference is trained (AdamW, per-step cosine LR, flips; see ajpq.train)."""

    width_mult: float = 0.5
    input_size: tuple[int, int] = (160, 320)
    n_train: int = 3000
    n_val: int = 1000
    epochs: int = 12
    lr: float = 2e-3
    batch_size: int = 32
    seed: int = 0

    def key(self) -> str:
        h, w = self.input_size
        return (
            f"w{self.width_mult}-{h}x{w}-n{self.n_train}-{self.n_val}-e{self.epochs}"
            f"-lr{self.lr}-b{self.batch_size}-s{self.seed}"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The recipe's options (the defaults are Recipe's)."""
    default = Recipe()
    parser.add_argument("--width-mult", type=float, default=default.width_mult)
    parser.add_argument("--input-size", type=int, nargs=2, default=list(default.input_size))
    parser.add_argument("--n-train", type=int, default=default.n_train)
    parser.add_argument("--n-val", type=int, default=default.n_val)
    parser.add_argument("--epochs", type=int, default=default.epochs, help="fp32 training epochs")
    parser.add_argument("--lr", type=float, default=default.lr, help="fp32 learning rate")
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--cache", type=Path, default=CACHE)


def recipe_of(arguments: argparse.Namespace) -> Recipe:
    h, w = arguments.input_size
    return Recipe(
        arguments.width_mult, (h, w), arguments.n_train, arguments.n_val, arguments.epochs,
        arguments.lr, seed=arguments.seed,
    )  # fmt: skip


def reference_data(recipe: Recipe, cache: Path) -> tuple[Dataset, Dataset]:
    """The synthetic aerial train and val sets (rendered once, then read from the cache)."""
    h, w = recipe.input_size
    paths = [
        cache / f"aerial-{h}x{w}-{split}-{n}-s{recipe.seed}.npz"
        for split, n in (("train", recipe.n_train), ("val", recipe.n_val))
    ]
    if all(p.exists() for p in paths):
        return Dataset.load(paths[0]), Dataset.load(paths[1])
    train, val = aerial(recipe.n_train, recipe.n_val, recipe.input_size, recipe.seed)
    cache.mkdir(parents=True, exist_ok=True)
    train.save(paths[0])
    val.save(paths[1])
    return train, val


def reference_path(recipe: Recipe, cache: Path) -> Path:
    """Where ``reference_model`` keeps the trained model of ``recipe``."""
    return cache / f"skynet-fp32-{recipe.key()}.pt"


def reference_model(
    recipe: Recipe, data: tuple[Dataset, Dataset], cache: Path
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained fp32 model and its record (val mean IoU, curve, seconds), cached."""
    path = reference_path(recipe, cache)
    if path.exists():
        model, extra = load_model(path)
        return model.eval(), extra
    torch.manual_seed(recipe.seed)
    model = ajpq.models.skynet(recipe.width_mult, recipe.input_size)
    model = model.to(memory_format=torch.channels_last)  # ~2x faster depthwise convs on CPU
    result = ajpq.train(
        model, *data, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
        seed=recipe.seed, progress=True,
    )  # fmt: skip
    extra = {
        "mean_iou": result.metric,
        "val_curve": [round(m, 4) for m in result.val_metrics],
        "loss_curve": [round(loss, 4) for loss in result.losses],
        "train_seconds": round(result.seconds, 1),
        "epochs": result.epochs_run,
        "recipe": asdict(recipe),
    }
    cache.mkdir(parents=True, exist_ok=True)
    save_model(model, path, **extra)
    return model.eval(), extra


def plateau(curve: list[float], last: int = 3, within: float = 0.01) -> bool:
    """Whether the val metric's last ``last`` epochs lie within ``within`` of their best."""
    tail = curve[-last:]
    return len(curve) >= last and max(tail) - min(tail) <= within


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    arguments = parser.parse_args(argv)
    recipe = recipe_of(arguments)
    cache = arguments.cache.expanduser()
    _, extra = reference_model(recipe, reference_data(recipe, cache), cache)
    return {**extra, "plateaued": plateau(extra["val_curve"])}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
