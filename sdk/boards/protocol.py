"""The serial protocol of the ajpq server firmware (firmware/runtime/ajpq_server_main.c).

Binary frames: ``0x00 COBS([seq u8][cmd u8][body ...][crc16 le]) 0x00`` with
CRC-16/CCITT-FALSE over seq, cmd and body; a reply echoes seq, sets bit 7 of cmd and starts
its body with a status byte. ``Link`` sends requests and retries on a timeout, a damaged
reply or a NAK. ``EembcClient`` speaks the MLPerf Tiny / EEMBC runner's text commands to
the same firmware. docs/protocol.md describes both.
"""

import random
import re
import struct
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ajpq.errors import AjpqError

PROTOCOL_VERSION = 2  # 2: INFO ends with the weights CRC and the result of its check
# The smallest frame body a board may report in INFO (firmware reports its own
# AJPQ_FRAME_MAX_BODY, 512 by default) and its per-command limits; until INFO has told the
# host more it sends no larger frames. Limits.for_body gives the limits for a larger body.
MAX_BODY = 244
MAX_INPUT_CHUNK = 200
MAX_OUTPUT_VALUES = 60
MAX_LAYER_ENTRIES = 30

CMD_INFO = 0x01
CMD_LOAD_INPUT = 0x02
CMD_RUN = 0x03
CMD_READ_OUTPUT = 0x04
CMD_READ_LAYERS = 0x05
CMD_QUIT = 0x06
CMD_NAK = 0xFF
REPLY = 0x80

COMMAND_NAMES = {
    CMD_INFO: "INFO",
    CMD_LOAD_INPUT: "LOAD_INPUT",
    CMD_RUN: "RUN",
    CMD_READ_OUTPUT: "READ_OUTPUT",
    CMD_READ_LAYERS: "READ_LAYERS",
    CMD_QUIT: "QUIT",
}

STATUS_OK = 0x00
STATUS_NAMES = {
    0x01: "bad frame",
    0x02: "unknown command",
    0x03: "bad payload length",
    0x04: "argument out of range",
    0x05: "its model failed its check of flash (INFO says which)",
}

_POLL_S = 0.05  # serial read timeout while waiting for a reply


class BoardNotResponding(AjpqError):
    """The board sent no valid reply to a request, after every retry."""


class BoardProtocolError(AjpqError):
    """The board answered, but rejected the request or sent a malformed reply."""


