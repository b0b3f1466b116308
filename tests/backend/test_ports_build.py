"""The real-board ports (stm32f7, stm32h7, nrf52840) build with arm-none-eabi-gcc.

No board is attached in CI, so these tests are build-only: for each board in hw/boards that
uses one of these ports, tests/backend/fixtures/firmware_hello.c is linked at the board's
budget and the ELF is read back: the vector table's initial stack pointer is the top of the
RAM the rendered linker script describes, the reset vector is a Thumb address inside flash,
the table has one slot per exception and IRQ of the part (the shared startup in
ports/common, sized by the port.mk's PORT_IRQS), and the port API is defined.
Every port source also compiles cleanly with -Wall -Wextra -Werror. A missing toolchain skips
with the reason (``--strict-hardware`` makes it a failure).
"""

import re
import struct
import subprocess
from pathlib import Path

import pytest

from ajpq import boards
from ajpq.backends.mcu import toolchain
from ajpq.errors import ToolchainMissing

HELLO = Path(__file__).resolve().parent / "fixtures" / "firmware_hello.c"

# board id -> (flash origin, contiguous RAM the port may use, external IRQs of the part)
PARTS = {
    "stm32f746g-disco": (0x08000000, 320 * 1024, 98),
    "nucleo-h743zi": (0x08000000, 512 * 1024, 150),  # AXI SRAM only
    "nrf52840-dk": (0x00000000, 256 * 1024, 48),
}
# The initial stack pointer each board's image must start with.
EXPECTED_STACK_TOP = {
    "stm32f746g-disco": 0x20050000,
    "nucleo-h743zi": 0x24080000,
    "nrf52840-dk": 0x20040000,
}
API = ("ajpq_port_init", "ajpq_port_exit", "ajpq_uart_write", "ajpq_timer_now")
REGION = re.compile(r"^\s*(\w+) \(\w+\)\s*:\s*ORIGIN = (0x[0-9A-Fa-f]+), LENGTH = (\d+)", re.M)


@pytest.fixture(scope="module")
def build_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        for tool in ("arm-none-eabi-gcc", "arm-none-eabi-nm"):
            toolchain.find_tool(tool)
    except ToolchainMissing as error:
        if pytestconfig.getoption("--strict-hardware"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    return tmp_path_factory.mktemp("ports_build")


def _section(elf: Path, name: str) -> tuple[int, bytes]:
    """Address and contents of one section of a 32-bit little-endian ELF."""
    data = elf.read_bytes()
    assert data[:6] == b"\x7fELF\x01\x01", "not a 32-bit little-endian ELF"
    shoff = struct.unpack_from("<I", data, 0x20)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    headers = [struct.unpack_from("<10I", data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = headers[shstrndx][4]
    for header in headers:
        start = names_offset + header[0]
        if data[start : data.index(b"\0", start)].decode() == name:
            address, offset, size = header[3], header[4], header[5]
            return address, data[offset : offset + size]
    raise AssertionError(f"{elf.name} has no section {name}")


def _symbols(elf: Path) -> dict[str, tuple[str, int]]:
    result = subprocess.run(
        [toolchain.find_tool("arm-none-eabi-nm"), str(elf)],
        capture_output=True,
        text=True,
        check=True,
    )
    symbols = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) == 3:
            symbols[words[2]] = (words[1], int(words[0], 16))
    return symbols


@pytest.fixture(scope="module", params=sorted(PARTS))
def built(request: pytest.FixtureRequest, build_dir: Path) -> tuple[boards.BoardSpec, Path]:
    board = boards.get(request.param)
    elf = toolchain.build_firmware(
        [HELLO],
        [],
        build_dir / f"{board.id}.elf",
        board.flash_bytes,
        board.ram_bytes,
        board.stack_bytes,
        board=board.port,
    )
    return board, elf


def test_initial_stack_pointer_is_the_top_of_ram(built: tuple) -> None:
    board, elf = built
    regions = {
        name: (int(origin, 16), int(length))
        for name, origin, length in REGION.findall(elf.with_suffix(".ld").read_text())
    }
    ram_origin, ram_length = regions["RAM"]
    assert ram_length == board.ram_bytes
    top = ram_origin + min(ram_length, PARTS[board.id][1])
    address, table = _section(elf, ".isr_vector")
    initial_sp = struct.unpack_from("<I", table, 0)[0]
    assert initial_sp == top == EXPECTED_STACK_TOP[board.id]
    assert _symbols(elf)["_estack"][1] == initial_sp


def test_reset_vector_is_thumb_and_inside_flash(built: tuple) -> None:
    board, elf = built
    flash_origin = PARTS[board.id][0]
    address, table = _section(elf, ".isr_vector")
    assert address == flash_origin
    reset = struct.unpack_from("<I", table, 4)[0]
    assert reset & 1 == 1
    assert flash_origin <= reset < flash_origin + board.flash_bytes
    assert reset == _symbols(elf)["Reset_Handler"][1] | 1


def test_vector_table_has_a_slot_for_every_irq(built: tuple) -> None:
    board, elf = built
    _, table = _section(elf, ".isr_vector")
    assert len(table) == 4 * (16 + PARTS[board.id][2])


@pytest.mark.parametrize("board_id", sorted(PARTS))
def test_port_mk_states_the_parts_irq_count(board_id: str) -> None:
    """The shared startup's vector table is sized by PORT_IRQS of the board's port.mk."""
    port = boards.get(board_id).port
    assert toolchain.port_defines(port) == {
        "AJPQ_PORT_IRQS": PARTS[board_id][2],
        "AJPQ_PORT_SET_VTOR": 1,
    }


def test_port_api_is_defined(built: tuple) -> None:
    _, elf = built
    symbols = _symbols(elf)
    for name in API:
        assert symbols.get(name, ("?", 0))[0] == "T", f"{name} not defined in {elf.name}"


def test_image_fits_the_board_budget(built: tuple) -> None:
    board, elf = built
    sizes = toolchain.elf_sizes(elf)
    assert 0 < sizes["flash"] < 16 * 1024
    assert board.stack_bytes <= sizes["stack"] <= board.stack_bytes + 8
    assert sizes["ram"] <= min(board.ram_bytes, PARTS[board.id][1])


@pytest.mark.parametrize("port", sorted({boards.get(board_id).port for board_id in PARTS}))
def test_port_sources_compile_without_warnings(build_dir: Path, port: str) -> None:
    settings = toolchain.port_settings(port)
    folder = toolchain.port_dir(port)
    for source in settings["PORT_SOURCES"]:
        result = subprocess.run(
            [
                toolchain.find_tool("arm-none-eabi-gcc"),
                *settings["PORT_CPU_FLAGS"],
                *settings["PORT_CFLAGS"],
                "-Wall",
                "-Wextra",
                "-Werror",
                *(f"-D{name}={value}" for name, value in toolchain.port_defines(port).items()),
                f"-I{toolchain.FIRMWARE_DIR / 'include'}",
                "-c",
                str(folder / source),
                "-o",
                str(build_dir / f"{port}_{Path(source).stem}.o"),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"{port}/{source}:\n{result.stderr}"
        assert result.stderr == ""
