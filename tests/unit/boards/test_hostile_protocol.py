"""The host's decoders of what a board sends, on 1,000+ generated bad inputs each: Frame.decode
and cobs_decode refuse with one FrameError line, INFO payloads with one AjpqError sentence
that says what to do; never a struct.error, IndexError or UnicodeDecodeError, never a hang.

Frames: truncated, bit-flipped and random bytes. CRC-16 catches every single-bit flip of a
frame's bytes; a flip of a COBS code byte or random bytes pass it by chance 1 in 65,536, and
none of these seeded inputs do. cobs_decode alone accepts any zero-free bytes whose last block
fits, so it gets inputs that must fail: a 0x00 inside, or a cut inside a block.

INFO (built as the firmware and tests/unit/boards/test_protocol.py's FakeBoard build it):
every strict prefix and every length byte that points past the end must fail parse_info.
Random bytes, bit flips and control characters in the model hash go through what the host does
with a reply, Session.info (parse_info, check_info, the tensor sizes); flips are made only in
bytes it checks (version, lengths, sizes, model hash, weights CRC and check), not in free text
such as the firmware version, which the frame's CRC guards and nothing on the host can.
"""

import random
import string
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ajpq.boards.protocol import CMD_INFO, REPLY, Frame, FrameError, Limits, cobs_decode
from ajpq.boards.session import Session, parse_info
from tests.unit.hostile import attempt, bit_flipped, failure_report, refusal_problem, truncated

INPUT_SHAPE, OUTPUTS = (3, 16, 32), 10
_HEAD = struct.Struct("<HIIIHH")


def real_frame(rng: random.Random) -> bytes:
    """The bytes between the delimiters of a frame a board or host sends."""
    max_body = rng.choice([244, 512, 1024])
    body = rng.randbytes(rng.randrange(max_body + 1))
    wire = Frame(rng.randrange(256), rng.randrange(256), body).encode(max_body)
    return wire[1:-1]


def bad_frames(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    for _ in range(300):
        yield "truncated", truncated(real_frame(rng), rng)
    for _ in range(400):
        yield "bit flip", bit_flipped(real_frame(rng), rng)
    for _ in range(300):
        size = rng.randrange(1, 1100)
        zero_free = bytes(rng.randrange(1, 256) for _ in range(size))
        yield "random bytes", zero_free if rng.random() < 0.5 else rng.randbytes(size)


def frame_errors(
    cases: Iterator[tuple[str, bytes]], parse: Callable[[bytes], object]
) -> tuple[list[str], Counter[str]]:
    """What is wrong with how ``parse`` refused each case (a FrameError in one line), and
    how many cases of each kind were tried."""
    problems: list[str] = []
    tried: Counter[str] = Counter()
    for kind, encoded in cases:
        outcome = attempt(lambda encoded=encoded: parse(encoded))
        if problem := refusal_problem(outcome, hint=False):
            problems.append(f"{kind}: {problem}")
        elif not isinstance(outcome.error, FrameError):
            problems.append(f"{kind}: {type(outcome.error).__name__}, not FrameError")
        tried[kind] += 1
    return problems, tried


def test_bad_frames_are_refused_in_one_line() -> None:
    problems, tried = frame_errors(bad_frames(random.Random(5)), Frame.decode)
    assert not problems, failure_report(problems)
    assert tried == {"truncated": 300, "bit flip": 400, "random bytes": 300}


def block_starts(encoded: bytes) -> set[int]:
    """The offsets of the code bytes of a COBS encoding, and its end."""
    starts, index = set(), 0
    while index < len(encoded):
        starts.add(index)
        index += encoded[index]
    return starts | {len(encoded)}


def bad_cobs(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    for _ in range(300):
        data = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(600)))
        index = rng.randrange(len(data) + 1)
        yield "a zero inside", data[:index] + b"\x00" + data[index:]
    for _ in range(300):
        encoded = real_frame(rng)
        inside = sorted(set(range(len(encoded))) - block_starts(encoded))
        yield "cut inside a block", encoded[: rng.choice(inside)]


def test_bad_cobs_is_refused_in_one_line() -> None:
    problems, tried = frame_errors(bad_cobs(random.Random(6)), cobs_decode)
    assert not problems, failure_report(problems)
    assert tried == {"a zero inside": 300, "cut inside a block": 300}


