"""The MCU backend: generated C on the host and firmware on the emulated Cortex-M4 (flashed
to a Board, run over serial by a Session) are bit-exact with the golden executor; the report,
budget and error paths."""

import copy
import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import mcu
from ajpq.backends.mcu.firmware import build_server_firmware
from ajpq.backends.mcu.host import FIRMWARE, SANITIZE_FLAGS, include_dirs, runtime_sources
from ajpq.boards import Board, get
from ajpq.deploy import load_artifact
from ajpq.errors import AjpqError, BudgetExceeded, ToolchainMissing, UnsupportedOp
from tests.backend.tools import need
from tests.unit.graph.conftest import randomize_batchnorm

SIZE = (64, 128)
POLICIES = ["uniform8", "uniform4", "mixed0", "mixed1", "mixed2"]
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(ajpq.models.skynet(0.25, SIZE))


def make_graph(model: torch.nn.Module, name: str) -> ajpq.HwGraph:
    if name.startswith("uniform"):
        bits = int(name[-1])
        policy = ajpq.Policy.uniform(model, bits, bits)
    else:
        policy = ajpq.Policy.random(model, seed=int(name[-1]), prune_max=0.6)
    return ajpq.lower(ajpq.quantize(model, policy))


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, *SIZE), dtype=np.uint8)


@pytest.fixture(scope="module", params=POLICIES)
def built(request: pytest.FixtureRequest, model, tmp_path_factory) -> tuple:
    need(request, "gcc")
    need(request, "arm-none-eabi-gcc")
    graph = make_graph(model, request.param)
    out = tmp_path_factory.mktemp(request.param)
    return request.param, graph, ajpq.compile(graph, "mcu", "qemu-mps2-an386", out)


def test_host_build_is_bit_exact(built) -> None:
    name, graph, artifact = built
    x = images(50, seed=1)
    assert np.array_equal(artifact.run_host(x), graph.run(x))


def test_firmware_on_qemu_is_bit_exact(built, request: pytest.FixtureRequest) -> None:
    need(request, "qemu-system-arm")
    name, graph, artifact = built
    x = images(5, seed=2)
    with Board("qemu-mps2-an386") as board:
        board.flash(artifact)
        with board.open() as session:
            outputs = np.stack([session.infer(image) for image in x])
            first = session.benchmark(runs=2, warmup=0, x=x[0])
            second = session.benchmark(runs=2, warmup=0)
    assert np.array_equal(outputs, graph.run(x))
    assert np.array_equal(first.output, graph.run(x[:1])[0])
    assert (first.unit, first.timer_source, first.latency_s) == (
        "instructions",
        "systick-icount",
        None,
    )
    assert first.count > 0 and first.min_count == first.max_count  # -icount: deterministic
    assert (second.count, second.per_layer) == (first.count, first.per_layer)
    assert len(first.per_layer) == len(graph.nodes) - 1
    assert sum(layer["count"] for layer in first.per_layer) <= first.count
    print(f"{name}: {first.count} instructions per inference on QEMU M4")


def test_report_numbers_agree(built) -> None:
    _, graph, artifact = built
    report = artifact.report
    summary = graph.summary()
    weights = report["weights"]
    assert weights["int8_bytes"] == summary["params"] == sum(x["weights"] for x in report["layers"])
    assert weights["fp32_bytes"] == 4 * summary["params"]
    assert (
        weights["fixed_width_bytes"]
        == (sum(x["fixed_width_bits"] for x in report["layers"]) + 7) // 8
    )
    for layer in report["layers"]:  # Huffman: within one bit per symbol of the entropy
        assert layer["entropy_bits"] - 1 <= layer["huffman_bits"]
        assert layer["huffman_bits"] <= layer["entropy_bits"] + layer["weights"]
    assert report["peak_arena_bytes"] <= report["ram_bytes"] <= report["budget"]["ram_bytes"]
    assert report["flash_bytes"] == report["code_bytes"] + report["model_data_bytes"]
    assert (artifact.out_dir / "report.json").exists()


