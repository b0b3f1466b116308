"""Issue 15, acceptance 2 on the board: graphs quantized with ``target="tflite"`` (TFLite's
double rounding, TFLite's ADD, an 8-bit head), compiled by the MCU backend and flashed to the
emulated Cortex-M4, answer bit-exact with golden over serial: Skynet 0.25 at 64x128 with a
mixed pruned policy (the M4 conv/dwconv kernels off their single-rounding fast path) and
resnet_tiny at 16x16 (residual adds, global average pool, linear head). The host side of
the same graphs: tests/backend/test_mcu_double_rounding.py."""

from pathlib import Path

import numpy as np
import pytest

import ajpq
from ajpq.boards import Board
from tests.backend.test_mcu_double_rounding import images, tflite_graph

pytestmark = pytest.mark.hil

BOARD_IMAGES = 4


@pytest.mark.parametrize("name", ["skynet-mixed", "resnet_tiny"])
def test_double_rounding_on_the_board_is_bit_exact(
    board_id: str, name: str, tmp_path: Path
) -> None:
    if not board_id.startswith("qemu-"):
        pytest.skip(f"these tests start QEMU; board {board_id} is not emulated")
    graph = tflite_graph(name)
    artifact = ajpq.compile(graph, "mcu", board_id, tmp_path / name)
    x = images(name, BOARD_IMAGES, seed=5)
    x[0] = 255
    expected = graph.run(x)
    with Board(board_id) as board:
        board.flash(artifact)
        with board.open() as session:
            assert session.info()["model_hash"] == artifact.model_hash
            outputs = np.stack([session.infer(image) for image in x])
    assert outputs.shape == expected.shape
    assert np.array_equal(outputs, expected)
    assert len({output.tobytes() for output in expected}) == BOARD_IMAGES  # distinct answers
