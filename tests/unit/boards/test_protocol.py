"""The binary serial protocol on the host: COBS, CRC, frames, and Link's retries against a
fault-injecting fake serial port (the board side runs on QEMU in tests/hil)."""

import math
import struct

import numpy as np
import pytest

from ajpq.boards.protocol import (
    CMD_INFO,
    CMD_LOAD_INPUT,
    CMD_NAK,
    CMD_READ_LAYERS,
    CMD_READ_OUTPUT,
    CMD_RUN,
    MAX_BODY,
    REPLY,
    BoardNotResponding,
    BoardProtocolError,
    EembcClient,
    Frame,
    FrameError,
    Limits,
    Link,
    cobs_decode,
    cobs_encode,
    crc16,
)
from ajpq.boards.session import Session
from ajpq.errors import AjpqError

COBS_CASES = [
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x11\x22\x00\x33",
    b"\x11\x00\x00\x00",
    bytes(range(1, 255)),  # 254 non-zero bytes: exactly one full block
    bytes(range(0, 255)),  # 255 bytes starting with zero
    bytes(range(1, 256)),  # 255 non-zero bytes: a full block and one more
    bytes(range(2, 256)) + b"\x00",
    b"\x01" * 600,
    bytes(range(256)) * 3,
]


@pytest.mark.parametrize("data", COBS_CASES)
def test_cobs_round_trip_has_no_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


