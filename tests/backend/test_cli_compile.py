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


def test_quantize_for_tflite_then_compile_with_the_tflite_backend(tmp_path: Path) -> None:
    from ajpq.graph.hwgraph import HwGraph
    from ajpq.models.checkpoint import save_model

    torch.manual_seed(0)
    save_model(skynet(0.125, (32, 64)), tmp_path / "m.pt")
    quantized = ajpq_cli(
        "quantize", str(tmp_path / "m.pt"), "--bits", "4", "--target", "tflite",
        "-o", str(tmp_path / "t.hwg"),
    )  # fmt: skip
    assert quantized.returncode == 0, quantized.stderr
    graph = HwGraph.load(tmp_path / "t.hwg")
    assert graph.meta["target"] == "tflite" and graph.output.bits == 8
    result = ajpq_cli(
        "compile", str(tmp_path / "t.hwg"), "--backend", "tflite", "-o", str(tmp_path / "b")
    )
    assert result.returncode == 0, result.stderr
    assert "TFLM == golden checked" in result.stdout
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["checked_images"] == 4
    assert (tmp_path / "b" / "model.tflite").stat().st_size == report["file_bytes"]["tflite"]
    flashed = ajpq_cli("flash", str(tmp_path / "b"), "--board", "qemu-mps2-an386")
    assert flashed.returncode == 2 and "Traceback" not in flashed.stderr
    assert "from the tflite backend" in flashed.stderr


def test_the_tflite_backend_refuses_an_ajpq_graph_in_one_line(
    graph_file: Path, tmp_path: Path
) -> None:
    result = ajpq_cli("compile", str(graph_file), "--backend", "tflite", "-o", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert 'target="tflite"' in result.stderr
