"""ajpq installs like a real package.

A non-editable ``pip install`` of a clean copy of the checkout into a fresh venv, then, from
another directory: ``ajpq boards``, ``ajpq compile --backend mcu``, ``ajpq bench`` and
``ajpq flash`` (then ``ajpq bench --port``) on the QEMU board; the board list and the compile
report equal the development (editable) install's. Two static checks guard pyproject.toml:
every Python package is listed, and every third-party import is a declared dependency.
"""

import ast
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import torch

from ajpq.boards import list_boards
from ajpq.graph.lower import lower
from ajpq.models import skynet
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.backend.tools import need

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
# Folders whose imports the project dependencies need not cover (finn-plus installs with --no-deps).
OPTIONAL_FOLDERS = ("backends/finn",)
BOARD = "qemu-mps2-an386"
COMPILE = ("compile", "--backend", "mcu", "--board", BOARD)
SYSTICK_TICK_INSTRUCTIONS = 40  # firmware/ports/qemu-mps2-an386/timer.c, under -icount


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def source_dir(package: str) -> Path:
    """The checkout folder a package name maps to through [tool.setuptools.package-dir]."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        mapped = SETUPTOOLS["package-dir"].get(".".join(parts[:cut]))
        if mapped is not None:
            return ROOT / mapped / Path(*parts[cut:])
    raise AssertionError(f"{package} has no package-dir entry")


def test_pyproject_lists_every_python_package() -> None:
    found = {
        ".".join(("ajpq", *init.parent.relative_to(ROOT / "sdk").parts))
        for init in (ROOT / "sdk").rglob("__init__.py")
    } | {
        ".".join(("ajpq", *init.parent.relative_to(ROOT).parts))
        for init in (ROOT / "backends").rglob("__init__.py")
    }
    listed = set(SETUPTOOLS["packages"])
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    for package in listed:
        assert source_dir(package).is_dir(), package


def imported_modules(path: Path, module_level: bool) -> set[str]:
    """Top-level names of the third-party modules a file imports (at module level, or anywhere)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body if module_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"ajpq"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalized(re.match(r"[A-Za-z0-9._-]+", r)[0]) for r in requirements}


@cache
def distributions() -> dict[str, list[str]]:
    """Module name -> the installed distributions that provide it (slow: read once)."""
    return packages_distributions()


def undeclared(modules: set[str], declared: set[str]) -> set[str]:
    return {
        module
        for module in modules
        if not {normalized(d) for d in distributions().get(module, [module])} & declared
    }


def test_imports_are_declared_dependencies() -> None:
    """Module-level imports need a core dependency; imports inside a function an extra at least."""
    project = PYPROJECT["project"]
    core = requirement_names(project["dependencies"])
    extras = requirement_names(sum(project["optional-dependencies"].values(), []))
    missing = {}
    for path in [*(ROOT / "sdk").rglob("*.py"), *(ROOT / "backends").rglob("*.py")]:
        name = str(path.relative_to(ROOT))
        if not name.startswith(OPTIONAL_FOLDERS):
            anywhere = undeclared(imported_modules(path, False), core | extras)
            at_top = undeclared(imported_modules(path, True), core)
            missing |= {module: name for module in anywhere | at_top}
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


def test_every_pin_of_the_constraints_file_is_what_is_installed() -> None:
    """make setup installs every extra (the board farm's Ray included) with ``-c
    constraints.txt``: had an extra needed another version of a pinned package, pip would have
    refused, or this finds the drift."""
    from importlib.metadata import PackageNotFoundError, version

    drift = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        pin = line.split("#")[0].strip()
        if not pin:
            continue
        name, pinned = pin.split("==")
        try:
            installed = version(name).split("+")[0]  # torch 2.13.0+cpu is the 2.13.0 pin
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            drift[name] = (pinned, installed)
    assert drift == {}, f"installed versions differ from constraints.txt: {drift}"
    assert "ray" in requirement_names(PYPROJECT["project"]["optional-dependencies"]["ray"])


