"""The CLI: real subprocesses, errors as one line with exit status 2 and no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ajpq.graph.lower import lower
from ajpq.models import skynet
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize


def ajpq_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ajpq.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = skynet(0.125, (32, 64)).eval()
    path = tmp_path_factory.mktemp("cli") / "m.hwg"
    lower(quantize(model, Policy.from_sparsity(model, 0.5, bits=4))).save(path)
    return path


def test_info_prints_the_summary(graph_file: Path) -> None:
    result = ajpq_cli("info", str(graph_file), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["layers"]) == 13
    assert summary["weight_bytes"] == sum(layer["weight_bytes"] for layer in summary["layers"])
    table = ajpq_cli("info", str(graph_file))
    assert "total" in table.stdout and f"{summary['macs']:,}" in table.stdout


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage", b"\x00" * 100])
def test_info_on_a_malformed_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.hwg"
    bad.write_bytes(content)
    result = ajpq_cli("info", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_quantize_with_a_policy_for_another_model(tmp_path: Path) -> None:
    from ajpq.models.checkpoint import save_model

    torch.manual_seed(0)
    save_model(skynet(0.125, (32, 64)), tmp_path / "m.pt")
    Policy.uniform(skynet(0.25, (32, 64)), 8, 8).save(tmp_path / "p.json")
    result = ajpq_cli(
        "quantize",
        str(tmp_path / "m.pt"),
        "--policy",
        str(tmp_path / "p.json"),
        "-o",
        str(tmp_path / "out.hwg"),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "output channels" in result.stderr
    assert not (tmp_path / "out.hwg").exists()


def test_compile_for_an_unknown_board(graph_file: Path, tmp_path: Path) -> None:
    result = ajpq_cli("compile", str(graph_file), "--board", "nope", "-o", str(tmp_path))
    assert result.returncode == 2
    assert "unknown board 'nope'; known boards: nrf52840-dk, nucleo-h743zi" in result.stderr


def test_an_unknown_option_is_one_line_and_exit_2() -> None:
    result = ajpq_cli("demo", "--out", "x")
    assert result.returncode == 2
    assert "No such option: --out" in result.stderr
    assert "Traceback" not in result.stderr and "│" not in result.stderr
