"""Save and load trained models with the arguments that rebuild them (no pickled classes).

Two kinds share one format: ajpq's own Skynet (``arch: "skynet"``, rebuilt from its
constructor arguments) and a user's model (``arch: "user"``), stored as its state_dict plus
the ``pkg.module:factory`` that builds it, its task, input size and input normalization; the
CLI's ``--model`` rebuilds it (see ``ajpq.cli_model``).
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ajpq.errors import AjpqError
from ajpq.models.skynet import Skynet, skynet

FORMAT = "ajpq-model-1"
USER_ARCH = "user"


def save_model(model: nn.Module, path: str | Path, **extra: Any) -> None:
    """Save a Skynet's constructor arguments and weights (``extra`` is stored alongside)."""
    if not isinstance(model, Skynet):
        raise AjpqError(
            f"save_model stores Skynet models; save a {type(model).__name__} with "
            "save_user_model(model, path, config) or torch.save(model.state_dict(), path)"
        )
    config = {
        "arch": "skynet",
        "width_mult": model.width_mult,
        "input_size": list(model.input_size),
        "num_anchors": model.num_anchors,
    }
    torch.save(
        {"format": FORMAT, "config": config, "state_dict": model.state_dict(), "extra": extra},
        Path(path),
    )


def save_user_model(
    model: nn.Module, path: str | Path, config: dict[str, Any], **extra: Any
) -> None:
    """Save a user's model: its state_dict and ``config`` (plain values: the factory spec,
    task, input size, normalization) that rebuild it; ``extra`` is stored alongside."""
    torch.save(
        {
            "format": FORMAT,
            "config": {**config, "arch": USER_ARCH},
            "state_dict": model.state_dict(),
            "extra": extra,
        },
        Path(path),
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict (format, config, state_dict, extra) of either kind."""
    try:
        raw = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(f"format {found!r}")
        if not isinstance(raw.get("config"), dict) or "state_dict" not in raw:
            raise ValueError("no config or state_dict")
    except FileNotFoundError:
        raise AjpqError(f"{path} does not exist; train a model with `ajpq train`") from None
    except Exception as exc:  # torch.load raises many types on a bad file
        raise AjpqError(
            f"{path} is not an ajpq model checkpoint ({type(exc).__name__}); "
            "re-create it with `ajpq train`"
        ) from None
    return raw


def is_user_checkpoint(raw: dict[str, Any]) -> bool:
    return raw["config"].get("arch") == USER_ARCH


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a Skynet saved by :func:`save_model`; returns (model in eval mode, extra)."""
    raw = read_checkpoint(path)
    config = raw["config"]
    if is_user_checkpoint(raw):
        factory = config.get("factory", "pkg.module:factory")
        raise AjpqError(
            f"{path} holds a user model's weights; pass --model {factory} to rebuild it "
            "(in Python: build the model and load_state_dict(read_checkpoint(path)"
            "['state_dict']))"
        )
    try:
        model = skynet(config["width_mult"], tuple(config["input_size"]), config["num_anchors"])
        model.load_state_dict(raw["state_dict"])
    except Exception as exc:  # a config or state_dict that does not rebuild the model
        raise AjpqError(
            f"{path} is not an ajpq model checkpoint ({type(exc).__name__}); "
            "re-create it with `ajpq train`"
        ) from None
    return model.eval(), dict(raw.get("extra", {}))