def tracked_copy(destination: Path) -> Path:
    """What a clone of the next commit holds: tracked files and untracked ones git keeps."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listing.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a fresh venv holding a non-editable install of the checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the package test copies a git checkout; git or .git is missing")
    base = tmp_path_factory.mktemp("package")
    source = tracked_copy(base / "src")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # This venv's pip installs into the new one; --no-compile: imports write their own .pyc.
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    result = subprocess.run(
        [*install, "-q", "--no-compile", "-c", str(source / "constraints.txt"), str(source)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    yield venv / "bin"
    shutil.rmtree(base, ignore_errors=True)


def installed_env() -> dict[str, str]:
    """This environment without the development venv or checkout on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_installed(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a program of the fresh venv from cwd and check that it succeeds."""
    result = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=installed_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_installed_package_ships_every_firmware_and_board_file(
    installed: Path, tmp_path: Path
) -> None:
    script = (
        "from ajpq import resources; print(resources.FIRMWARE_DIR); print(resources.BOARDS_DIR)"
    )
    output = run_installed(installed, tmp_path, "python", "-c", script).stdout.split()
    firmware, boards = Path(output[0]), Path(output[1])
    site_packages = installed.parent / "lib"
    assert firmware.is_relative_to(site_packages) and boards.is_relative_to(site_packages)
    assert files_under(firmware) == files_under(ROOT / "firmware")
    assert files_under(boards.parent) == files_under(ROOT / "hw")


def test_installed_ajpq_lists_the_boards(installed: Path, tmp_path: Path) -> None:
    output = run_installed(installed, tmp_path, "ajpq", "boards", "--json").stdout
    expected = json.loads(json.dumps([spec.to_dict() for spec in list_boards()]))
    assert json.loads(output) == expected


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = skynet(0.125, (32, 64)).eval()
    path = tmp_path_factory.mktemp("package-graph") / "m.hwg"
    lower(quantize(model, Policy.from_sparsity(model, 0.5, bits=4))).save(path)
    return path


@pytest.fixture(scope="module")
def compiled(
    request: pytest.FixtureRequest, installed: Path, graph_file: Path
) -> tuple[Path, dict]:
    """The fresh venv's `ajpq compile --backend mcu` in a folder of its own: (folder, report)."""
    need(request)
    folder = graph_file.parent
    run_installed(installed, folder, "ajpq", *COMPILE, graph_file.name, "-o", "build")
    return folder, json.loads((folder / "build" / "report.json").read_text())


def test_installed_compile_equals_the_development_one(
    compiled: tuple[Path, dict], graph_file: Path, tmp_path: Path
) -> None:
    development = subprocess.run(
        [sys.executable, "-m", "ajpq.cli", *COMPILE, str(graph_file), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert development.returncode == 0, development.stderr[-3000:]
    assert compiled[1] == json.loads((tmp_path / "report.json").read_text())


def bench(installed: Path, folder: Path, *options: str) -> dict:
    arguments = ("bench", "build", "--board", BOARD, "--runs", "2", "--warmup", "1", "--json")
    return json.loads(run_installed(installed, folder, "ajpq", *arguments, *options).stdout)


@contextmanager
def flashed(installed: Path, folder: Path) -> Iterator[tuple[str, str]]:
    """`ajpq flash` on QEMU: (its serial URL, what it printed) while it runs; then stop it."""
    process = subprocess.Popen(
        [str(installed / "ajpq"), "flash", "build", "--board", BOARD],
        cwd=folder,
        env=installed_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, QEMU included
    )
    try:
        printed, deadline = b"", time.monotonic() + 300
        while (url := re.search(rb"socket://127\.0\.0\.1:\d+", printed)) is None:
            ready, _, _ = select.select(
                [process.stdout], [], [], max(deadline - time.monotonic(), 0)
            )
            chunk = os.read(process.stdout.fileno(), 65536) if ready else b""
            assert chunk, f"ajpq flash printed no serial URL: {printed.decode()[-3000:]}"
            printed += chunk
        yield url[0].decode(), " ".join(printed.decode().split())
    finally:
        with suppress(ProcessLookupError):  # the group has ended already
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def test_installed_ajpq_benches_and_flashes_qemu(
    installed: Path, compiled: tuple[Path, dict]
) -> None:
    folder, report = compiled
    measured = bench(installed, folder)
    assert measured["model_hash"] == report["model_hash"]
    assert (measured["unit"], measured["timer_source"]) == ("instructions", "systick-icount")
    assert 0 < measured["min_count"] <= measured["count"] <= measured["max_count"]
    # The same firmware and inputs each time; where the first SysTick tick falls may differ.
    assert measured["max_count"] - measured["min_count"] <= SYSTICK_TICK_INSTRUCTIONS
    with flashed(installed, folder) as (url, printed):
        assert f"{BOARD} is running model {report['model_hash']} under QEMU" in printed
        again = bench(installed, folder, "--port", url)
    assert again["model_hash"] == report["model_hash"]
    assert abs(again["count"] - measured["count"]) <= SYSTICK_TICK_INSTRUCTIONS
