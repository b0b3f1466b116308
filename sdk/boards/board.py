"""Board: a board you flash an artifact to and open sessions on.

    board = ajpq.boards.Board("qemu-mps2-an386")
    board.flash(artifact)                # QEMU: starts the emulator with the firmware
    with board.open() as session:        # real boards: programs it through pyOCD / openocd
        y = session.infer(x)
        m = session.benchmark(runs=10, warmup=2)
    board.close()                        # or use `with Board(...) as board`

QEMU boards are reached over a localhost TCP serial port, real boards over their serial
device (``port=`` or found by the USB VID:PID of the board file); both through pyserial.
"""

from types import TracebackType
from typing import Any

from ajpq.boards.flashers import flash_elf
from ajpq.boards.protocol import Link
from ajpq.boards.qemu import MACHINE
from ajpq.boards.qemu_board import QemuBoard
from ajpq.boards.session import Session
from ajpq.boards.spec import BoardSpec, get
from ajpq.errors import AjpqError


class BoardError(AjpqError):
    """A board cannot take this artifact or cannot be reached."""


class Board:
    def __init__(
        self, board: "str | BoardSpec", port: str | None = None, probe: str | None = None
    ) -> None:
        self.spec = get(board)
        if self.spec.kind != "mcu":
            raise BoardError(
                f"{self.spec.id} is an {self.spec.kind} board; flash FPGA builds "
                "with Vivado/FINN on a host that has them"
            )
        self.port, self.probe = port, probe
        self.artifact: Any = None
        self.qemu: QemuBoard | None = None

    def flash(self, artifact: Any) -> None:
        """Program ``artifact``'s firmware (refuses one built for another board)."""
        if artifact.board != self.spec.id:
            raise BoardError(
                f"the artifact was built for {artifact.board}, not {self.spec.id}; "
                f"compile it with --board {self.spec.id}"
            )
        if getattr(artifact, "backend", "mcu") != "mcu":
            raise BoardError(
                f"the artifact in {artifact.out_dir} is from the {artifact.backend} backend, "
                "which ajpq's firmware does not run; compile the graph with --backend mcu"
            )
        if artifact.elf is None or not artifact.elf.exists():
            raise BoardError(
                f"the artifact in {artifact.out_dir} has no firmware ELF; compile "
                "it again with firmware=True"
            )
        self.close()
        if self.spec.is_qemu:
            qemu = self.spec.extra.get("qemu", {})
            self.qemu = QemuBoard(
                artifact.elf,
                machine=qemu.get("machine", MACHINE),
                icount=qemu.get("icount", True),
            ).start()
        else:
            flash_elf(self.spec, artifact.elf, self.probe)
        self.artifact = artifact

    @property
    def url(self) -> str:
        """The serial URL a session uses (socket://127.0.0.1:PORT on QEMU)."""
        if self.qemu is not None:
            return self.qemu.url
        return self.port or find_serial_port(self.spec, self.probe)

    def open(self, run_timeout_s: float = 60.0) -> Session:
        """A Session with the flashed firmware; ``run_timeout_s`` bounds one RUN request
        (raise it for large models on QEMU, which runs them slower than a real core)."""
        if self.artifact is None:
            raise BoardError(
                f"nothing is flashed to {self.spec.id} in this process; call flash(artifact) first"
            )
        shapes = (tuple(self.artifact.input_shape), tuple(self.artifact.output_shape))
        link = self.qemu.link() if self.qemu is not None else self._serial_link()
        expect = {
            "model_hash": self.artifact.model_hash,
            "weights_crc": (getattr(self.artifact, "report", None) or {}).get("weights_crc", ""),
        }
        return Session(
            link,
            *shapes,
            clock_hz=self.spec.clock_hz,
            run_timeout_s=run_timeout_s,
            expect=expect,
        )

    def _serial_link(self) -> Link:
        """The protocol link over a real board's serial device."""
        import serial

        try:
            port = serial.serial_for_url(
                self.url, baudrate=self.spec.serial.get("baud", 115200), timeout=0.05
            )
        except serial.SerialException as exc:
            raise BoardError(
                f"cannot open {self.url} for {self.spec.id} ({exc}); check the cable or pass --port"
            ) from None
        return Link(port, url=self.url)

    def close(self) -> None:
        if self.qemu is not None:
            self.qemu.stop()
            self.qemu = None

    def __enter__(self) -> "Board":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def find_serial_port(spec: BoardSpec, serial_number: str | None = None) -> str:
    """The serial device of a connected board: the one with ``serial_number`` (its probe's
    USB serial number, when several such boards share a host), else the first with the board
    file's USB VID:PID."""
    from serial.tools import list_ports

    wanted = spec.serial.get("usb_vid_pid", "").lower()
    ports = list(list_ports.comports())
    for port in ports:
        if serial_number and (port.serial_number or "").lower() == serial_number.lower():
            return port.device
    for port in ports:
        if port.vid is not None and f"{port.vid:04x}:{port.pid:04x}" == wanted:
            return port.device
    raise BoardError(
        f"no serial port found for {spec.id} (USB {wanted or 'unknown'}); connect "
        "the board or pass --port /dev/ttyACM0"
    )
