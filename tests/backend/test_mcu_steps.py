"""The mcu compile as named, checkpointed steps (backends/mcu/steps.py) and the memory rules
written once (backends/mcu/budget.py, huffman.stored_weight_bytes), checked against what gcc
and arm-none-eabi-gcc really build."""

import ctypes
import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest
import torch

from ajpq.backends import mcu
from ajpq.backends.mcu import budget, steps
from ajpq.backends.mcu.huffman import stored_weight_bytes
from ajpq.backends.mcu.plan import plan
from ajpq.backends.mcu.report import symbol_bytes
from ajpq.backends.mcu.toolchain import FIRMWARE_DIR
from ajpq.boards import get
from ajpq.errors import BudgetExceeded
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.graph.sort_channels_by_bits import sort_channels_by_bits
from ajpq.models import skynet
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.backend import kernel_abi
from tests.backend.tools import need

CODED = re.compile(r"^ajpq_w\d+_g\d+_")  # a weight stream or one of its code-table arrays


@pytest.fixture(scope="module")
def graphs() -> dict[str, HwGraph]:
    torch.manual_seed(0)
    model = skynet(0.125, (32, 64)).eval()
    return {
        "mixed": lower(quantize(model, Policy.random(model, seed=3))),
        "uniform": lower(quantize(model, Policy.from_sparsity(model, 0.5, bits=4))),
    }


@pytest.fixture(scope="module")
def built(
    graphs: dict[str, HwGraph], tmp_path_factory: pytest.TempPathFactory
) -> tuple[mcu.Artifact, Path]:
    out = tmp_path_factory.mktemp("steps") / "build"
    return mcu.compile(graphs["mixed"], "qemu-mps2-an386", out), out


@pytest.fixture(scope="module", autouse=True)
def toolchain(request: pytest.FixtureRequest) -> None:
    """Skips (before the module's builds) when gcc or arm-none-eabi-gcc is missing."""
    need(request, "gcc", "arm-none-eabi-gcc")


def _checkpoint(out: Path) -> dict:
    return json.loads((out / steps.CHECKPOINT).read_text())


def test_every_step_is_recorded_with_its_output(built: tuple[mcu.Artifact, Path]) -> None:
    _, out = built
    record = _checkpoint(out)
    assert list(record["done"]) == ["sort", "plan", "emit", "budget", "host", "firmware", "report"]
    assert record["failed"] is None
    for name in ("graph.hwg", "plan.json", "emit.json", "report.json", "artifact.json"):
        assert (out / name).is_file(), name
    assert (out / "host" / "libajpq_model.so").is_file()
    assert (out / "firmware" / "ajpq.elf").is_file()


def test_resume_reuses_finished_steps_and_gives_the_same_artifact(
    graphs: dict[str, HwGraph], built: tuple[mcu.Artifact, Path]
) -> None:
    first, out = built
    outputs = [out / "src" / "ajpq_model.c", out / "host" / "libajpq_model.so"]
    outputs.append(out / "firmware" / "ajpq.elf")
    stamps = [path.stat().st_mtime_ns for path in outputs]
    again = mcu.compile(graphs["mixed"], "qemu-mps2-an386", out, resume=True)
    assert [path.stat().st_mtime_ns for path in outputs] == stamps
    assert again.report == first.report
    assert again.model_hash == first.model_hash
    assert again.sources == first.sources


def test_resume_with_another_graph_rebuilds(graphs: dict[str, HwGraph], tmp_path: Path) -> None:
    out = tmp_path / "build"
    mcu.compile(graphs["mixed"], "qemu-mps2-an386", out, firmware=False)
    key = _checkpoint(out)["key"]
    other = mcu.compile(graphs["uniform"], "qemu-mps2-an386", out, firmware=False, resume=True)
    assert _checkpoint(out)["key"] != key
    header = (out / "src" / "ajpq_model.h").read_text()
    assert f'#define AJPQ_MODEL_HASH "{other.model_hash}"' in header
    fresh = mcu.compile(graphs["uniform"], "qemu-mps2-an386", tmp_path / "fresh", firmware=False)
    for name in ("ajpq_model.c", "ajpq_weights.c"):
        assert (out / "src" / name).read_text() == (fresh.out_dir / "src" / name).read_text()
    assert other.report == fresh.report


def test_a_failed_step_is_recorded_and_the_build_resumes_after_the_last_good_one(
    graphs: dict[str, HwGraph], tmp_path: Path
) -> None:
    out = tmp_path / "build"
    small = dataclasses.replace(get("qemu-mps2-an386"), ram_bytes=32 * 1024)
    with pytest.raises(BudgetExceeded):
        mcu.compile(graphs["mixed"], small, out, firmware=False)
    record = _checkpoint(out)
    assert list(record["done"]) == ["sort", "plan", "emit"]
    assert record["failed"]["step"] == "budget"
    assert record["failed"]["error"].startswith("BudgetExceeded: the model needs ")
    emitted = (out / "src" / "ajpq_weights.c").stat().st_mtime_ns
    with pytest.raises(BudgetExceeded):
        mcu.compile(graphs["mixed"], small, out, firmware=False, resume=True)
    assert (out / "src" / "ajpq_weights.c").stat().st_mtime_ns == emitted


def test_stored_weight_bytes_are_the_elf_streams_and_tables(
    graphs: dict[str, HwGraph], built: tuple[mcu.Artifact, Path]
) -> None:
    artifact, _ = built
    coded = sum(size for name, size in symbol_bytes(artifact.elf).items() if CODED.match(name))
    assert stored_weight_bytes(graphs["mixed"]) == coded


def test_runtime_ram_covers_the_server_firmware(
    graphs: dict[str, HwGraph], built: tuple[mcu.Artifact, Path]
) -> None:
    """budget.ram_bytes is the linked firmware's RAM plus the 96 B alignment margin."""
    artifact, _ = built
    board = get("qemu-mps2-an386")
    model_plan = plan(
        sort_channels_by_bits(graphs["mixed"]), budget.kernel_scratch_cap(board.ram_bytes)
    )
    margin = budget.ram_bytes(model_plan, board) - artifact.report["ram_bytes"]
    assert margin == 96
    assert mcu.estimate(graphs["mixed"], board).ram_bytes == budget.ram_bytes(model_plan, board)


@pytest.mark.parametrize(("in_channels", "out_channels", "kernel"), [(3, 16, 3), (5, 7, 1)])
def test_conv_scratch_mirror_equals_the_c_get_buffer_size(
    tmp_path: Path, in_channels: int, out_channels: int, kernel: int
) -> None:
    library = tmp_path / "libconv.so"
    source = FIRMWARE_DIR / "kernels" / "ajpq_conv_m4_s8.c"
    include = FIRMWARE_DIR / "include"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O1",
            "-shared",
            "-fPIC",
            f"-I{include}",
            str(source),
            "-o",
            str(library),
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.ajpq_conv_m4_s8_get_buffer_size.restype = ctypes.c_size_t
    params = kernel_abi.ConvParams(
        in_channels=in_channels, out_channels=out_channels, kernel_h=kernel, kernel_w=kernel
    )
    taps = in_channels * kernel * kernel
    assert lib.ajpq_conv_m4_s8_get_buffer_size(ctypes.byref(params)) == (
        budget.kernel_scratch_bytes("conv", out_channels, taps)
    )
