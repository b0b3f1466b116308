"""Shared pytest options: --board, --port, --strict-hardware (used by tests/hil)."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--board", default="qemu-mps2-an386", help="board id for hil tests")
    parser.addoption("--port", default=None, help="serial port of a real board")
    parser.addoption(
        "--strict-hardware",
        action="store_true",
        help="fail instead of skipping when a board or toolchain is missing",
    )
