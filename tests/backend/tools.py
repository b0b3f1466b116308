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
