"""The board in the search loop (issue 5, acceptance 1 and 6): Skynet w0.25 at 64x128 searched
for 4 episodes with qemu-mps2-an386 calibrating the estimate and measuring the best
candidates over serial; a board that stops answering pauses, retries and ends the search
cleanly with its checkpoint intact."""

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import ajpq
from ajpq.search import Budget, SearchConfig, search
from ajpq.search import hardware as hardware_module
from ajpq.search.episodes import Episodes
from ajpq.search.hardware import SWEEP, BoardLost
from tests.backend.tools import need

BOARD = "qemu-mps2-an386"
BUDGET = Budget(weight_bytes=12_000)  # the dense 8-bit model needs 27,483 B


@pytest.fixture(autouse=True)
def toolchain(request: pytest.FixtureRequest) -> None:
    need(request)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    torch.manual_seed(0)
    model = ajpq.models.skynet(0.25, (64, 128))
    train, val = ajpq.data.aerial(240, 120, input_size=(64, 128))
    config = SearchConfig(warmup_episodes=2, train_images=240, val_images=120, calibrate=True)
    out = tmp_path_factory.mktemp("search")
    result = search(
        model, train, val, board=BOARD, budget=BUDGET, episodes=4, out_dir=out, config=config,
        progress=False,
    )  # fmt: skip
    return result, out


def test_every_candidate_meets_the_budget(searched) -> None:
    result, _ = searched
    assert [c.episode for c in result.candidates] == [0, 1, 2, 3]
    assert all(c.weight_bytes <= BUDGET.weight_bytes for c in result.candidates)
    assert result.best_graph.summary()["weight_bytes"] == result.best.weight_bytes


def test_the_record_holds_the_calibration_measured_on_the_board(searched) -> None:
    result, out = searched
    calibration = [r for r in result.hardware if r.kind == "calibration"]
    assert [r.label for r in calibration] == [name for name, _, _ in SWEEP]
    assert all(r.unit == "instructions" and r.measured > 0 for r in calibration)
    dense, light, half, most = calibration
    # 50% and 70% pruned run faster than dense, the heavier the faster; 20% pruned at 2 bits
    # runs about as long as dense (26.1M vs 25.8M instructions: 2-bit Huffman decoding costs
    # what the pruning saves), so it is only checked against the dense count's neighbourhood
    assert most.measured < half.measured < dense.measured
    assert abs(light.measured - dense.measured) < 0.05 * dense.measured
    saved = json.loads((out / "hardware.json").read_text())
    assert [r["measured"] for r in saved] == [r.measured for r in result.hardware]


def test_the_best_candidate_was_measured_on_the_board(searched) -> None:
    result, out = searched
    best = result.best
    spec = ajpq.boards.get(BOARD)
    record = next(r for r in result.hardware if r.episode == best.episode)
    assert record.kind == "candidate" and record.measured > 0
    assert best.measured_latency == record.measured / spec.clock_hz
    assert abs(record.error) == abs(record.estimated - record.measured) / record.measured
    measured = [c for c in result.candidates if c.measured_latency is not None]
    state = json.loads((out / "state.json").read_text())
    assert [r["episode"] for r in state["hardware"]] == [c.episode for c in measured]


class Unplugged:
    """A real QEMU board that is unplugged after flashing: its emulator is killed, so every
    request on the session fails like a pulled USB cable."""

    def __init__(self, board: str) -> None:
        self.board = ajpq.boards.Board(board)

    def __enter__(self) -> "Unplugged":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.board.close()

    def flash(self, artifact: Any) -> None:
        self.board.flash(artifact)

    def open(self) -> Any:
        session = self.board.open()
        assert self.board.qemu is not None
        self.board.qemu.kill()
        return session


def test_a_board_that_disconnects_pauses_retries_and_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = ajpq.models.skynet(0.125, (32, 64))
    train, val = ajpq.data.aerial(32, 16, input_size=(32, 64))
    config = SearchConfig(warmup_episodes=1, calibrate=True)
    boards: list[str] = []

    def connect(board: str) -> Any:  # the sweep and episode 0 on the board, then unplugged
        boards.append(board)
        return ajpq.boards.Board(board) if len(boards) <= len(SWEEP) + 1 else Unplugged(board)

    def improving(self: Episodes, qmodel: Any) -> float:  # every episode a new best
        return float(len(self.state.candidates))

    monkeypatch.setattr(hardware_module, "_board", connect)
    monkeypatch.setattr(hardware_module, "PAUSE_S", 0.1)
    monkeypatch.setattr(Episodes, "fine_tune", improving)
    with pytest.raises(BoardLost) as raised:
        search(
            model, train, val, board=BOARD, budget=Budget(weight_bytes=1200), episodes=3,
            out_dir=tmp_path, config=config, progress=False,
        )  # fmt: skip
    message = str(raised.value)
    assert "stopped answering while measuring episode-1 (3 tries" in message
    assert f"the checkpoint in {tmp_path} keeps the 1 finished episodes" in message
    assert len(boards) == len(SWEEP) + 1 + 3  # three tries at episode 1
    state = json.loads((tmp_path / "state.json").read_text())
    assert [c["episode"] for c in state["candidates"]] == [0]
    assert [r["label"] for r in state["hardware"]] == ["episode-0"]
    monkeypatch.setattr(hardware_module, "_board", ajpq.boards.Board)  # plugged in again
    resumed = search(
        model, train, val, board=BOARD, budget=Budget(weight_bytes=1200), episodes=3,
        out_dir=tmp_path, config=config, resume=True, progress=False,
    )  # fmt: skip
    assert resumed.candidates[0].to_dict() == state["candidates"][0]
    assert [c.episode for c in resumed.candidates] == [0, 1, 2]
    assert [r.label for r in resumed.hardware if r.kind == "candidate"] == [
        "episode-0", "episode-1", "episode-2",
    ]  # fmt: skip
