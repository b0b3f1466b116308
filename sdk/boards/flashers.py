"""Programming real boards: pyOCD's Python API or openocd, as the board file configures.

No probe is attached on CI machines, so these paths are exercised for their errors there:
a missing tool, no probe, a probe that fails to program or verify. QEMU boards are not
flashed here: ``ajpq.boards.Board`` starts QEMU with the firmware instead.
"""

import shutil
import subprocess
from pathlib import Path

from ajpq.boards.spec import BoardSpec
from ajpq.errors import AjpqError, ToolchainMissing


class FlashError(AjpqError):
    """Programming a board failed."""


def flash_elf(
    board: BoardSpec, elf: Path, probe: str | None = None, method: str | None = None
) -> str:
    """Program and verify ``elf`` on ``board``; returns the method used."""
    methods = board.flash.get("methods", [])
    chosen = method or next((m for m in methods if m != "qemu"), None)
    if chosen is None or chosen not in methods:
        raise FlashError(
            f"{board.id} cannot be flashed with {chosen or 'a probe'}; its board "
            f"file lists {', '.join(methods) or 'no methods'}"
        )
    if chosen == "pyocd":
        flash_with_pyocd(board, elf, probe)
    elif chosen == "openocd":
        flash_with_openocd(board, elf)
    else:
        raise FlashError(f"{board.id} is flashed by starting QEMU; use ajpq.boards.Board")
    return chosen


def flash_with_pyocd(board: BoardSpec, elf: Path, probe: str | None) -> None:
    try:
        from pyocd.core.helpers import ConnectHelper
        from pyocd.flash.file_programmer import FileProgrammer
    except ImportError:
        raise ToolchainMissing(
            "pyOCD is not installed: pip install pyocd (or the extra "
            "ajpq[probe]), or flash with openocd (--method openocd)"
        ) from None
    target = board.flash.get("pyocd_target")
    session = ConnectHelper.session_with_chosen_probe(
        unique_id=probe, target_override=target, blocking=False, auto_open=True
    )
    if session is None:
        hint = f"probe {probe} not found" if probe else "no probe found"
        raise FlashError(f"{hint} for {board.id}; connect it or pass --probe UID")
    try:
        with session:
            FileProgrammer(session, chip_erase="auto", trust_crc=False).program(str(elf))
            session.board.target.reset()
    except Exception as exc:  # pyOCD raises many transport/target error types
        raise FlashError(
            f"pyOCD could not program {board.id} ({type(exc).__name__}: {exc}); "
            "check the cable and power, then retry"
        ) from None


def flash_with_openocd(board: BoardSpec, elf: Path) -> None:
    openocd = shutil.which("openocd")
    if openocd is None:
        raise ToolchainMissing(
            "openocd is missing: install the Debian package openocd "
            "(apt-get install openocd), or flash with pyocd"
        )
    config = board.flash.get("openocd_config")
    if not config:
        raise FlashError(f"{board.id}'s board file has no flash.openocd_config; add one")
    command = [openocd, "-f", config, "-c", f"program {elf} verify reset exit"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FlashError(f"openocd could not program {board.id}: {last}")
