"""Run a firmware ELF on QEMU's mps2-an386 (Cortex-M4) until it exits through semihosting.

UART0 is connected to QEMU's stdio: bytes given as ``uart_input`` are fed to the guest's
receiver (QEMU holds them until the guest reads), and everything the guest transmits comes
back as ``uart_output``. The firmware ends with ``ajpq_port_exit(code)`` (semihosting
SYS_EXIT_EXTENDED), and QEMU exits with that code. With ``icount=True`` QEMU runs with
``-icount shift=0``: one guest instruction = 1 ns of virtual time, so SysTick readings are
deterministic instruction counts (40 instructions per tick at the board's 25 MHz).
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ajpq.backends.mcu.toolchain import find_tool
from ajpq.boards.qemu_board import qemu_command as board_qemu_command
from ajpq.errors import AjpqError

MACHINE = "mps2-an386"
_TAIL_BYTES = 200  # UART bytes quoted in a timeout error


@dataclass(frozen=True)
class QemuResult:
    """How a firmware run ended: the guest's exit status and what it wrote to UART0."""

    exit_code: int
    uart_output: bytes


def qemu_command(elf: Path, icount: bool = True) -> list[str]:
    """The qemu-system-arm command line that runs elf with UART0 on stdio."""
    find_tool("qemu-system-arm")  # ToolchainMissing naming the package when absent
    return board_qemu_command(elf, MACHINE, "stdio", "shift=0" if icount else None)


def run_elf(
    elf: Path, timeout_s: float = 60, icount: bool = True, uart_input: bytes = b""
) -> QemuResult:
    """Run elf until it exits; raises AjpqError if it has not exited within timeout_s."""
    if not Path(elf).is_file():
        raise AjpqError(f"firmware {elf} does not exist; build it first")
    process = subprocess.Popen(
        qemu_command(Path(elf), icount),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = process.communicate(uart_input, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, _ = process.communicate()
        tail = stdout[-_TAIL_BYTES:]
        raise AjpqError(
            f"firmware {Path(elf).name} did not exit within {timeout_s:g} s on QEMU "
            f"{MACHINE}; its last UART bytes were {tail!r}"
        ) from None
    message = stderr.decode(errors="replace").strip()
    if process.returncode != 0 and not stdout and message.startswith("qemu-system-arm:"):
        message = message.splitlines()[0].removeprefix("qemu-system-arm:").strip()
        raise AjpqError(f"qemu-system-arm could not run {Path(elf).name}: {message}")
    return QemuResult(exit_code=process.returncode, uart_output=stdout)