def test_cobs_known_encodings() -> None:
    # Examples of Cheshire & Baker's COBS (as listed on Wikipedia).
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255))
    assert cobs_encode(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"


def test_cobs_decode_rejects_zero_and_truncation() -> None:
    with pytest.raises(FrameError):
        cobs_decode(b"\x03\x11\x00")
    with pytest.raises(FrameError):
        cobs_decode(b"\x05\x11\x22")


def test_crc16_ccitt_false_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


def test_frame_round_trip_and_wire_format() -> None:
    frame = Frame(seq=7, cmd=CMD_LOAD_INPUT, body=b"\x00\x00\x00\x00\x01\x00\xff")
    wire = frame.encode()
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    raw = cobs_decode(wire[1:-1])
    assert raw[:2] == bytes([7, CMD_LOAD_INPUT]) and raw[2:-2] == frame.body
    assert struct.unpack("<H", raw[-2:])[0] == crc16(raw[:-2])
    assert Frame.decode(wire[1:-1]) == frame


def test_frame_decode_rejects_corrupted_crc() -> None:
    raw = bytearray(cobs_decode(Frame(1, CMD_INFO, b"abc").encode()[1:-1]))
    raw[3] ^= 0x01
    with pytest.raises(FrameError, match="CRC"):
        Frame.decode(cobs_encode(bytes(raw)))
    with pytest.raises(FrameError):
        Frame.decode(cobs_encode(b"\x01\x02\x03"))


def test_frame_encode_takes_the_negotiated_body_size() -> None:
    body = bytes(range(1, 256)) * 4  # 1020 bytes without a zero: several full COBS blocks
    with pytest.raises(ValueError, match="at most 244 bytes, not 1020"):
        Frame(1, CMD_LOAD_INPUT, body).encode()
    wire = Frame(1, CMD_LOAD_INPUT, body).encode(max_body=1024)
    assert len(wire) == 2 + 1024 + 5  # raw is 1024 bytes: 5 COBS blocks of <= 254
    assert Frame.decode(wire[1:-1]) == Frame(1, CMD_LOAD_INPUT, body)


@pytest.mark.parametrize(
    ("max_body", "limits"),
    [
        (244, Limits(244, 200, 60, 30)),  # firmware before frames grew
        (0, Limits(244, 200, 60, 30)),  # a size below the minimum falls back to it
        (512, Limits(512, 508, 127, 63)),
        (1024, Limits(1024, 1020, 255, 127)),
    ],
)
def test_limits_for_a_reported_body(max_body: int, limits: Limits) -> None:
    assert Limits.for_body(max_body) == limits


class FakeBoard:
    """A serial-port double of the server firmware with a given max frame body: answers
    INFO, LOAD_INPUT, RUN, READ_OUTPUT, READ_LAYERS and, like the firmware, rejects a frame
    or a LOAD_INPUT chunk larger than its limits."""

    def __init__(
        self, max_body: int, inputs: int, outputs: int, layers: int, version: int = 2
    ) -> None:
        self.version, self.check, self.crc = version, 0, 0x1234ABCD
        self.limits = Limits.for_body(max_body)
        self.inputs, self.outputs, self.layers = inputs, outputs, layers
        self.pixels = bytearray(inputs)
        self.timeout: float | None = None
        self.requests: list[Frame] = []
        self.outgoing = bytearray()
        self.port = "socket://127.0.0.1:9"

    def answer(self, request: Frame) -> bytes:
        body = request.body
        if len(body) > self.limits.max_body:
            return b"\x01"  # the firmware's rx buffer overflows: bad frame
        if request.cmd == CMD_INFO:
            head = struct.pack(
                "<HIIIHH",
                self.version,
                40,
                self.inputs,
                self.outputs,
                self.layers,
                self.limits.max_body,
            )
            strings = b"".join(bytes([len(t)]) + t for t in (b"0.1.0", b"hash", b"fake", b"dwt"))
            tail = struct.pack("<IIB", self.crc ^ bool(self.check), self.crc, self.check)
            return b"\x00" + head + strings + tail
        if request.cmd == CMD_LOAD_INPUT:
            if len(body) - 4 > self.limits.input_chunk:
                return b"\x03"
            (offset,) = struct.unpack_from("<I", body)
            self.pixels[offset : offset + len(body) - 4] = body[4:]
            return b"\x00"
        if request.cmd == CMD_RUN:
            return b"\x00" + struct.pack("<QII", 7, 7, 7)
        if request.cmd == CMD_READ_OUTPUT:
            offset, count = struct.unpack("<IH", body)
            if count > self.limits.output_values:
                return b"\x04"
            return b"\x00" + struct.pack(f"<{count}i", *range(offset, offset + count))
        first, count = struct.unpack("<HH", body)
        if request.cmd != CMD_READ_LAYERS or count > self.limits.layer_entries:
            return b"\x04"
        return b"\x00" + struct.pack(f"<{2 * count}I", *range(2 * first, 2 * (first + count)))

    def write(self, data: bytes) -> int:
        request = Frame.decode(data[1:-1])
        self.requests.append(request)
        reply = Frame(request.seq, request.cmd | REPLY, self.answer(request))
        self.outgoing += reply.encode(max_body=max(MAX_BODY, len(reply.body)))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        chunk = bytes(self.outgoing[:size])
        del self.outgoing[:size]
        return chunk

    def reset_input_buffer(self) -> None:
        self.outgoing.clear()

    def close(self) -> None:
        pass

    def count(self, cmd: int) -> int:
        return sum(request.cmd == cmd for request in self.requests)


@pytest.mark.parametrize(
    ("max_body", "loads", "reads", "layer_reads"),
    [(244, 123, 22, 3), (512, 49, 11, 2), (1024, 25, 6, 1)],
)
def test_session_sizes_requests_from_the_reported_max_body(
    max_body: int, loads: int, reads: int, layer_reads: int
) -> None:
    shape, outputs, layers = (3, 64, 128), 1280, 70
    board = FakeBoard(max_body, inputs=3 * 64 * 128, outputs=outputs, layers=layers)
    session = Session(Link(board, timeout_s=0.2), shape, (outputs,))
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    session.load(image)
    session.run()
    output = session.read_output()
    entries = session.read_layers()
    chunk = board.limits.input_chunk
    assert board.count(CMD_LOAD_INPUT) == math.ceil(image.size / chunk) == loads
    assert board.count(CMD_READ_OUTPUT) == math.ceil(outputs / board.limits.output_values)
    assert board.count(CMD_READ_OUTPUT) == reads
    assert board.count(CMD_READ_LAYERS) == layer_reads
    assert max(len(request.body) for request in board.requests) == min(chunk + 4, max_body)
    assert bytes(board.pixels) == image.tobytes()
    assert np.array_equal(output, np.arange(outputs))
    assert [entry["count"] for entry in entries] == [80 * k for k in range(layers)]
    assert session.link.retries == 0


class FaultySerial:
    """A serial-port test double: answers each request frame like the server firmware, but
    drops or corrupts the replies listed in `faults` ("drop", "corrupt", "nak", "ok")."""

    def __init__(self, faults: list[str], status: int = 0) -> None:
        self.faults = list(faults)
        self.status = status
        self.timeout: float | None = None
        self.requests: list[Frame] = []
        self.outgoing = bytearray()
        self.port = "socket://127.0.0.1:9"

    def write(self, data: bytes) -> int:
        request = Frame.decode(data[1:-1])
        self.requests.append(request)
        fault = self.faults.pop(0) if self.faults else "ok"
        reply = Frame(request.seq, request.cmd | REPLY, bytes([self.status]) + b"payload")
        if fault == "nak":
            reply = Frame(request.seq, CMD_NAK, b"\x01")
        wire = bytearray(reply.encode())
        if fault == "corrupt":
            wire[3] ^= 0x40
        if fault == "stale":
            wire = bytearray(Frame(request.seq - 1, request.cmd | REPLY, b"\x00old").encode())
        if fault != "drop":
            self.outgoing += wire
        return len(data)

    def read(self, size: int = 1) -> bytes:
        chunk = bytes(self.outgoing[:size])
        del self.outgoing[:size]
        return chunk

    def reset_input_buffer(self) -> None:
        self.outgoing.clear()

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("faults", "tries"),
    [([], 1), (["drop"], 2), (["corrupt"], 2), (["nak"], 2), (["drop", "corrupt"], 3)],
)
def test_link_retries_until_a_good_reply(faults: list[str], tries: int) -> None:
    port = FaultySerial(faults)
    link = Link(port, timeout_s=0.2)
    assert link.request(CMD_RUN, b"\x01\x00\x00\x00") == b"payload"
    assert len(port.requests) == tries
    assert len({(r.seq, r.body) for r in port.requests}) == 1  # a retry resends the same frame
    assert link.retries == tries - 1


