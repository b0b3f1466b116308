"""The one QEMU launcher: qemu-system-arm running one firmware ELF with UART0 on a chardev.

Every QEMU run in ajpq starts here, with one command line: ``-M <machine> -nographic
-monitor none -semihosting-config enable=on,target=native -serial <chardev> -kernel elf``,
plus ``-icount shift=0,sleep=off`` (one guest instruction = 1 ns of virtual time, so SysTick
readings are deterministic instruction counts: 40 per tick at the board's 25 MHz).
Without ``-monitor none`` stdin never reaches the UART; without semihosting the firmware's
exit call hangs QEMU.

Two serial backends, two users:

- ``tcp:127.0.0.1:<port>,server=on,wait=on``: ``QemuBoard`` (a Board's emulator), reached
  over pyserial like a real board's serial port;
- ``stdio``: ``run_to_exit`` for firmware that prints and ends with ``ajpq_port_exit(code)``
  (semihosting SYS_EXIT_EXTENDED, QEMU exits with that code): the port and kernel tests.
  ``uart_input`` is fed to the guest's receiver (QEMU holds it until the guest reads).

The process's stdout and stderr go to files in a temporary directory; ``stop`` kills the
process, reaps it and removes the files, also after an exception.
"""

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ajpq.errors import AjpqError, ToolchainMissing

MACHINE = "mps2-an386"
ICOUNT = "shift=0,sleep=off"  # deterministic instruction counts, no waiting on the host clock
_TAIL_BYTES = 200  # UART bytes quoted in a timeout error
_REAP_TIMEOUT_S = 10.0


def qemu_binary() -> str:
    """The path of qemu-system-arm; ToolchainMissing naming the Debian package if absent."""
    path = shutil.which("qemu-system-arm")
    if path is None:
        raise ToolchainMissing(
            "qemu-system-arm is missing: install the Debian package "
            "qemu-system-arm (apt-get install qemu-system-arm), or run make setup"
        )
    return path


def qemu_command(elf: Path, machine: str, serial: str, icount: bool = True) -> list[str]:
    """qemu-system-arm running ``elf`` with UART0 on ``serial`` (a QEMU chardev)."""
    command = [qemu_binary(), "-M", machine, "-nographic", "-monitor", "none"]
    command += ["-semihosting-config", "enable=on,target=native", "-serial", serial]
    if icount:
        command += ["-icount", ICOUNT]
    return [*command, "-kernel", str(elf)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class QemuResult:
    """How a run-to-exit firmware ended: the guest's exit status and its UART output."""

    exit_code: int
    uart_output: bytes


class Qemu:
    """qemu-system-arm running ``elf``; ``start(serial)`` launches it, ``stop()`` ends it."""

    def __init__(self, elf: Path, machine: str = MACHINE, icount: bool = True) -> None:
        self.elf = Path(elf)
        self.machine = machine
        self.icount = icount
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self, serial: str, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        """Launch QEMU with UART0 on ``serial``; stops a run this object started before."""
        command = qemu_command(self.elf, self.machine, serial, self.icount)
        if not self.elf.is_file():
            raise AjpqError(f"firmware {self.elf} does not exist; build it first")
        self.stop()
        self._log_dir = tempfile.TemporaryDirectory(prefix="ajpq-qemu-")
        with open(self._log("stdout"), "wb") as out, open(self._log("stderr"), "wb") as err:
            self.process = subprocess.Popen(command, stdin=stdin, stdout=out, stderr=err)
        return self.process

    def _log(self, stream: str) -> Path:
        assert self._log_dir is not None
        return Path(self._log_dir.name) / f"{stream}.log"

    def _read(self, stream: str) -> bytes:
        if self._log_dir is None or not self._log(stream).exists():
            return b""
        return self._log(stream).read_bytes()

    def output(self) -> bytes:
        """What QEMU wrote to stdout (the UART output when serial is stdio)."""
        return self._read("stdout")

    def errors(self) -> str:
        """What QEMU wrote to stderr."""
        return self._read("stderr").decode(errors="replace").strip()

    def error_line(self) -> str:
        """QEMU's own message on stderr (its first "qemu…:" line, else the last line),
        without the program name."""
        lines = self.errors().splitlines()
        ours = [line for line in lines if line.startswith(("qemu-system-arm:", "qemu:"))]
        line = (ours or lines or ["no message"])[0 if ours else -1]
        return line.split(":", 1)[1].strip() if ours else line

    def exited(self) -> bool:
        """True when QEMU was started and has ended."""
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """Kill QEMU now and reap it (its logs stay readable until stop)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=_REAP_TIMEOUT_S)

    def stop(self) -> None:
        """Kill and reap QEMU and remove its logs."""
        self.kill()
        self.process = None
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> "Qemu":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_to_exit(
    elf: Path,
    timeout_s: float = 60,
    icount: bool = True,
    uart_input: bytes = b"",
    machine: str = MACHINE,
) -> QemuResult:
    """Run ``elf`` with UART0 on stdio until it exits; AjpqError if not within timeout_s."""
    with Qemu(elf, machine, icount) as qemu:
        process = qemu.start("stdio", stdin=subprocess.PIPE)
        try:
            process.communicate(uart_input, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            qemu.kill()
            tail = qemu.output()[-_TAIL_BYTES:]
            raise AjpqError(
                f"firmware {qemu.elf.name} did not exit within {timeout_s:g} s on QEMU "
                f"{machine}; its last UART bytes were {tail!r}"
            ) from None
        output, code = qemu.output(), process.returncode
        if code != 0 and not output and qemu.errors():
            raise AjpqError(
                f"qemu-system-arm could not run {qemu.elf.name} on {machine} (exit {code}): "
                f"{qemu.error_line()}; check the machine and that the ELF is built for its port"
            )
        return QemuResult(exit_code=code, uart_output=output)
