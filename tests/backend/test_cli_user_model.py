"""Issue 12, acceptance 3: the user's own model through the command line, as real
subprocesses — `ajpq data digits`, `ajpq train --model`, `ajpq search --model`, then
`ajpq compile` of the searched HwGraph and `ajpq bench` of it on the QEMU board."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.backend.tools import need

FACTORY = "tests.models:resnet_tiny"
WEIGHT_BYTES = 6000
REPO = Path(__file__).resolve().parents[2]
SEARCH_SEED = "0"
# the board is in the loop (the default): calibrated on QEMU, new bests measured there
SEARCH = ("--episodes", "2", "--train-images", "64")


def ajpq_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI run from the repository root, so that `tests.models` imports as in a shell."""
    return subprocess.run(
        [sys.executable, "-m", "ajpq.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """digits.npz (16x16) and m.pt, resnet_tiny trained on it for one epoch."""
    need(request)
    folder = tmp_path_factory.mktemp("user-model")
    data = ajpq_cli("data", "digits", "-o", str(folder / "digits.npz"), "--size", "16x16")
    assert data.returncode == 0, data.stderr
    assert "1,797 images 1x16x16 uint8, labels 0..9" in data.stdout
    result = ajpq_cli(
        "train", "--model", FACTORY, "--data", str(folder / "digits.npz"),
        "--task", "classification", "--epochs", "1", "-o", str(folder / "m.pt"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("val top-1 accuracy 0.")
    return folder


def test_train_search_compile_bench(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    searched = ajpq_cli(
        "search", str(trained / "m.pt"), "--model", FACTORY, "--data",
        str(trained / "digits.npz"), "--task", "classification", "--weight-bytes",
        str(WEIGHT_BYTES), "--seed", SEARCH_SEED, "-o", str(out), *SEARCH,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.startswith("2 candidates; best top-1 accuracy 0.")
    assert "IoU" not in searched.stdout
    candidates = json.loads((out / "candidates.json").read_text())
    best = max(candidates, key=lambda c: c["accuracy"])
    assert (out / "best_policy.json").stat().st_size > 0
    info = ajpq_cli("info", str(out / "best.hwg"), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["weight_bytes"] == best["weight_bytes"] <= WEIGHT_BYTES
    assert list(summary["input_shape"]) == [1, 16, 16] and summary["output_shape"][-1] == 10

    build = tmp_path / "build"
    compiled = ajpq_cli("compile", str(out / "best.hwg"), "-o", str(build))
    assert compiled.returncode == 0, compiled.stderr
    report = json.loads((build / "report.json").read_text())
    assert report["board"] == "qemu-mps2-an386"
    benched = ajpq_cli("bench", str(build), "--json", "--runs", "2", "--warmup", "1")
    assert benched.returncode == 0, benched.stderr
    measured = json.loads(benched.stdout)
    assert measured["model_hash"] == report["model_hash"]
    assert (measured["unit"], measured["timer_source"]) == ("instructions", "systick-icount")
    # instruction counts: the same to within the SysTick interrupts that land in a run
    assert 0 < measured["min_count"] <= measured["count"] <= measured["max_count"]
    assert measured["max_count"] - measured["min_count"] < measured["count"] * 1e-4
    per_layer = measured["per_layer"]
    assert [layer["index"] for layer in per_layer] == list(range(len(per_layer)))
    assert 0 < sum(layer["count"] for layer in per_layer) <= measured["count"]


def test_search_from_a_plain_state_dict(trained: Path, tmp_path: Path) -> None:
    state = torch.load(trained / "m.pt", weights_only=True)["state_dict"]
    torch.save(state, tmp_path / "weights.pt")
    out = tmp_path / "search"
    searched = ajpq_cli(
        "search", "--model", FACTORY, "--weights", str(tmp_path / "weights.pt"), "--data",
        str(trained / "digits.npz"), "--task", "classification", "--weight-bytes",
        str(WEIGHT_BYTES), "--seed", SEARCH_SEED, "-o", str(out), *SEARCH[2:], "--episodes", "1",
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.startswith("1 candidates; best top-1 accuracy 0.")
    assert (out / "best.hwg").stat().st_size > 0
