"""Fixtures of the hardware-in-the-loop tests: the `hil` marker and the board under test.

The default board is qemu-mps2-an386 (QEMU, as in CI). A missing emulator or cross compiler
skips with the reason; --strict-hardware turns the skip into a failure. A real board needs
--port (e.g. /dev/ttyACM0); without it its tests skip.
"""

import shutil

import pytest

from ajpq.boards import BoardSpec, get

TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "gcc")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: needs a board (QEMU in CI)")


def _skip_or_fail(config: pytest.Config, reason: str) -> None:
    if config.getoption("--strict-hardware"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def board_id(request: pytest.FixtureRequest) -> str:
    """The --board id; skips (or fails under --strict-hardware) when it cannot be reached."""
    config = request.config
    board = str(config.getoption("--board"))
    if board.startswith("qemu-"):
        for tool in TOOLS:
            if shutil.which(tool) is None:
                _skip_or_fail(config, f"{tool} is missing (run make setup)")
    elif config.getoption("--port") is None:
        _skip_or_fail(config, f"board {board} needs --port (its serial port, e.g. /dev/ttyACM0)")
    return board


@pytest.fixture(scope="session")
def board_spec(board_id: str) -> BoardSpec:
    return get(board_id)
