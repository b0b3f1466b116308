"""Run an artifact's model on the emulated board with images compiled into the firmware."""

import numpy as np

from ajpq.backends.mcu.artifact import Artifact, SelfTest
from ajpq.backends.mcu.firmware import build_board_firmware
from ajpq.backends.mcu.qemu import run_elf
from ajpq.boards import get
from ajpq.errors import AjpqError


def _words(hex_text: str) -> np.ndarray:
    values = np.array(
        [int(hex_text[i : i + 8], 16) for i in range(0, len(hex_text), 8)], dtype=np.int64
    )
    return np.where(values >= 1 << 31, values - (1 << 32), values)


def run_selftest(artifact: Artifact, images: np.ndarray, timeout_s: float) -> SelfTest:
    if images.ndim == 3:
        images = images[None]
    board = get(artifact.board)
    elf, _, _ = build_board_firmware(
        artifact.out_dir / "src", board, artifact.out_dir / "selftest", images, name="selftest"
    )
    result = run_elf(elf, timeout_s=timeout_s, icount=True)
    lines = result.uart_output.decode(errors="replace").splitlines()
    if result.exit_code != 0 or not lines or lines[-1] != "done":
        raise AjpqError(
            f"the self-test firmware on {board.id} failed (exit {result.exit_code});"
            f" its last output was {lines[-3:]!r}"
        )
    _, _, model_hash, source, units = lines[0].split()
    if model_hash != artifact.model_hash:
        raise AjpqError(f"the board ran model {model_hash}, not {artifact.model_hash}; rebuild")
    outputs = [_words(line[2:]) for line in lines if line.startswith("o ")]
    counts = [int(line[2:], 16) * int(units) for line in lines if line.startswith("t ")]
    layers = [
        _words(line[2:]).reshape(-1, 2) * int(units) for line in lines if line.startswith("l ")
    ]
    unit = "instructions" if source == "systick-icount" else "cycles"
    return SelfTest(
        np.stack(outputs).reshape(len(images), *artifact.output_shape),
        np.array(counts),
        unit,
        source,
        np.stack([layer[:, 0] for layer in layers]),
        np.stack([layer[:, 1] for layer in layers]),
    )