class FrameError(AjpqError):
    """Bytes between two 0x00 delimiters are not a valid frame (bad COBS, short, bad CRC)."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); crc16(b"123456789") == 0x29B1."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode data: the result holds no 0x00 byte (same bytes as ajpq_cobs_encode)."""
    out = bytearray([0])
    code_at, code = 0, 1
    for index, byte in enumerate(data):
        if byte == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(byte)
        code += 1
        if code == 0xFF and index + 1 < len(data):
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Invert cobs_encode; raises FrameError on a 0x00 byte or a block past the end."""
    out = bytearray()
    index = 0
    while index < len(data):
        code = data[index]
        index += 1
        block = data[index : index + code - 1]
        if code == 0 or len(block) != code - 1 or 0 in block:
            raise FrameError(f"invalid COBS block at byte {index - 1} of {len(data)}")
        out += block
        index += code - 1
        if code != 0xFF and index < len(data):
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Limits:
    """How much one request or reply carries for a board's frame body size (its INFO
    max_body): LOAD_INPUT pixels, READ_OUTPUT values, READ_LAYERS entries."""

    max_body: int = MAX_BODY
    input_chunk: int = MAX_INPUT_CHUNK
    output_values: int = MAX_OUTPUT_VALUES
    layer_entries: int = MAX_LAYER_ENTRIES

    @classmethod
    def for_body(cls, max_body: int) -> "Limits":
        """The limits of firmware whose frames hold max_body bytes (ajpq_frame.h); a
        reported size below MAX_BODY falls back to MAX_BODY's limits."""
        if max_body <= MAX_BODY:
            return cls()
        return cls(max_body, max_body - 4, (max_body - 1) // 4, (max_body - 1) // 8)


@dataclass(frozen=True)
class Frame:
    """One frame: sequence number, command (| REPLY for replies) and body."""

    seq: int
    cmd: int
    body: bytes = b""

    def encode(self, max_body: int = MAX_BODY) -> bytes:
        """The bytes on the wire: 0x00 COBS(raw) 0x00; the body holds at most max_body."""
        if len(self.body) > max_body:
            raise ValueError(f"a frame body holds at most {max_body} bytes, not {len(self.body)}")
        raw = bytes([self.seq & 0xFF, self.cmd & 0xFF]) + self.body
        raw += struct.pack("<H", crc16(raw))
        return b"\x00" + cobs_encode(raw) + b"\x00"

    @classmethod
    def decode(cls, encoded: bytes) -> "Frame":
        """Decode the bytes between two delimiters; raises FrameError when damaged."""
        raw = cobs_decode(encoded.strip(b"\x00"))
        if len(raw) < 4:
            raise FrameError(f"a frame has at least 4 bytes, this one {len(raw)}")
        (crc,) = struct.unpack("<H", raw[-2:])
        if crc16(raw[:-2]) != crc:
            raise FrameError(f"frame CRC {crc:#06x} does not match {crc16(raw[:-2]):#06x}")
        return cls(seq=raw[0], cmd=raw[1], body=raw[2:-2])


class SerialLike(Protocol):
    """What Link needs of a pyserial port (serial.serial_for_url(url) gives one)."""

    timeout: float | None

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def _port_name(port: SerialLike) -> str:
    return str(getattr(port, "portstr", None) or getattr(port, "port", None) or "serial port")


class Link:
    """Request/reply over a serial port: sequence numbers, CRC, up to `tries` attempts."""

    def __init__(
        self, port: SerialLike, timeout_s: float = 2.0, tries: int = 3, url: str | None = None
    ) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.tries = tries
        self.url = url or _port_name(port)
        self.seq = random.randrange(256)  # a fresh session never reuses the board's cached seq
        self.retries = 0  # requests sent again, over the link's life
        self.limits = Limits()  # Session sets the board's, from INFO
        self._pending = bytearray()
        port.timeout = _POLL_S

    def request(self, cmd: int, payload: bytes = b"", timeout_s: float | None = None) -> bytes:
        """Send one command and return its reply payload (after the status byte).

        Raises BoardNotResponding when no valid reply came within timeout_s on every try,
        and BoardProtocolError when the board rejected the command.
        """
        if not 0x01 <= cmd <= 0x7E:
            raise BoardProtocolError(
                f"a request's command is 0x01..0x7e, not {cmd:#04x}; send one of the CMD_ "
                "constants of ajpq.boards.protocol"
            )
        self.seq = (self.seq + 1) & 0xFF
        wire = Frame(self.seq, cmd, payload).encode(self.limits.max_body)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        name = COMMAND_NAMES.get(cmd, f"command {cmd:#04x}")
        failure = ""
        for attempt in range(self.tries):
            if attempt:
                self.retries += 1
            try:
                self.port.write(wire)
                reply = self._await_reply(self.seq, cmd, timeout)
            except OSError as error:  # serial.SerialException: the port itself went away
                failure = f" ({error})"
                time.sleep(_POLL_S)
                continue
            if reply is not None:
                return self._payload(reply, name)
        raise BoardNotResponding(
            f"the board on {self.url} did not answer {name} within {timeout:g} s after "
            f"{self.tries} tries{failure}; check the port and that the firmware is flashed"
        )

    def _payload(self, reply: Frame, name: str) -> bytes:
        if not reply.body:
            raise BoardProtocolError(f"the board's reply to {name} has no status byte")
        status = reply.body[0]
        if status != STATUS_OK:
            reason = STATUS_NAMES.get(status, f"status {status:#04x}")
            raise BoardProtocolError(f"the board rejected {name}: {reason}")
        return reply.body[1:]

    def _await_reply(self, seq: int, cmd: int, timeout_s: float) -> Frame | None:
        """The reply to (seq, cmd), or None on a timeout or a NAK (the caller retries)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            encoded = self._read_frame(deadline)
            if encoded is None:
                return None
            try:
                frame = Frame.decode(encoded)
            except FrameError:
                return None  # damaged reply: ask again
            if frame.cmd == CMD_NAK:
                return None
            if frame.seq == seq and frame.cmd == cmd | REPLY:
                return frame
            # a stale reply (to an earlier try or request): keep waiting
        return None

    def _read_frame(self, deadline: float) -> bytes | None:
        """Bytes between the next pair of 0x00 delimiters, or None at the deadline."""
        while time.monotonic() < deadline:
            chunk = self.port.read(max(1, int(getattr(self.port, "in_waiting", 0) or 0)))
            if not chunk:
                continue
            self._pending += chunk
            while b"\x00" in self._pending:
                end = self._pending.index(b"\x00")
                encoded = bytes(self._pending[:end])
                del self._pending[: end + 1]
                if encoded:
                    return encoded
        return None

    def close(self) -> None:
        self.port.close()


_LINE = re.compile(rb"[^\r\n]*\r\n")


class EembcClient:
    """MLPerf Tiny / EEMBC runner text commands (`name%`, `db load N%`, `infer N W%`)."""

    def __init__(self, port: SerialLike, timeout_s: float = 10.0, chunk_bytes: int = 256) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes
        self.url = _port_name(port)
        port.timeout = _POLL_S

    def command(self, text: str) -> list[str]:
        """Send `text%` and return the reply lines up to (without) m-ready."""
        self.port.write(text.encode("ascii") + b"%")
        lines: list[str] = []
        buffer = b""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            buffer += self.port.read(max(1, int(getattr(self.port, "in_waiting", 0) or 0)))
            while (match := _LINE.match(buffer)) is not None:
                buffer = buffer[match.end() :]
                line = match.group().decode("ascii", errors="replace").strip()
                if line == "m-ready":
                    return lines
                lines.append(line)
        raise BoardNotResponding(
            f"the board on {self.url} did not end '{text.split()[0]}%' with m-ready within "
            f"{self.timeout_s:g} s; check the port and that the firmware is flashed"
        )

    def name(self) -> str:
        """The model name the firmware reports (m-name-…), without the m-name- prefix."""
        for line in self.command("name"):
            if line.startswith("m-name-"):
                return line.removeprefix("m-name-")
        raise BoardProtocolError("the board's reply to name% has no m-name- line")

    def load(self, data: bytes) -> None:
        """Load an input image (uint8 bytes) with `db load N%` and `db <hex>%` chunks."""
        self._check(self.command(f"db load {len(data)}"), "db load")
        for start in range(0, len(data), self.chunk_bytes):
            self._check(self.command("db " + data[start : start + self.chunk_bytes].hex()), "db")

    def infer(self, count: int, warmup: int = 0) -> tuple[list[int], np.ndarray]:
        """Run `infer count warmup%`: the two m-lap-us timer values and the int32 outputs."""
        lines = self._check(self.command(f"infer {count} {warmup}"), "infer")
        laps = [int(line.removeprefix("m-lap-us-")) for line in lines if "m-lap-us-" in line]
        results = [line for line in lines if line.startswith("m-results-[")]
        if len(laps) != 2 or len(results) != 1:
            raise BoardProtocolError(f"the board's reply to infer% is incomplete: {lines[:4]}")
        values = results[0].removeprefix("m-results-[").removesuffix("]")
        outputs = np.array([int(v) for v in values.split(",") if v], dtype=np.int64)
        return laps, outputs

    @staticmethod
    def _check(lines: list[str], name: str) -> list[str]:
        errors = [line for line in lines if line.startswith("m-error")]
        if errors:
            raise BoardProtocolError(f"the board rejected {name}%: {errors[0]}")
        return lines
