"""Skip a test (or fail it with --strict-hardware) when a tool it needs is missing."""

import shutil

import pytest

BOARD_TOOLS = ("gcc", "arm-none-eabi-gcc", "qemu-system-arm")


def need(request: pytest.FixtureRequest, *tools: str) -> None:
    for tool in tools or BOARD_TOOLS:
        if shutil.which(tool) is None:
            if request.config.getoption("--strict-hardware"):
                pytest.fail(f"{tool} is missing")
            pytest.skip(f"{tool} is missing (run make setup)")


def need_finn(request: pytest.FixtureRequest) -> None:
    from ajpq.backends.finn import shim

    if not shim.available():
        if request.config.getoption("--strict-hardware"):
            pytest.fail(shim.MISSING)
        pytest.skip(shim.MISSING)


def need_ray(request: pytest.FixtureRequest) -> None:
    """Ray is in `make setup`: in CI (CI=true) a missing Ray fails instead of skipping."""
    import importlib.util
    import os

    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI") or request.config.getoption("--strict-hardware"):
            pytest.fail("ray is missing (make setup installs the [ray] extra)")
        pytest.skip("ray is missing (pip install -c constraints.txt '.[ray]')")
