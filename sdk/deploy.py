"""``ajpq.compile``: hand a HwGraph to a backend for a board; ``load_artifact`` reads one back."""

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ajpq.backends import get
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph


def compile(
    hw: HwGraph,
    backend: str = "mcu",
    board: str = "qemu-mps2-an386",
    out_dir: "str | Path" = "build/ajpq",
    console: Console | None = None,
    **options: Any,
) -> Any:
    """Compile ``hw`` with ``backend`` for ``board`` into ``out_dir``; returns its Artifact."""
    return get(backend).compile(hw, board, out_dir, console=console, **options)


def load_artifact(out_dir: "str | Path") -> Any:
    """The Artifact ``compile`` left in ``out_dir`` (its artifact.json names the backend)."""
    path = Path(out_dir) / "artifact.json"
    try:
        backend = json.loads(path.read_text())["backend"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AjpqError(
            f"{out_dir} holds no ajpq artifact ({type(exc).__name__}); build one with "
            "`ajpq compile`"
        ) from None
    return get(backend).load_artifact(Path(out_dir))
