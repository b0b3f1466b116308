"""The board firmware: the generated model + portable runtime + serial protocol server +
the board's port. Every model runs on a board through it (``ajpq.boards.Board``)."""

from pathlib import Path

from ajpq.backends.mcu.host import FIRMWARE, include_dirs, runtime_sources
from ajpq.backends.mcu.toolchain import build_firmware
from ajpq.boards import BoardSpec

SERVER_MAIN = FIRMWARE / "runtime" / "ajpq_server_main.c"
VERIFY = FIRMWARE / "runtime" / "ajpq_verify.c"
PROTO_DIR = FIRMWARE / "proto"


def build_server_firmware(
    src_dir: Path, board: BoardSpec, out_dir: Path, name: str = "ajpq_server"
) -> Path:
    """Build ``<out_dir>/<name>.elf``: the generated model in src_dir + runtime + server."""
    sources = [
        src_dir / "ajpq_model.c",
        src_dir / "ajpq_weights.c",
        *runtime_sources(),
        *sorted(PROTO_DIR.glob("*.c")),
        VERIFY,
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
