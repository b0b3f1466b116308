"""`ajpq search` from the command line: the board in the loop, --baselines with the table and
the Pareto plot, --resume, and an impossible budget as one sentence with exit status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backend.tools import need, need_finn, need_ray


def ajpq_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ajpq.cli", *args], capture_output=True, text=True, timeout=600,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    need(request)
    path = tmp_path_factory.mktemp("cli") / "skynet.pt"
    trained = ajpq_cli(
        "train", "-o", str(path), "--width", "0.125", "--size", "32x64", "--n-train", "32",
        "--n-val", "16", "--epochs", "1",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return path


SMALL = ("--n-train", "32", "--n-val", "16", "--train-images", "32")


def test_search_with_baselines_and_the_board_in_the_loop(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    args = ("search", str(checkpoint), "--weight-bytes", "1500", "-o", str(out), *SMALL)
    first = ajpq_cli(*args, "--episodes", "1", "--baselines")
    assert first.returncode == 0, first.stderr
    assert "1 candidates; best mean IoU" in first.stdout and "measured" in first.stdout
    assert (out / "pareto.png").stat().st_size > 0
    names = [c["name"] for c in json.loads((out / "baselines" / "baselines.json").read_text())]
    assert names == ["uniform-8", "uniform-4", "deep-compression", "haq", "amc"]
    kinds = [r["kind"] for r in json.loads((out / "hardware.json").read_text())]
    assert kinds == ["calibration"] * 4 + ["candidate"]
    resumed = ajpq_cli(*args, "--episodes", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    state = json.loads((out / "state.json").read_text())
    assert [c["episode"] for c in state["candidates"]] == [0, 1]


def test_finalists_from_the_command_line(checkpoint: Path, tmp_path: Path) -> None:
    args = ("search", str(checkpoint), "--weight-bytes", "1500", *SMALL)
    found = ajpq_cli(
        *args, "-o", str(tmp_path / "a"), "--episodes", "2", "--finalists", "2",
        "--finalist-tolerance", "1", "--finalist-bias-correction", "off",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert "finalist 2/2" in found.stderr and "measured" in found.stdout
    finalists = json.loads((tmp_path / "a" / "finalists.json").read_text())
    assert len(finalists) == 2 and all(f["finalist_accuracy"] is not None for f in finalists)
    picked = [f for f in finalists if f["picked"]]
    assert [f["weight_bytes"] for f in picked] == [min(f["weight_bytes"] for f in finalists)]
    for option, value in (("--finalists", "-1"), ("--finalist-bias-correction", "last")):
        refused = ajpq_cli(*args, "-o", str(tmp_path / "b"), option, value)  # before the board
        assert refused.returncode == 2 and option[2:].replace("-", "_") in refused.stderr
        assert "Traceback" not in refused.stderr


def test_an_impossible_budget_is_one_sentence(checkpoint: Path, tmp_path: Path) -> None:
    result = ajpq_cli(
        "search", str(checkpoint), "--weight-bytes", "10", "-o", str(tmp_path), *SMALL,
        "--no-board-in-loop",
    )  # fmt: skip
    assert result.returncode == 2
    assert "the smallest policy in the search space" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_same_search_runs_on_the_finn_backend_at_an_fps_budget(
    checkpoint: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    need_finn(request)
    out = tmp_path / "search-finn"
    result = ajpq_cli(
        "search", str(checkpoint), "--backend", "finn", "--board", "ultra96-v2", "--fps", "200",
        "--board-fit", "--episodes", "1", "-o", str(out), *SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 candidates; best mean IoU" in result.stdout
    records = json.loads((out / "hardware.json").read_text())
    assert [r["kind"] for r in records] == ["calibration"] * 4 + ["candidate"]
    assert records[-1]["measured_fps"] > 0 and records[-1]["estimated_fps"] >= 200
    assert "estimate vs reference" in result.stderr  # the table, fps and LUT beside finn-plus's


def test_search_on_two_local_workers(
    checkpoint: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    need_ray(request)
    out = tmp_path / "farm"
    args = ("search", str(checkpoint), "--weight-bytes", "1500", "-o", str(out), *SMALL)
    elsewhere = {"RAY_ADDRESS": "127.0.0.1:1"}  # --workers starts its own cluster regardless
    done = ajpq_cli(*args, "--episodes", "2", "--workers", "2", env=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "2 candidates; best mean IoU" in done.stdout
    state = json.loads((out / "state.json").read_text())
    assert [c["measured_latency"] is not None for c in state["candidates"]] == [True, True]
    farm = json.loads((out / "farm.json").read_text())
    workers = sorted(c["worker"] for c in farm["candidates"])
    assert workers == ["qemu-mps2-an386#0", "qemu-mps2-an386#1"]  # one round of K = 2


def test_workers_and_a_ray_address_together_is_one_sentence(
    checkpoint: Path, tmp_path: Path
) -> None:
    args = ("search", str(checkpoint), "--weight-bytes", "1500", "-o", str(tmp_path), *SMALL)
    done = ajpq_cli(*args, "--workers", "2", "--ray-address", "127.0.0.1:6379")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: give --workers (boards here) or --ray-address (a farm), not both"
    )
