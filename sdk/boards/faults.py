"""FaultyPort: a test double that damages the bytes between a host and a real serial port.

It wraps a pyserial port (e.g. QemuBoard.port) and, byte by byte in both directions, drops,
duplicates or corrupts (XOR with a random non-zero value) at the rates it is given, from a
seeded RNG, so a run can be repeated. ``Link(FaultyPort(port, corrupt=0.01), ...)`` then
exercises the protocol's CRC, NAK and retry paths against the real firmware; the counters
say how many faults were injected.
"""

import random
from dataclasses import dataclass

from ajpq.boards.protocol import SerialLike


@dataclass
class FaultCounts:
    """Bytes seen and faults injected, per kind, over both directions."""

    bytes_seen: int = 0
    corrupted: int = 0
    dropped: int = 0
    duplicated: int = 0


class FaultyPort:
    """A SerialLike that forwards to `port`, damaging bytes at the given per-byte rates."""

    def __init__(
        self,
        port: SerialLike,
        corrupt: float = 0.0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        seed: int = 0,
        directions: tuple[str, ...] = ("write", "read"),
    ) -> None:
        if corrupt + drop + duplicate > 1.0 or min(corrupt, drop, duplicate) < 0.0:
            raise ValueError(
                f"fault rates must be >= 0 and sum to <= 1, not {corrupt}, {drop}, {duplicate}"
            )
        self.port = port
        self.corrupt, self.drop, self.duplicate = corrupt, drop, duplicate
        self.directions = directions
        self.random = random.Random(seed)
        self.counts = FaultCounts()
        self.portstr = getattr(port, "portstr", None) or getattr(port, "port", None)

    @property
    def timeout(self) -> float | None:
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.port.timeout = value

    @property
    def in_waiting(self) -> int:
        return int(getattr(self.port, "in_waiting", 0) or 0)

    def damage(self, data: bytes) -> bytes:
        """data with each byte kept, dropped, duplicated or corrupted; updates the counters."""
        out = bytearray()
        for byte in data:
            self.counts.bytes_seen += 1
            draw = self.random.random()
            if draw < self.drop:
                self.counts.dropped += 1
            elif draw < self.drop + self.duplicate:
                self.counts.duplicated += 1
                out += bytes([byte, byte])
            elif draw < self.drop + self.duplicate + self.corrupt:
                self.counts.corrupted += 1
                out.append(byte ^ self.random.randrange(1, 256))
            else:
                out.append(byte)
        return bytes(out)

    def write(self, data: bytes) -> int | None:
        self.port.write(self.damage(data) if "write" in self.directions else data)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        data = self.port.read(size)
        return self.damage(data) if "read" in self.directions else data

    def reset_input_buffer(self) -> None:
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()
