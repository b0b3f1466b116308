"""Board firmware builds: the generated model + portable runtime + the board's port."""

from pathlib import Path

import numpy as np

from ajpq.backends.mcu.host import FIRMWARE, include_dirs, runtime_sources
from ajpq.backends.mcu.report import symbol_bytes
from ajpq.backends.mcu.sources import input_sources
from ajpq.backends.mcu.toolchain import build_firmware, elf_sizes
from ajpq.boards import BoardSpec

SELFTEST_MAIN = FIRMWARE / "runtime" / "ajpq_selftest_main.c"
SERVER_MAIN = FIRMWARE / "runtime" / "ajpq_server_main.c"
PROTO_DIR = FIRMWARE / "proto"


def build_board_firmware(
    src: Path, board: BoardSpec, out_dir: Path, images: np.ndarray | None = None, name: str = "ajpq"
) -> tuple[Path, dict[str, int], int]:
    """Build ``<out_dir>/<name>.elf``; returns (elf, section sizes, model data bytes).

    ``images`` (uint8, N x C x H x W) are compiled in for the self-test main; without them
    the firmware runs no inference until a host talks to it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs_c = out_dir / f"{name}_inputs.c"
    inputs_c.write_text(
        input_sources(
            np.zeros((0, 1), np.uint8) if images is None else np.asarray(images, np.uint8)
        )
    )
    sources = [
        src / "ajpq_model.c",
        src / "ajpq_weights.c",
        *runtime_sources(),
        SELFTEST_MAIN,
        inputs_c,
    ]
    elf = build_firmware(
        sources,
        include_dirs(src),
        out_dir / f"{name}.elf",
        flash_size=board.flash_bytes,
        ram_size=board.ram_bytes,
        stack_size=board.stack_bytes,
        board=board.port or board.id,
    )
    return elf, elf_sizes(elf), sum(symbol_bytes(elf).values())


def build_server_firmware(
    src_dir: Path, board: BoardSpec, out_dir: Path, name: str = "ajpq_server"
) -> Path:
    """Build ``<out_dir>/<name>.elf``: the generated model in src_dir + runtime + server."""
    sources = [
        src_dir / "ajpq_model.c",
        src_dir / "ajpq_weights.c",
        *runtime_sources(),
        *sorted(PROTO_DIR.glob("*.c")),
        SERVER_MAIN,
    ]
    return build_firmware(
        sources,
        [*include_dirs(src_dir), PROTO_DIR],
        out_dir / f"{name}.elf",
        flash_size=board.flash_bytes,
        ram_size=board.ram_bytes,
        stack_size=board.stack_bytes,
        defines={"AJPQ_BOARD": f'"{board.id}"'},
        board=board.port or board.id,
    )
