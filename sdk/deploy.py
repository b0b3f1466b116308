"""``ajpq.compile``: hand a HwGraph to a backend for a board."""

from pathlib import Path
from typing import Any

from rich.console import Console

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
    from ajpq.backends import get

    return get(backend).compile(hw, board=board, out_dir=out_dir, console=console, **options)
