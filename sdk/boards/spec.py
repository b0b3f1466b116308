"""BoardSpec: one board's description, loaded from hw/boards/<id>.toml."""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq.errors import AjpqError

BOARDS_DIR = Path(__file__).resolve().parents[2] / "hw" / "boards"


class InvalidBoard(AjpqError):
    """A board file is missing, malformed or incomplete."""


@dataclass(frozen=True)
class BoardSpec:
    id: str
    kind: str  # mcu | fpga
    part: str
    core: str
    clock_hz: int
    flash_bytes: int = 0
    ram_bytes: int = 0
    stack_bytes: int = 8192
    timer: str = "dwt"
    port: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


REQUIRED = ("id", "kind", "part", "core", "clock_hz")


def list_ids(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.toml"))


def get(board: "str | BoardSpec", boards_dir: Path = BOARDS_DIR) -> BoardSpec:
    """The board with this id (a BoardSpec passes through)."""
    if isinstance(board, BoardSpec):
        return board
    path = boards_dir / f"{board}.toml"
    if not path.exists():
        raise InvalidBoard(
            f"unknown board '{board}'; known boards: {', '.join(list_ids(boards_dir))}"
        )
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidBoard(f"{path} is not valid TOML ({exc}); fix the board file") from None
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise InvalidBoard(f"{path} lacks the field '{missing[0]}'; add it to the board file")
    known = {f for f in BoardSpec.__dataclass_fields__ if f != "extra"}
    values = {k: v for k, v in raw.items() if k in known}
    extra = {k: v for k, v in raw.items() if k not in known}
    try:
        return BoardSpec(**values, extra=extra)
    except TypeError as exc:
        raise InvalidBoard(f"{path}: {exc}; fix the board file") from None