def test_biases_are_stored_narrow_and_uniform_requantization_once(
    model, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """int16 biases where every bias of the layer fits, int32 where one does not; one
    multiplier and shift where every channel has the same; still bit-exact."""
    need(request, "gcc")
    graph = copy.deepcopy(make_graph(model, "mixed1"))
    layers = [(i, n) for i, n in enumerate(graph.nodes[1:]) if "bias" in n.arrays]
    (wide, wide_node), (uniform, uniform_node) = layers[0], layers[1]
    wide_node.arrays["bias"] = wide_node.arrays["bias"].copy()
    wide_node.arrays["bias"][0] = 40_000
    for key in ("multiplier", "shift"):
        uniform_node.arrays[key] = np.full_like(
            uniform_node.arrays[key], uniform_node.arrays[key][0]
        )
    artifact = mcu.compile(graph, "qemu-mps2-an386", tmp_path, firmware=False)
    weights_c = (tmp_path / "src" / "ajpq_weights.c").read_text()
    model_c = (tmp_path / "src" / "ajpq_model.c").read_text()
    bias_types = {i: t for t, i in re.findall(r"const (\w+) ajpq_w(\d+)_bias\[", weights_c)}
    assert bias_types == {str(i): "int32_t" if i == wide else "int16_t" for i, _ in layers}
    assert f"const int32_t ajpq_w{uniform}_multiplier[1]" in weights_c
    assert f".requant = {{1, ajpq_w{uniform}_multiplier, ajpq_w{uniform}_shift, " in model_c
    assert model_c.count("ajpq_widen_bias(ajpq_w") == len(layers) - 1
    x = images(20, seed=4)
    assert np.array_equal(artifact.run_host(x), graph.run(x))


def test_host_runtime_under_asan_and_ubsan(built, tmp_path: Path) -> None:
    _, graph, artifact = built
    src = artifact.out_dir / "src"
    exe = tmp_path / "driver"
    command = [
        "gcc",
        "-std=c99",
        "-O1",
        *SANITIZE_FLAGS,
        *(f"-I{d}" for d in include_dirs(src)),
        str(src / "ajpq_model.c"),
        str(src / "ajpq_weights.c"),
        *map(str, runtime_sources()),
        str(HERE / "fixtures" / "host_driver.c"),
        "-o",
        str(exe),
    ]
    subprocess.run(command, check=True, capture_output=True)
    x = images(3, seed=3)
    run = subprocess.run(
        [str(exe)], input=x.tobytes(), capture_output=True, env={"ASAN_OPTIONS": "detect_leaks=0"}
    )
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert run.stderr == b""
    out = np.frombuffer(run.stdout, dtype=np.int32).reshape(3, *graph.output.shape)
    assert np.array_equal(out, graph.run(x))


def test_oversize_model_is_refused_before_linking(model, tmp_path: Path) -> None:
    small = dataclasses.replace(get("qemu-mps2-an386"), ram_bytes=64 * 1024)
    with pytest.raises(BudgetExceeded, match=r"bytes of RAM .* but qemu-mps2-an386 has 65,536"):
        mcu.compile(make_graph(model, "uniform8"), small, tmp_path)


def test_linker_script_enforces_the_budget(
    model, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    need(request, "arm-none-eabi-gcc")
    artifact = mcu.compile(
        make_graph(model, "uniform4"), "qemu-mps2-an386", tmp_path / "a", firmware=False
    )
    small = dataclasses.replace(get("qemu-mps2-an386"), ram_bytes=96 * 1024)
    with pytest.raises(AjpqError, match="RAM"):
        build_server_firmware(artifact.out_dir / "src", small, tmp_path / "fw")


def test_unsupported_attribute_names_the_node(model, tmp_path: Path) -> None:
    graph = make_graph(model, "uniform8")
    graph.node("bundle2.dw").attrs["dilation"] = 2
    with pytest.raises(UnsupportedOp, match=r"'bundle2.dw' uses dilation=2; the mcu backend"):
        mcu.compile(graph, "qemu-mps2-an386", tmp_path)


def test_missing_cross_compiler_says_which_package(model, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(ToolchainMissing, match="gcc-arm-none-eabi"):
        build_server_firmware(FIRMWARE, get("qemu-mps2-an386"), tmp_path / "fw")


def test_a_build_dir_loads_from_anywhere_and_after_a_move(
    built, tmp_path: Path, monkeypatch
) -> None:
    _, _, artifact = built
    moved = tmp_path / "moved"
    shutil.copytree(artifact.out_dir, moved)
    monkeypatch.chdir(tmp_path.parent)
    loaded = load_artifact(moved)
    assert loaded.elf == moved / "firmware" / "ajpq.elf" and loaded.elf.is_file()
    assert loaded.host_library.is_file() and all(p.is_file() for p in loaded.sources)
    assert loaded.model_hash == artifact.model_hash and loaded.report == artifact.report
