"""`ajpq compile` as a real subprocess (needs gcc and arm-none-eabi-gcc)."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from ajpq.graph.lower import lower
from ajpq.models import skynet
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.unit.test_cli import ajpq_cli


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = skynet(0.125, (32, 64)).eval()
    path = tmp_path_factory.mktemp("cli") / "m.hwg"
    lower(quantize(model, Policy.from_sparsity(model, 0.5, bits=4))).save(path)
    return path


def test_compile_writes_an_artifact(graph_file: Path, tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("gcc") is None:
        pytest.skip("gcc / arm-none-eabi-gcc missing (run make setup)")
    result = ajpq_cli(
        "compile",
        str(graph_file),
        "--backend",
        "mcu",
        "--board",
        "qemu-mps2-an386",
        "-o",
        str(tmp_path / "build"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "build" / "report.json").read_text())
    assert report["board"] == "qemu-mps2-an386"
    assert (tmp_path / "build" / "firmware" / "ajpq.elf").exists()
    assert "peak arena" in result.stdout
