"""Save and load trained models with the arguments that rebuild them (no pickled classes)."""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ajpq.errors import AjpqError
from ajpq.models.skynet import Skynet, skynet

FORMAT = "ajpq-model-1"


def save_model(model: nn.Module, path: str | Path, **extra: Any) -> None:
    """Save a Skynet's constructor arguments and weights (``extra`` is stored alongside)."""
    if not isinstance(model, Skynet):
        raise AjpqError(
            f"save_model stores Skynet models; save a {type(model).__name__} with "
            "torch.save(model.state_dict(), path)"
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


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model saved by :func:`save_model`; returns (model in eval mode, extra)."""
    try:
        raw = torch.load(Path(path), map_location="cpu", weights_only=True)
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}")
        config = raw["config"]
        model = skynet(config["width_mult"], tuple(config["input_size"]), config["num_anchors"])
        model.load_state_dict(raw["state_dict"])
    except FileNotFoundError:
        raise AjpqError(f"{path} does not exist; train a model with `ajpq train`") from None
    except Exception as exc:  # torch.load raises many types on a bad file
        raise AjpqError(
            f"{path} is not an ajpq model checkpoint ({type(exc).__name__}); "
            "re-create it with `ajpq train`"
        ) from None
    return model.eval(), dict(raw.get("extra", {}))
