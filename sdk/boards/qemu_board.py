"""QemuBoard: the ajpq server firmware on qemu-system-arm, reached over a TCP serial port.

QEMU is started by the one launcher (``ajpq.boards.qemu.Qemu``) with UART0 on
``tcp:127.0.0.1:<free port>,server=on,wait=on`` (the guest starts only once the host has
connected, so no byte is lost); pyserial connects to ``socket://127.0.0.1:<port>``, the same
code path as a real board's serial port. With ``icount=True`` the timer counts instructions
deterministically. The process is killed and reaped on exit, also after an exception.
"""

import subprocess
import time
from pathlib import Path
from types import TracebackType

import serial

from ajpq.boards.protocol import Link
from ajpq.boards.qemu import MACHINE, Qemu, free_port
from ajpq.boards.session import Session
from ajpq.errors import AjpqError

_START_TRIES = 3  # new ports tried when QEMU cannot bind the one picked


def tcp_serial(port: int) -> str:
    """The QEMU chardev of a TCP serial server on 127.0.0.1:port that waits for the host."""
    return f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"


class QemuBoard:
    """Context manager: QEMU running `elf`, with its UART0 at `.url` (socket://…)."""

    def __init__(
        self,
        elf: Path,
        machine: str = MACHINE,
        icount: bool = True,
        connect_timeout_s: float = 10.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.qemu = Qemu(elf, machine, icount)
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.url = ""
        self.port: serial.SerialBase | None = None

    @property
    def elf(self) -> Path:
        return self.qemu.elf

    @property
    def process(self) -> "subprocess.Popen[bytes] | None":
        """The running QEMU process (a subprocess.Popen), None when stopped."""
        return self.qemu.process

    def start(self) -> "QemuBoard":
        """Start QEMU and connect to its serial port; raises AjpqError if either fails."""
        try:
            for _ in range(_START_TRIES):
                if self._launch(free_port()):
                    return self
            raise AjpqError(
                f"qemu-system-arm could not serve {self.elf.name} on a TCP port after "
                f"{_START_TRIES} tries: {self.qemu.error_line()}"
            )
        except BaseException:
            self.stop()
            raise

    def _launch(self, port: int) -> bool:
        """Start QEMU on port and connect; False when QEMU exited (e.g. the port was taken)."""
        self.qemu.start(tcp_serial(port))
        url = f"socket://127.0.0.1:{port}"
        deadline = time.monotonic() + self.connect_timeout_s
        while time.monotonic() < deadline:
            if self.qemu.exited():
                return False
            try:
                self.port = serial.serial_for_url(url, timeout=0.05)
            except serial.SerialException:
                time.sleep(0.02)
                continue
            self.url = url
            return True
        raise AjpqError(
            f"qemu-system-arm did not listen on {url} within {self.connect_timeout_s:g} s; "
            "the machine may be overloaded: retry, or raise connect_timeout_s"
        )

    def link(self) -> Link:
        """The framed protocol link over this board's serial port."""
        if self.port is None:
            raise AjpqError("QemuBoard is not started; use it as `with QemuBoard(elf) as board`")
        return Link(self.port, timeout_s=self.timeout_s, url=self.url)

    def open_session(
        self,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...],
        run_timeout_s: float = 60.0,
    ) -> Session:
        """A Session over this board's serial port."""
        return Session(self.link(), input_shape, output_shape, run_timeout_s=run_timeout_s)

    def kill(self) -> None:
        """Kill QEMU now (the serial port stays open, and stops answering)."""
        self.qemu.kill()

    def stop(self) -> None:
        """Close the serial port, kill QEMU and reap it, remove its log."""
        if self.port is not None:
            self.port.close()
            self.port = None
        self.qemu.stop()

    def __enter__(self) -> "QemuBoard":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
