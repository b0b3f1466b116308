"""The serial protocol against hostile lines, on the real firmware under QEMU: 10,000 round
trips through a FaultyPort that corrupts, drops and duplicates bytes both ways (no wrong
result may be accepted), and the protocol's corners, each with its decided behaviour
(docs/protocol.md): requests that are no command, a retry against a different request with
the same seq, a db line with a bad digit, infer past its bound, and QUIT."""

import struct
import time

import numpy as np
import pytest
import serial

from ajpq.backends.mcu.artifact import Artifact
from ajpq.boards.faults import FaultyPort
from ajpq.boards.protocol import (
    CMD_INFO,
    CMD_LOAD_INPUT,
    CMD_QUIT,
    CMD_READ_OUTPUT,
    CMD_RUN,
    REPLY,
    EembcClient,
    Frame,
    Link,
    crc16,
)
from ajpq.boards.qemu_board import QemuBoard
from tests.hil.qemu_models import random_skynet

pytestmark = pytest.mark.hil

SIZE = (16, 32)
ROUND_TRIPS = 10_000
UNKNOWN_COMMAND = 0x02


@pytest.fixture(scope="module")
def compiled(board_id: str, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return random_skynet(board_id, tmp_path_factory.mktemp("faults") / "m", SIZE, seed=5)


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, *SIZE), dtype=np.uint8)


def shapes(artifact: Artifact) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(artifact.input_shape), tuple(artifact.output_shape)


def raw_exchange(board: QemuBoard, frame: Frame, timeout_s: float = 2.0) -> Frame:
    """Write one frame as it is (no Link rules) and read the next frame back."""
    assert board.port is not None
    board.port.write(frame.encode(max_body=512))
    data, deadline, open_line = b"", time.monotonic() + timeout_s, True
    while open_line and time.monotonic() < deadline:
        try:
            data += board.port.read(max(1, board.port.in_waiting))
        except serial.SerialException:  # the board closed the line (QUIT): what came is all
            open_line = False
        parts = [part for part in data.split(b"\x00") if part]
        if parts and data.count(b"\x00") >= 2:
            return Frame.decode(parts[0])
    raise AssertionError(f"no reply to {frame} within {timeout_s} s")


def test_ten_thousand_round_trips_under_byte_faults(compiled: tuple) -> None:
    graph, artifact = compiled
    pictures = images(4, seed=1)
    golden = [graph.run(picture[None]).reshape(-1) for picture in pictures]
    outputs = golden[0].size
    assert artifact.elf is not None
    with QemuBoard(artifact.elf) as board, board.open_session(*shapes(artifact)) as clean:
        info = clean.link.request(CMD_INFO)
        assert board.port is not None and board.url
        faulty = FaultyPort(board.port, corrupt=0.01, drop=0.001, duplicate=0.001, seed=11)
        link = Link(faulty, timeout_s=0.05, tries=40, url=board.url)
        link.seq = 0  # a fixed start makes the frames, and so the faults they meet, repeatable
        chunk_size = 48  # short frames: at 1% per byte, 0.99 ** 60 of them pass unharmed
        rng = np.random.default_rng(12)
        current, trips, wrong = -1, 0, 0
        start = time.monotonic()
        while trips < ROUND_TRIPS:
            if current < 0 or trips % 100 < 2:  # a new image in 32 chunks, then a run
                current = int(rng.integers(0, len(pictures)))
                for offset in range(0, pictures[current].size, chunk_size):
                    pixels = pictures[current].reshape(-1)[offset : offset + chunk_size]
                    chunk = pixels.tobytes()
                    load = link.request(CMD_LOAD_INPUT, struct.pack("<I", offset) + chunk)
                    wrong += load != b""
                    trips += 1
                wrong += len(link.request(CMD_RUN, struct.pack("<HH", 1, 0))) != 16
                trips += 1
            elif trips % 2:
                wrong += link.request(CMD_INFO) != info
                trips += 1
            else:
                offset, count = int(rng.integers(0, outputs - 8)), int(rng.integers(1, 9))
                payload = link.request(CMD_READ_OUTPUT, struct.pack("<IH", offset, count))
                values = np.array(struct.unpack(f"<{count}i", payload))
                wrong += not np.array_equal(values, golden[current][offset:][:count])
                trips += 1
        elapsed = time.monotonic() - start
    counts = faulty.counts
    print(
        f"{trips} round trips in {elapsed:.1f} s ({1000 * elapsed / trips:.2f} ms each), "
        f"retries {link.retries}, {counts}"
    )
    assert wrong == 0
    assert trips >= ROUND_TRIPS and link.retries > 100
    assert counts.corrupted > 1000 and counts.dropped > 100 and counts.duplicated > 100
    assert 0.005 < counts.corrupted / counts.bytes_seen < 0.015


@pytest.mark.parametrize("cmd", [0x00, 0x7F, 0x80, 0xFE, 0xFF, 0x42])
def test_a_frame_that_is_no_command_is_answered_never_as_a_nak(compiled: tuple, cmd: int) -> None:
    _, artifact = compiled
    with QemuBoard(artifact.elf) as board:
        reply = raw_exchange(board, Frame(9, cmd))
        again = raw_exchange(board, Frame(10, CMD_INFO))
    expected_cmd = cmd | REPLY if 0x01 <= cmd <= 0x7E else REPLY
    assert (reply.seq, reply.cmd, reply.body) == (9, expected_cmd, bytes([UNKNOWN_COMMAND]))
    assert (again.cmd, again.body[0]) == (CMD_INFO | REPLY, 0)


