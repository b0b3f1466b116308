"""Session: run and time the model on a board that runs the ajpq server firmware.

A Session talks the binary protocol of ajpq.boards.protocol over a Link: it loads an image,
runs inferences and reads back the outputs, the board's timer counts and per-layer counts.
Its first request is INFO, and it sizes every later request from the frame body the board
reports there (``Limits.for_body``), so older firmware with 244-byte frames still works.
Counts are in the unit of the board's timer: cycles for "dwt" (a real core), instructions
for "systick-icount" (QEMU with -icount; never real cycles, so no latency in seconds).
"""

import struct
from typing import Any

import numpy as np

from ajpq.boards.measurement import Measurement
from ajpq.boards.protocol import (
    CMD_INFO,
    CMD_LOAD_INPUT,
    CMD_QUIT,
    CMD_READ_LAYERS,
    CMD_READ_OUTPUT,
    CMD_RUN,
    PROTOCOL_VERSION,
    BoardProtocolError,
    Limits,
    Link,
)
from ajpq.errors import AjpqError

_INFO_HEAD = struct.Struct("<HIIIHH")
_RUN_REPLY = struct.Struct("<QII")
_STRINGS = ("firmware_version", "model_hash", "board", "timer_source")
_INFO_TAIL = struct.Struct("<IIB")  # weights CRC computed, weights CRC expected, check result
_FLASH_THIS_AJPQ = "compile and flash the model with this ajpq"
MODEL_CHECKS = {
    0: "verified",
    1: "the weights in flash do not match their CRC",
    2: "a Huffman table in flash failed validation",
    3: "a weight stream ended early during a run",
}


def parse_info(payload: bytes) -> dict[str, Any]:
    """Decode an INFO reply payload into a dict (see docs/protocol.md)."""
    if len(payload) < _INFO_HEAD.size:
        raise BoardProtocolError(
            f"the board's INFO reply has {len(payload)} bytes, too few; {_FLASH_THIS_AJPQ}"
        )
    version, units, inputs, outputs, layers, max_body = _INFO_HEAD.unpack_from(payload)
    info: dict[str, Any] = {
        "protocol_version": version,
        "units_per_tick": units,
        "input_elements": inputs,
        "output_elements": outputs,
        "layers": layers,
        "max_body": max_body,
    }
    offset = _INFO_HEAD.size
    for key in _STRINGS:
        if offset >= len(payload):
            raise BoardProtocolError(
                f"the board's INFO reply ends before its {key}; {_FLASH_THIS_AJPQ}"
            )
        length = payload[offset]
        if offset + 1 + length > len(payload):
            raise BoardProtocolError(
                f"the board's INFO reply ends inside its {key} ({length} bytes from byte "
                f"{offset + 1} of {len(payload)}); {_FLASH_THIS_AJPQ}"
            )
        info[key] = _board_text(payload[offset + 1 : offset + 1 + length])
        offset += 1 + length
    if version >= 2:
        if len(payload) < offset + _INFO_TAIL.size:
            raise BoardProtocolError(
                f"the board's INFO reply ends before its weights CRC; {_FLASH_THIS_AJPQ}"
            )
        crc, expected, check = _INFO_TAIL.unpack_from(payload, offset)
        info.update(weights_crc=f"{crc:08x}", expected_weights_crc=f"{expected:08x}")
        info["model_check"] = MODEL_CHECKS.get(check, f"unknown result {check}")
    return info


def _board_text(raw: bytes) -> str:
    """A string the board sent, each byte that is not printable ASCII shown as U+FFFD (so a
    message that quotes it stays on one line)."""
    return "".join(chr(byte) if 0x20 <= byte < 0x7F else "\ufffd" for byte in raw)


def check_info(info: dict[str, Any], url: str, expect: dict[str, str] | None = None) -> None:
    """One-sentence AjpqError unless the firmware speaks this protocol, its model passed
    its check of flash, and (with ``expect``) it is the artifact's model and weights."""
    if info["protocol_version"] != PROTOCOL_VERSION:
        raise AjpqError(
            f"the firmware on {url} speaks protocol {info['protocol_version']} and this ajpq "
            f"speaks {PROTOCOL_VERSION}; {_FLASH_THIS_AJPQ}"
        )
    if info["model_check"] != "verified":
        raise AjpqError(
            f"the firmware on {url} failed its check of flash at boot ({info['model_check']}: "
            f"CRC {info['weights_crc']}, built {info['expected_weights_crc']}); flash the "
            "artifact again"
        )
    for key in ("model_hash", "weights_crc"):
        if expect and expect.get(key) and info[key] != expect[key]:
            raise AjpqError(
                f"the board on {url} runs {key.replace('_', ' ')} {info[key]}, not the "
                f"flashed artifact's {expect[key]}; flash the artifact again"
            )


