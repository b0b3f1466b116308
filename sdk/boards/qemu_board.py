"""QemuBoard: the ajpq server firmware on qemu-system-arm, reached over a TCP serial port.

QEMU runs with ``-serial tcp:127.0.0.1:<free port>,server=on,wait=on`` (the guest starts
only once the host has connected, so no byte is lost) and ``-monitor none``; pyserial
connects to ``socket://127.0.0.1:<port>``, the same code path as a real board's serial
port. With ``icount=True`` (``-icount shift=0``) the timer counts instructions
deterministically. The process is killed and reaped on exit, also after an exception.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import serial

from ajpq.boards.protocol import Link
from ajpq.boards.session import Session
from ajpq.errors import AjpqError, ToolchainMissing

_START_TRIES = 3  # new ports tried when QEMU cannot bind the one picked


def qemu_binary() -> str:
    path = shutil.which("qemu-system-arm")
    if path is None:
        raise ToolchainMissing(
            "qemu-system-arm is missing: install the Debian package "
            "qemu-system-arm (apt-get install qemu-system-arm), or run make setup"
        )
    return path


def qemu_command(elf: Path, machine: str, serial_port: str, icount: str | None) -> list[str]:
    """qemu-system-arm running ``elf`` with UART0 on ``serial_port`` (a QEMU chardev), no
    monitor, semihosting for the exit call, and ``-icount <icount>`` when given."""
    command = [
        qemu_binary(),
        "-M",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-serial",
        serial_port,
    ]
    if icount:
        command += ["-icount", icount]
    return [*command, "-kernel", str(elf)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class QemuBoard:
    """Context manager: QEMU running `elf`, with its UART0 at `.url` (socket://…)."""

    def __init__(
        self,
        elf: Path,
        machine: str = "mps2-an386",
        icount: bool = True,
        connect_timeout_s: float = 10.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.elf = Path(elf)
        self.machine = machine
        self.icount = icount
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.port: serial.SerialBase | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    def command(self, port: int) -> list[str]:
        serial_port = f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"
        icount = "shift=0,sleep=off" if self.icount else None
        return qemu_command(self.elf, self.machine, serial_port, icount)

    def start(self) -> "QemuBoard":
        """Start QEMU and connect to its serial port; raises AjpqError if either fails."""
        if not self.elf.is_file():
            raise AjpqError(f"firmware {self.elf} does not exist; build it first")
        self._log_dir = tempfile.TemporaryDirectory(prefix="ajpq-qemu-")
        try:
            for _ in range(_START_TRIES):
                port = free_port()
                if self._launch(port):
                    return self
            raise AjpqError(
                f"qemu-system-arm could not serve {self.elf.name} on a TCP port after "
                f"{_START_TRIES} tries: {self._stderr()}"
            )
        except BaseException:
            self.stop()
            raise

    def _launch(self, port: int) -> bool:
        """Start QEMU on port and connect; False when QEMU exited (e.g. the port was taken)."""
        assert self._log_dir is not None
        log = open(Path(self._log_dir.name) / "stderr.txt", "wb")  # noqa: SIM115
        with log:
            self.process = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        url = f"socket://127.0.0.1:{port}"
        deadline = time.monotonic() + self.connect_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            try:
                self.port = serial.serial_for_url(url, timeout=0.05)
            except serial.SerialException:
                time.sleep(0.02)
                continue
            self.url = url
            return True
        raise AjpqError(
            f"qemu-system-arm did not listen on {url} within {self.connect_timeout_s:g} s"
        )

    def _stderr(self) -> str:
        if self._log_dir is None:
            return ""
        path = Path(self._log_dir.name) / "stderr.txt"
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        return text.splitlines()[-1] if text else "no message"

    def open_session(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> Session:
        """A Session over this board's serial port."""
        if self.port is None:
            raise AjpqError("QemuBoard is not started; use it as `with QemuBoard(elf) as board`")
        link = Link(self.port, timeout_s=self.timeout_s, url=self.url)
        return Session(link, input_shape, output_shape)

    def kill(self) -> None:
        """Kill QEMU now (the serial port stays open, and stops answering)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Close the serial port, kill QEMU and reap it, remove its log."""
        if self.port is not None:
            self.port.close()
            self.port = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def __enter__(self) -> "QemuBoard":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