def colliding_read(seq: int, offset: int, count: int) -> bytes:
    """A READ_OUTPUT body other than (offset, count) whose frame has the same CRC-16."""
    want = crc16(bytes([seq, CMD_READ_OUTPUT]) + struct.pack("<IH", offset, count))
    for other in range(offset + 1, offset + (1 << 20)):
        body = struct.pack("<IH", other, count)
        if crc16(bytes([seq, CMD_READ_OUTPUT]) + body) == want:
            return body
    raise AssertionError("no CRC-16 collision in 2^20 offsets")


def test_a_retry_is_a_repeat_of_the_whole_request(compiled: tuple) -> None:
    """A request with the cached seq is answered from the cache only when it is the same
    request; one with another body, even with the same CRC-16, is served anew."""
    graph, artifact = compiled
    x = images(1, seed=2)[0]
    golden = graph.run(x[None]).reshape(-1)
    body = struct.pack("<IH", 0, 2)
    collision = colliding_read(7, 0, 2)
    with QemuBoard(artifact.elf) as board, board.open_session(*shapes(artifact)) as session:
        session.infer(x)
        first = raw_exchange(board, Frame(7, CMD_READ_OUTPUT, body))
        retry = raw_exchange(board, Frame(7, CMD_READ_OUTPUT, body))
        collided = raw_exchange(board, Frame(7, CMD_READ_OUTPUT, collision))
        load = raw_exchange(board, Frame(7, CMD_LOAD_INPUT, struct.pack("<I", 0) + bytes(4)))
    assert first.body == b"\x00" + struct.pack("<2i", *golden[:2])
    assert retry == first
    (offset, _) = struct.unpack("<IH", collision)
    expected = struct.pack("<2i", *golden[offset:][:2]) if offset + 2 <= golden.size else b""
    assert collided.body == (b"\x00" + expected if expected else b"\x04")
    assert (load.cmd, load.body) == (CMD_LOAD_INPUT | REPLY, b"\x00")


def test_text_mode_corners(compiled: tuple) -> None:
    graph, artifact = compiled
    x = images(1, seed=3)[0]
    with QemuBoard(artifact.elf) as board:
        assert board.port is not None
        client = EembcClient(board.port)
        client.load(x.tobytes())
        _, before = client.infer(1, 0)
        pixels = x.reshape(-1).tobytes()
        assert client.command(f"db load {x.size}") == [f"m-[Expecting {x.size} bytes]"]
        assert client.command(f"db {pixels[:3].hex()}0g{pixels[3:8].hex()}") == [
            "m-error-db-bad-hex"
        ]
        lines = [client.command("db " + pixels[k : k + 256].hex()) for k in range(0, x.size, 256)]
        # the bad line stored nothing: the whole image still fits after it, to the last byte
        assert lines[:-1] == [[]] * (len(lines) - 1) and lines[-1] == ["m-load-done"]
        _, after = client.infer(1, 0)
        assert client.command("infer 65536") == ["m-error-infer-needs-a-count-of-1-to-65535"]
        assert client.command("infer 1 65536") == ["m-error-infer-warmup-over-65535"]
        assert client.command("infer 0") == ["m-error-infer-needs-a-count-of-1-to-65535"]
    golden = graph.run(x[None]).reshape(-1)
    assert np.array_equal(before, golden) and np.array_equal(after, golden)


def test_bytes_sent_during_a_run_are_served_after_it(compiled: tuple) -> None:
    """The UART is not read during a run: an INFO sent right behind a long RUN is answered
    after the RUN's reply, not lost and not interleaved."""
    _, artifact = compiled
    with QemuBoard(artifact.elf) as board:
        assert board.port is not None
        run = Frame(1, CMD_RUN, struct.pack("<HH", 500, 0)).encode(max_body=512)
        board.port.write(run + Frame(2, CMD_INFO).encode(max_body=512))
        data, deadline = b"", time.monotonic() + 60.0
        while data.count(b"\x00") < 4 and time.monotonic() < deadline:
            data += board.port.read(max(1, board.port.in_waiting))
    replies = [Frame.decode(part) for part in data.split(b"\x00") if part]
    assert [(r.seq, r.cmd, r.body[0]) for r in replies] == [
        (1, CMD_RUN | REPLY, 0),
        (2, CMD_INFO | REPLY, 0),
    ]
    total, smallest, largest = struct.unpack("<QII", replies[0].body[1:])
    assert total == 500 * smallest and smallest == largest > 0


def test_one_quit_stops_the_board(compiled: tuple) -> None:
    _, artifact = compiled
    with QemuBoard(artifact.elf) as board:
        reply = raw_exchange(board, Frame(3, CMD_QUIT))
        assert board.process is not None and board.process.wait(timeout=10) == 0
    assert (reply.cmd, reply.body) == (CMD_QUIT | REPLY, b"\x00")
