"""The C reference kernels (firmware/kernels) equal the golden executor exactly.

Builds every kernel with host gcc into a shared library and compares it with
``ajpq.graph.golden`` on random layers (tests/backend/kernel_cases.py); builds it again with
ASan + UBSan and runs the same cases in a subprocess that preloads libasan; and compiles each
kernel for the Cortex-M4 with arm-none-eabi-gcc. A missing compiler skips with the reason
(``--strict-hardware`` makes it a failure).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backend import kernel_abi, kernel_cases

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
SOURCES = sorted((FIRMWARE / "kernels").glob("ajpq_*.c"))
INCLUDES = [f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'runtime'}"]
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
CASES = 100  # random cases per kernel on the plain build
SANITIZED_CASES = 50  # and on the sanitized build


def _compiler(name: str, config: pytest.Config) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; the C kernel tests need it"
        if config.getoption("--strict-hardware"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _build(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"


def _shared_library(gcc: str, out: Path, extra: list[str]) -> Path:
    _build(
        [gcc, *WARNINGS, *extra, "-fPIC", "-shared", *INCLUDES, *map(str, SOURCES), "-o", str(out)]
    )
    return out


@pytest.fixture(scope="session")
def host_library(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = _compiler("gcc", pytestconfig)
    return _shared_library(gcc, tmp_path_factory.mktemp("host") / "libajpq_kernels.so", ["-O2"])


def test_every_kernel_file_is_tested() -> None:
    """References are tested here; the optimized kernels in test_kernels_m4.py."""
    from tests.backend.test_kernels_m4 import M4_KERNELS

    references = sorted(p.stem for p in SOURCES if "_ref_" in p.stem)
    optimized = sorted(p.stem for p in SOURCES if "_ref_" not in p.stem)
    assert references == sorted(kernel_abi.KERNELS)
    assert optimized == sorted(M4_KERNELS.values())


@pytest.mark.parametrize("kernel", list(kernel_cases.CASES))
def test_kernel_equals_golden(host_library: Path, kernel: str) -> None:
    lib = kernel_abi.load(str(host_library))
    assert kernel_cases.check(lib, kernel, CASES) == CASES


def test_reference_kernels_need_no_scratch(host_library: Path) -> None:
    lib = kernel_abi.load(str(host_library))
    sizes = {
        name: getattr(lib, f"{name}_get_buffer_size")(params())
        for name, params in kernel_abi.KERNELS.items()
    }
    assert sizes == dict.fromkeys(kernel_abi.KERNELS, 0)


def test_sanitized_kernels_equal_golden(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gcc = _compiler("gcc", pytestconfig)
    libasan = subprocess.run(
        [gcc, "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip(f"{gcc} has no libasan.so to preload; the sanitizer build needs it")
    out = tmp_path_factory.mktemp("sanitized") / "libajpq_kernels_asan.so"
    library = _shared_library(gcc, out, ["-O1", "-g", "-fno-omit-frame-pointer", *SANITIZE])
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "tests.backend.kernel_cases",
        str(library),
        str(SANITIZED_CASES),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line.split()[0] for line in result.stdout.splitlines() if "equal golden" in line]
    assert passed == list(kernel_cases.CASES)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_kernel_builds_for_cortex_m4(
    pytestconfig: pytest.Config, tmp_path: Path, source: Path
) -> None:
    arm_gcc = _compiler("arm-none-eabi-gcc", pytestconfig)
    obj = tmp_path / f"{source.stem}.o"
    _build([arm_gcc, *M4, *WARNINGS, "-O2", *INCLUDES, "-c", str(source), "-o", str(obj)])
    nm = shutil.which("arm-none-eabi-nm")
    if nm is not None:  # no libc, no malloc: a kernel is self-contained
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True)
        assert undefined.stdout.split() == []