def test_link_skips_a_stale_reply_and_uses_a_new_seq_per_request() -> None:
    port = FaultySerial(["stale", "ok"])
    link = Link(port, timeout_s=0.2)
    assert link.request(CMD_INFO) == b"payload"
    link.request(CMD_INFO)
    seqs = [r.seq for r in port.requests]
    assert seqs[0] == seqs[1] and seqs[2] == (seqs[1] + 1) % 256


def test_link_gives_up_after_three_tries_with_one_line() -> None:
    port = FaultySerial(["drop", "drop", "drop"])
    link = Link(port, timeout_s=0.1)
    with pytest.raises(BoardNotResponding) as error:
        link.request(CMD_INFO)
    message = str(error.value)
    assert message == (
        "the board on socket://127.0.0.1:9 did not answer INFO within 0.1 s after 3 tries; "
        "check the port and that the firmware is flashed"
    )
    assert len(port.requests) == 3


def test_link_reports_a_rejected_command() -> None:
    link = Link(FaultySerial([], status=0x04), timeout_s=0.1)
    with pytest.raises(BoardProtocolError, match="rejected RUN: argument out of range"):
        link.request(CMD_RUN, b"\x00\x00\x00\x00")


class ScriptedText:
    """A text-mode serial double: replies to each `...%` command with canned lines."""

    def __init__(self, replies: dict[str, bytes]) -> None:
        self.replies = replies
        self.timeout: float | None = None
        self.outgoing = bytearray()
        self.sent: list[str] = []
        self.port = "socket://127.0.0.1:9"

    def write(self, data: bytes) -> int:
        command = data.decode().removesuffix("%")
        self.sent.append(command)
        self.outgoing += self.replies.get(command.split()[0], b"") + b"m-ready\r\n"
        return len(data)

    def read(self, size: int = 1) -> bytes:
        chunk = bytes(self.outgoing[:size])
        del self.outgoing[:size]
        return chunk

    def reset_input_buffer(self) -> None:
        self.outgoing.clear()

    def close(self) -> None:
        pass


