"""BoardSpec: one board's description, loaded from hw/boards/<id>.toml.

Fields follow the spirit of PlatformIO's board JSON. Every board: id, name, kind ("mcu" or
"fpga"), part, core, clock_hz. An MCU board adds flash/RAM bytes, its firmware port, its
timer source ("dwt" or "systick-icount"), how it is flashed ([flash] methods and their
settings: pyocd_target, openocd_config) and its serial link ([serial] baud, usb_vid_pid).
An FPGA board adds [resources] lut, ff, bram36, uram, dsp (for FINN folding).
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq import resources
from ajpq.errors import AjpqError, one_line

BOARDS_DIR = resources.BOARDS_DIR
KINDS = ("mcu", "fpga")
TIMERS = ("dwt", "systick-icount")
FLASH_METHODS = ("qemu", "pyocd", "openocd")
COMMON = {"id": str, "name": str, "kind": str, "part": str, "core": str, "clock_hz": int}
MCU = {"flash_bytes": int, "ram_bytes": int, "stack_bytes": int, "timer": str, "port": str}
RESOURCES = ("lut", "ff", "bram36", "uram", "dsp")
TABLES = {"flash": dict, "serial": dict, "resources": dict}  # each optional, but a table
TYPE_NAMES = {str: "str", int: "int >= 0", dict: "table"}


class InvalidBoard(AjpqError):
    """A board file is missing, malformed or incomplete."""


@dataclass(frozen=True)
class BoardSpec:
    id: str
    name: str
    kind: str  # mcu | fpga
    part: str
    core: str
    clock_hz: int
    flash_bytes: int = 0
    ram_bytes: int = 0
    stack_bytes: int = 8192
    timer: str = "dwt"
    port: str = ""
    flash: dict[str, Any] = field(default_factory=dict)
    serial: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. [qemu], [finn]

    @property
    def is_qemu(self) -> bool:
        return "qemu" in self.flash.get("methods", [])

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def list_ids(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.toml"))


def list_boards(boards_dir: Path = BOARDS_DIR) -> list[BoardSpec]:
    return [get(board_id, boards_dir) for board_id in list_ids(boards_dir)]


def get(board: "str | BoardSpec", boards_dir: Path = BOARDS_DIR) -> BoardSpec:
    """The board with this id (a BoardSpec passes through)."""
    if isinstance(board, BoardSpec):
        return board
    path = boards_dir / f"{board}.toml"
    if not path.exists():
        known = ", ".join(list_ids(boards_dir))
        raise InvalidBoard(f"unknown board '{board}'; known boards: {known}")
    return load(path)


def load(path: Path) -> BoardSpec:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidBoard(f"{path} cannot be read ({reason}); give a board file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else one_line(str(exc))
        raise InvalidBoard(f"{path} is not valid TOML ({reason}); fix the board file") from None
    _require(path, raw, COMMON)
    if raw["id"] != path.stem:
        raise InvalidBoard(
            f"{path}: field 'id' is {raw['id']!r} but the file is named "
            f"'{path.stem}.toml'; make them equal"
        )
    _one_of(path, "kind", raw["kind"], KINDS)
    _require(path, raw, TABLES, optional=True)
    if raw["kind"] == "mcu":
        _require(path, raw, MCU)
        _one_of(path, "timer", raw["timer"], TIMERS)
        methods = raw.get("flash", {}).get("methods")
        if not methods or not isinstance(methods, list):
            raise InvalidBoard(
                f"{path} lacks the field 'flash.methods'; list how the board "
                f"is flashed ({', '.join(FLASH_METHODS)})"
            )
        for method in methods:
            _one_of(path, "flash.methods", method, FLASH_METHODS)
    else:
        resources = raw.get("resources")
        if not isinstance(resources, dict):
            raise InvalidBoard(f"{path} lacks the table [resources]; give {', '.join(RESOURCES)}")
        _require(path, resources, {key: int for key in RESOURCES}, prefix="resources.")
    known = set(BoardSpec.__dataclass_fields__) - {"extra"}
    values = {k: v for k, v in raw.items() if k in known}
    return BoardSpec(**values, extra={k: v for k, v in raw.items() if k not in known})


def _require(
    path: Path, raw: dict, fields: dict[str, type], prefix: str = "", optional: bool = False
) -> None:
    for key, kind in fields.items():
        if key not in raw:
            if optional:
                continue
            raise InvalidBoard(f"{path} lacks the field '{prefix}{key}'; add it to the board file")
        value = raw[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise InvalidBoard(
                f"{path}: field '{prefix}{key}' must be a {TYPE_NAMES[kind]}, "
                f"not {one_line(repr(value), 60)}; fix the board file"
            )


def _one_of(path: Path, key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidBoard(
            f"{path}: field '{key}' is {one_line(repr(value), 60)}; use one of {', '.join(allowed)}"
        )