@dataclass
class Info:
    """A real INFO payload and where its fields lie."""

    payload: bytes
    model_hash: str
    weights_crc: int
    string_starts: list[int]  # the offset of each string's length byte
    tail: int  # the offset of the weights CRC (version 2), or len(payload)

    def checked_bytes(self) -> list[int]:
        """The offsets of the bytes Session.info checks: version, input and output sizes,
        the length bytes, the model hash, the weights CRC and the check result."""
        return [
            *range(0, 2),
            *range(6, 14),
            *self.string_starts,
            *self.hash_bytes(),
            *range(self.tail, self.tail + 4),
            self.tail + 8,
        ]

    def hash_bytes(self) -> list[int]:
        start = self.string_starts[1] + 1
        return list(range(start, start + len(self.model_hash)))


def real_info(rng: random.Random, version: int = 2) -> Info:
    inputs = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]
    head = _HEAD.pack(version, 40, inputs, OUTPUTS, rng.randrange(1, 60), 512)
    model_hash = "".join(rng.choices("0123456789abcdef", k=rng.randrange(8, 17)))
    texts = [
        rng.choice(["0.1.0", "0.2.0-dev", ""]),
        model_hash,
        rng.choice(["qemu-mps2-an386", "nucleo-h743zi", "x"]),
        rng.choice(["dwt", "systick-icount"]),
    ]
    texts[0] += "".join(rng.choices(string.printable[:94], k=rng.randrange(20)))
    payload, starts = bytearray(head), []
    for text in texts:
        starts.append(len(payload))
        payload += bytes([len(text)]) + text.encode()
    tail = len(payload)
    crc = rng.randrange(1 << 32)
    if version >= 2:
        payload += struct.pack("<IIB", crc, crc, 0)
    return Info(bytes(payload), model_hash, crc, starts, tail)


def overlong(info: Info, rng: random.Random) -> bytes:
    """The payload with one length byte pointing past its end."""
    start = rng.choice(info.string_starts)
    beyond = len(info.payload) - start  # a length of this or more ends past the payload
    return info.payload[:start] + bytes([rng.randrange(beyond, 256)]) + info.payload[start + 1 :]


def test_truncated_or_overlong_info_is_refused_by_parse_info() -> None:
    rng = random.Random(8)
    problems: list[str] = []
    tried: Counter[str] = Counter()
    for _ in range(700):
        info = real_info(rng, version=rng.choice([1, 2]))
        kind = rng.choice(["truncated", "length past the end"])
        payload = truncated(info.payload, rng) if kind == "truncated" else overlong(info, rng)
        if problem := refusal_problem(attempt(lambda payload=payload: parse_info(payload))):
            problems.append(f"{kind}: {problem} for {payload.hex()}")
        tried[kind] += 1
    assert not problems, failure_report(problems)
    assert sum(tried.values()) == 700 and min(tried.values()) > 300, tried


class OneReply:
    """A Link that answers INFO with one payload."""

    url = "fake://board"

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.limits = Limits()

    def request(self, cmd: int, payload: bytes = b"", timeout_s: float | None = None) -> bytes:
        assert cmd == CMD_INFO
        return self.payload


def host_reads_info(payload: bytes, info: Info) -> dict:
    expect = {"model_hash": info.model_hash, "weights_crc": f"{info.weights_crc:08x}"}
    return Session(OneReply(payload), INPUT_SHAPE, (OUTPUTS,), expect=expect).info()


def test_random_and_bit_flipped_info_is_refused_by_the_session() -> None:
    rng = random.Random(9)
    problems: list[str] = []
    tried: Counter[str] = Counter()
    for _ in range(900):
        info = real_info(rng)
        assert host_reads_info(info.payload, info)["model_hash"] == info.model_hash
        kind = rng.choice(["random bytes", "bit flip", "control character"])
        if kind == "random bytes":
            payload = rng.randbytes(rng.randrange(300))
        else:
            index = rng.choice(info.checked_bytes() if kind == "bit flip" else info.hash_bytes())
            byte = info.payload[index] ^ (1 << rng.randrange(8))
            if kind == "control character":  # a board's hash with a newline, an escape...
                byte = rng.choice([*range(0x20), 0x7F])
            payload = info.payload[:index] + bytes([byte]) + info.payload[index + 1 :]
        outcome = attempt(lambda payload=payload, info=info: host_reads_info(payload, info))
        if problem := refusal_problem(outcome):
            problems.append(f"{kind}: {problem} for {payload.hex()}")
        tried[kind] += 1
    assert not problems, failure_report(problems)
    assert sum(tried.values()) == 900 and min(tried.values()) > 250, tried


def test_a_reply_frame_carrying_info_decodes() -> None:
    """The generators start from good bytes: a real INFO reply frame round-trips."""
    info = real_info(random.Random(1))
    wire = Frame(7, CMD_INFO | REPLY, b"\x00" + info.payload).encode(512)
    frame = Frame.decode(wire[1:-1])
    assert parse_info(frame.body[1:])["model_hash"] == info.model_hash