def test_eembc_client_parses_laps_and_results() -> None:
    port = ScriptedText(
        {
            "name": b"m-name-ajpq-abc\r\n",
            "infer": b"m-lap-us-10\r\nm-lap-us-250\r\nm-results-[1,-2,3]\r\n",
        }
    )
    client = EembcClient(port, chunk_bytes=2)
    assert client.name() == "ajpq-abc"
    client.load(b"\x00\x01\xff")
    laps, outputs = client.infer(2, 1)
    assert laps == [10, 250]
    assert np.array_equal(outputs, [1, -2, 3])
    assert port.sent == ["name", "db load 3", "db 0001", "db ff", "infer 2 1"]


def test_info_is_checked_against_the_protocol_the_flash_check_and_the_artifact() -> None:
    shape = (1, 4, 4)
    old = FakeBoard(244, inputs=16, outputs=2, layers=1, version=1)
    with pytest.raises(AjpqError) as caught:
        Session(Link(old, timeout_s=0.2), shape, (2,)).info()
    assert str(caught.value) == (
        "the firmware on socket://127.0.0.1:9 speaks protocol 1 and this ajpq speaks 2; "
        "compile and flash the model with this ajpq"
    )
    corrupt = FakeBoard(244, inputs=16, outputs=2, layers=1)
    corrupt.check = 1
    with pytest.raises(AjpqError) as caught:
        Session(Link(corrupt, timeout_s=0.2), shape, (2,)).info()
    assert str(caught.value) == (
        "the firmware on socket://127.0.0.1:9 failed its check of flash at boot (the weights "
        "in flash do not match their CRC: CRC 1234abcc, built 1234abcd); flash the artifact "
        "again"
    )
    board = FakeBoard(244, inputs=16, outputs=2, layers=1)
    expect = {"model_hash": "hash", "weights_crc": "00000001"}
    with pytest.raises(AjpqError) as caught:
        Session(Link(board, timeout_s=0.2), shape, (2,), expect=expect).info()
    assert str(caught.value) == (
        "the board on socket://127.0.0.1:9 runs weights crc 1234abcd, not the flashed "
        "artifact's 00000001; flash the artifact again"
    )
    with pytest.raises(AjpqError) as caught:
        Session(Link(board, timeout_s=0.2), shape, (2,), expect={"model_hash": "other"}).run()
    assert str(caught.value) == (
        "the board on socket://127.0.0.1:9 runs model hash hash, not the flashed artifact's "
        "other; flash the artifact again"
    )
    assert board.count(CMD_RUN) == 0  # refused before anything ran
    expect["weights_crc"] = "1234abcd"
    info = Session(Link(board, timeout_s=0.2), shape, (2,), expect=expect).info()
    assert (info["model_check"], info["weights_crc"]) == ("verified", "1234abcd")


def test_link_sends_only_request_commands() -> None:
    board = FakeBoard(244, inputs=16, outputs=2, layers=1)
    for cmd in (0x00, 0x7F, 0x80, 0xFF):
        with pytest.raises(BoardProtocolError, match="0x01..0x7e"):
            Link(board, timeout_s=0.2).request(cmd)
    assert board.requests == []
