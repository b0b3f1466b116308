"""The user-facing board path: Board.flash/open, `ajpq bench`, refusing a foreign artifact."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.boards import Board
from ajpq.boards.board import BoardError

pytestmark = pytest.mark.hil
SIZE = (32, 64)


@pytest.fixture(scope="module")
def compiled(board_id: str, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    torch.manual_seed(1)
    model = ajpq.models.skynet(0.125, SIZE)
    graph = ajpq.lower(ajpq.quantize(model, ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 4])))
    artifact = ajpq.compile(graph, "mcu", board_id, tmp_path_factory.mktemp("board") / "m")
    return graph, artifact


def test_flash_open_infer_benchmark(board_id: str, compiled: tuple) -> None:
    graph, artifact = compiled
    x = np.random.default_rng(5).integers(0, 256, (5, 3, *SIZE), dtype=np.uint8)
    with Board(board_id) as board:
        board.flash(artifact)
        with board.open() as session:
            assert session.info()["model_hash"] == artifact.model_hash
            for image, expected in zip(x, graph.run(x), strict=True):
                assert np.array_equal(session.infer(image), expected)
            first = session.benchmark(runs=2, warmup=1)
            second = session.benchmark(runs=2, warmup=1)
    assert first.count == second.count and first.count > 0
    if board_id.startswith("qemu-"):
        assert (first.unit, first.timer_source, first.latency_s) == (
            "instructions",
            "systick-icount",
            None,
        )
        assert board.qemu is None  # the emulator is stopped on exit


def test_an_artifact_for_another_board_is_refused(compiled: tuple) -> None:
    _, artifact = compiled
    with pytest.raises(BoardError, match="built for qemu-mps2-an386, not stm32f746g-disco"):
        Board("stm32f746g-disco").flash(artifact)


def test_ajpq_bench_cli(board_id: str, compiled: tuple) -> None:
    _, artifact = compiled
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ajpq.cli",
            "bench",
            str(artifact.out_dir),
            "--board",
            board_id,
            "--runs",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["model_hash"] == artifact.model_hash
    assert measured["count"] > 0 and len(measured["per_layer"]) == len(graph_layers(artifact))


def graph_layers(artifact: object) -> list:
    plan = json.loads((Path(artifact.out_dir) / "plan.json").read_text())
    return [name for name in plan["tensors"] if name != "x"]