class Session:
    """The model on a board: infer, benchmark, read timings. Close it (or use `with`)."""

    def __init__(
        self,
        link: Link,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...],
        clock_hz: int | None = None,
        run_timeout_s: float = 60.0,
        expect: dict[str, str] | None = None,
    ) -> None:
        self.link = link
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)
        self.clock_hz = clock_hz
        self.run_timeout_s = run_timeout_s
        self.expect = expect  # model_hash and weights_crc of the flashed artifact, if known
        self._info: dict[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        """Firmware version, model hash, board, timer source and units, tensor sizes."""
        if self._info is None:
            info = parse_info(self.link.request(CMD_INFO))
            check_info(info, self.link.url, self.expect)
            inputs, outputs = int(np.prod(self.input_shape)), int(np.prod(self.output_shape))
            if (info["input_elements"], info["output_elements"]) != (inputs, outputs):
                raise AjpqError(
                    f"the firmware on {self.link.url} (model {info['model_hash']}) takes "
                    f"{info['input_elements']} inputs and gives {info['output_elements']} "
                    f"outputs, not {inputs} and {outputs}; flash the firmware of this model"
                )
            self._info = info
            self.link.limits = Limits.for_body(info["max_body"])
        return self._info

    @property
    def unit(self) -> str:
        return "cycles" if self.info()["timer_source"] == "dwt" else "instructions"

    def load(self, x: np.ndarray) -> None:
        """Send one uint8 image (C, H, W) or (1, C, H, W) to the board's input buffer."""
        x = np.asarray(x)
        if x.shape not in (self.input_shape, (1, *self.input_shape)) or x.dtype != np.uint8:
            raise AjpqError(
                f"the board takes one uint8 image of shape {self.input_shape}, "
                f"not {x.dtype} {x.shape}"
            )
        self.info()
        pixels = np.ascontiguousarray(x).tobytes()
        size = self.link.limits.input_chunk
        for offset in range(0, len(pixels), size):
            chunk = pixels[offset : offset + size]
            self.link.request(CMD_LOAD_INPUT, struct.pack("<I", offset) + chunk)

    def run(self, runs: int = 1, warmup: int = 0) -> tuple[int, int, int]:
        """Run warmup + runs inferences; (total, min, max) ticks of the measured runs."""
        if not 1 <= runs <= 0xFFFF or not 0 <= warmup <= 0xFFFF:
            raise AjpqError(f"runs must be 1..65535 and warmup 0..65535, not {runs}, {warmup}")
        self.info()  # the protocol, flash and artifact checks come before any run
        payload = self.link.request(
            CMD_RUN, struct.pack("<HH", runs, warmup), timeout_s=self.run_timeout_s
        )
        total, smallest, largest = _RUN_REPLY.unpack(payload[: _RUN_REPLY.size])
        return total, smallest, largest

    def read_output(self) -> np.ndarray:
        """The output of the last run, reshaped to output_shape (int64)."""
        total = self.info()["output_elements"]
        size = self.link.limits.output_values
        values: list[int] = []
        for offset in range(0, total, size):
            count = min(size, total - offset)
            payload = self.link.request(CMD_READ_OUTPUT, struct.pack("<IH", offset, count))
            values += struct.unpack(f"<{count}i", payload[: 4 * count])
        return np.array(values, dtype=np.int64).reshape(self.output_shape)

    def read_layers(self) -> list[dict[str, int]]:
        """Per-layer counts of the last run, in the timer's unit."""
        layers, units = self.info()["layers"], self.info()["units_per_tick"]
        size = self.link.limits.layer_entries
        entries: list[dict[str, int]] = []
        for first in range(0, layers, size):
            count = min(size, layers - first)
            payload = self.link.request(CMD_READ_LAYERS, struct.pack("<HH", first, count))
            ticks = struct.unpack(f"<{2 * count}I", payload[: 8 * count])
            for k in range(count):
                entries.append(
                    {
                        "index": first + k,
                        "count": ticks[2 * k] * units,
                        "decode_count": ticks[2 * k + 1] * units,
                    }
                )
        return entries

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run one image; the output, shaped like output_shape (with x's batch axis, if any)."""
        self.load(x)
        self.run(1, 0)
        output = self.read_output()
        return output[None] if np.ndim(x) == len(self.input_shape) + 1 else output

    def benchmark(
        self, runs: int = 10, warmup: int = 2, x: np.ndarray | None = None
    ) -> Measurement:
        """Time `runs` inferences after `warmup` ones (on x, or the image loaded last)."""
        if x is not None:
            self.load(x)
        info = self.info()
        total, smallest, largest = self.run(runs, warmup)
        units = info["units_per_tick"]
        count = total * units // runs
        unit = self.unit
        latency = count / self.clock_hz if unit == "cycles" and self.clock_hz else None
        return Measurement(
            output=self.read_output(),
            count=count,
            unit=unit,
            per_layer=self.read_layers(),
            timer_source=info["timer_source"],
            latency_s=latency,
            runs=runs,
            min_count=smallest * units,
            max_count=largest * units,
            info=dict(info),
        )

    def quit(self) -> None:
        """Stop the firmware (it calls ajpq_port_exit(0); QEMU then exits)."""
        self.link.request(CMD_QUIT)

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
