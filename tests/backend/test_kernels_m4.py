"""The Cortex-M4 kernels (ajpq_{conv,dwconv,linear}_m4_s8) equal the golden executor.

Host: the kernels' portable C path, built with gcc (plain, and with ASan + UBSan in a
subprocess that preloads libasan), on the random layers of tests/backend/kernel_cases.py,
called through tests/backend/kernel_abi.py with the m4 symbols in place of the reference
ones. QEMU: a firmware (tests/backend/kernel_firmware.py) runs fixed random layers through
the reference and the m4 kernels on the emulated Cortex-M4 (the __SMLAD path) and prints the
outputs, which must equal golden exactly. A missing compiler or QEMU skips with the reason
(``--strict-hardware`` makes it a failure).
"""

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ajpq.backends.mcu import toolchain
from ajpq.errors import ToolchainMissing
from ajpq.graph import golden
from ajpq.graph.requant import quantize_multipliers
from tests.backend import kernel_abi, kernel_cases

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
SOURCES = sorted((FIRMWARE / "kernels").glob("ajpq_*.c"))  # the m4 ones and the references
INCLUDES = [f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'runtime'}"]
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
M4_KERNELS = {
    "conv": "ajpq_conv_m4_s8",
    "dwconv": "ajpq_dwconv_m4_s8",
    "linear": "ajpq_linear_m4_s8",
}
# every kernel in ajpq's single rounding, then in TFLite's double rounding (no fast path)
M4_CASES = [*M4_KERNELS, *(f"{kernel}_double" for kernel in M4_KERNELS)]
CASES = 150  # random cases per kernel on the plain build
SANITIZED_CASES = 100  # and on the sanitized build
QEMU_CASES = 12  # per kernel on the emulated Cortex-M4
QEMU_DOUBLE = 6  # and in double rounding
QEMU_SEED = 7


class M4Library:
    """A kernel library whose reference conv symbols resolve to the m4 kernels, so that
    kernel_abi's callers (which name the references) run the m4 kernels."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        for name in M4_KERNELS.values():
            getattr(lib, name).restype = None
            getattr(lib, f"{name}_get_buffer_size").restype = ctypes.c_size_t

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name.replace("_ref_s8", "_m4_s8"))


def with_small_shifts(case: kernel_cases.Case, rng: np.random.Generator) -> kernel_cases.Case:
    """The case with multipliers for reals near 1 (shifts around 32), so that both the m4
    kernels' 32-bit requant (shift >= 33) and their general path (shift <= 32) run."""
    node, inputs = case
    if node.attrs.get("requant", True):
        channels = node.arrays["weight"].shape[0]
        reals = 10.0 ** rng.uniform(-1.5, 1.0, size=channels)
        multiplier, shift = quantize_multipliers(reals)
        node.arrays.update(multiplier=multiplier, shift=shift)
    return node, inputs


def check(library: str, cases: int) -> list[str]:
    lib = M4Library(kernel_abi.load(library))
    return [f"{kernel} {kernel_cases.check(lib, kernel, cases)}" for kernel in M4_CASES]


def _compiler(name: str, config: pytest.Config) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; the C kernel tests need it"
        if config.getoption("--strict-hardware"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _shared_library(gcc: str, out: Path, extra: list[str]) -> str:
    command = [gcc, *WARNINGS, *extra, "-fPIC", "-shared", *INCLUDES, *map(str, SOURCES)]
    result = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return str(out)


def test_m4_kernels_equal_golden_on_host(pytestconfig: pytest.Config, tmp_path: Path) -> None:
    gcc = _compiler("gcc", pytestconfig)
    library = _shared_library(gcc, tmp_path / "libajpq_m4.so", ["-O2"])
    assert check(library, CASES) == [f"{kernel} {CASES}" for kernel in M4_CASES]


@pytest.mark.parametrize("kernel", list(M4_KERNELS))
def test_m4_kernels_equal_golden_with_small_shifts(
    pytestconfig: pytest.Config, tmp_path: Path, kernel: str
) -> None:
    gcc = _compiler("gcc", pytestconfig)
    lib = M4Library(kernel_abi.load(_shared_library(gcc, tmp_path / "lib.so", ["-O2"])))
    make, run = kernel_cases.CASES[kernel]
    rng = np.random.default_rng(11)
    shifts = set()
    for i in range(CASES):
        node, inputs = with_small_shifts(make(rng), rng)
        shifts.update(node.arrays.get("shift", np.zeros(0, np.int8)).tolist())
        expected = golden.KERNELS[node.op](node, inputs)
        assert np.array_equal(run(lib, node, *inputs), expected), f"case {i}: {node.attrs}"
    assert min(shifts) <= 32 < max(shifts)


def test_m4_conv_scratch_is_weights_columns_and_requant(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    gcc = _compiler("gcc", pytestconfig)
    lib = M4Library(kernel_abi.load(_shared_library(gcc, tmp_path / "lib.so", ["-O2"])))
    params = kernel_abi.ConvParams(in_channels=3, out_channels=16, kernel_h=3, kernel_w=3)
    # 27 taps padded to 28: 16 weight rows + 2 columns of int16, 16 bytes of requant per row
    assert lib.ajpq_conv_m4_s8_get_buffer_size(ctypes.byref(params)) == (16 + 2) * 28 * 2 + 16 * 16
    dw = kernel_abi.DwconvParams(channels=64, kernel_h=3, kernel_w=3)
    assert lib.ajpq_dwconv_m4_s8_get_buffer_size(ctypes.byref(dw)) == 0


def test_sanitized_m4_kernels_equal_golden(pytestconfig: pytest.Config, tmp_path: Path) -> None:
    gcc = _compiler("gcc", pytestconfig)
    libasan = subprocess.run(
        [gcc, "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip(f"{gcc} has no libasan.so to preload; the sanitizer build needs it")
    extra = ["-O1", "-g", "-fno-omit-frame-pointer", *SANITIZE]
    library = _shared_library(gcc, tmp_path / "libajpq_m4_asan.so", extra)
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.backend.test_kernels_m4", library, str(SANITIZED_CASES)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{k} {SANITIZED_CASES}" for k in M4_CASES]


@pytest.fixture(scope="module")
def qemu_runs(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from tests.backend import kernel_firmware  # imports the mcu backend only when needed

    try:
        for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
            toolchain.find_tool(tool)
    except ToolchainMissing as error:
        if pytestconfig.getoption("--strict-hardware"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    rng = np.random.default_rng(QEMU_SEED)
    cases = [kernel_cases.conv_case(rng) for _ in range(QEMU_CASES)]
    cases += [kernel_cases.dwconv_case(rng) for _ in range(QEMU_CASES)]
    cases += [kernel_cases.linear_case(rng) for _ in range(QEMU_CASES)]
    cases = [with_small_shifts(case, rng) if i % 3 == 2 else case for i, case in enumerate(cases)]
    for make in (kernel_cases.conv_case, kernel_cases.dwconv_case, kernel_cases.linear_case):
        cases += [kernel_cases.in_double_rounding(make(rng), rng) for _ in range(QEMU_DOUBLE)]
    elf = kernel_firmware.build(cases, tmp_path_factory.mktemp("kernels_m4"))
    return cases, kernel_firmware.run(elf, timeout_s=60)


@pytest.mark.parametrize("variant", ["m4", "ref"])
def test_kernels_on_qemu_cortex_m4_equal_golden(qemu_runs: tuple, variant: str) -> None:
    cases, runs = qemu_runs
    assert len(cases) == 3 * (QEMU_CASES + QEMU_DOUBLE)
    assert sum(golden.double_rounding(node) for node, _ in cases) >= QEMU_DOUBLE
    for i, (node, inputs) in enumerate(cases):
        expected = golden.KERNELS[node.op](node, inputs).reshape(-1).tolist()
        assert runs[(i, variant)].outputs == expected, f"case {i}: attrs={node.attrs}"


def test_m4_kernels_run_fewer_instructions_than_the_references(qemu_runs: tuple) -> None:
    cases, runs = qemu_runs
    ref = sum(runs[(i, "ref")].units for i in range(len(cases)))
    m4 = sum(runs[(i, "m4")].units for i in range(len(cases)))
    assert 0 < m4 < ref


if __name__ == "__main__":  # the sanitizer test's subprocess: LIB CASES
    print("\n".join(check(sys.argv[1], int(sys.argv[2]))), flush=True)
