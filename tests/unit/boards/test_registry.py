"""Board files: every board loads with its real numbers; bad files give one sentence."""

from pathlib import Path

import pytest

import ajpq.boards
from ajpq.boards.spec import InvalidBoard, get, list_ids

MCU = {  # id: (part, core, clock, flash, ram, port)
    "qemu-mps2-an386": (
        "Cortex-M4 (Arm MPS2+ AN386, emulated)",
        "cortex-m4",
        25_000_000,
        1_048_576,
        327_680,
        "qemu-mps2-an386",
    ),
    "stm32f746g-disco": ("STM32F746NGH6", "cortex-m7", 216_000_000, 1_048_576, 327_680, "stm32f7"),
    "nucleo-h743zi": ("STM32H743ZIT6", "cortex-m7", 400_000_000, 2_097_152, 524_288, "stm32h7"),
    "nrf52840-dk": ("nRF52840-QIAA", "cortex-m4f", 64_000_000, 1_048_576, 262_144, "nrf52840"),
}
FPGA = {  # id: (part, lut, ff, bram36, uram, dsp)
    "ultra96-v2": ("xczu3eg-sbva484-1-i", 70_560, 141_120, 216, 0, 360),
    "pynq-z2": ("xc7z020clg400-1", 53_200, 106_400, 140, 0, 220),
    "zcu104": ("xczu7ev-ffvc1156-2-e", 230_400, 460_800, 312, 96, 1_728),
}


def test_every_board_is_listed() -> None:
    assert set(MCU) | set(FPGA) | {"qemu-mps2-an386-4m"} == set(ajpq.boards.list())


@pytest.mark.parametrize("board_id", sorted(MCU))
def test_mcu_boards(board_id: str) -> None:
    spec = get(board_id)
    assert (
        spec.part,
        spec.core,
        spec.clock_hz,
        spec.flash_bytes,
        spec.ram_bytes,
        spec.port,
    ) == MCU[board_id]
    assert spec.kind == "mcu"
    if board_id == "nucleo-h743zi":  # 1 MiB in five banks; the port uses the 512 KiB AXI SRAM
        assert spec.extra["ram_total_bytes"] == 1_048_576
    if board_id.startswith("qemu"):
        assert spec.timer == "systick-icount" and spec.flash["methods"] == ["qemu"]
    else:
        assert spec.timer == "dwt"
        assert spec.flash["methods"] == ["pyocd", "openocd"] and spec.flash["pyocd_target"]
        assert spec.serial["baud"] == 115_200 and ":" in spec.serial["usb_vid_pid"]


@pytest.mark.parametrize("board_id", sorted(FPGA))
def test_fpga_boards(board_id: str) -> None:
    spec = get(board_id)
    part, *resources = FPGA[board_id]
    assert spec.kind == "fpga" and spec.part == part
    assert [spec.resources[k] for k in ("lut", "ff", "bram36", "uram", "dsp")] == resources


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


GOOD = """id = "x"
name = "X"
kind = "mcu"
part = "P"
core = "cortex-m4"
clock_hz = 1
flash_bytes = 1
ram_bytes = 1
stack_bytes = 1
timer = "dwt"
port = "p"
[flash]
methods = ["pyocd"]
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    assert get("x", write(tmp_path, "x", GOOD)).flash == {"methods": ["pyocd"]}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.replace('kind = "mcu"\n', ""), r"lacks the field 'kind'"),
        (lambda t: t.replace("ram_bytes = 1", 'ram_bytes = "lots"'), r"'ram_bytes' must be a int"),
        (lambda t: t.replace('timer = "dwt"', 'timer = "rtc"'), r"'timer' is 'rtc'"),
        (lambda t: t.replace('methods = ["pyocd"]', 'methods = ["jtag"]'), r"'flash.methods'"),
        (lambda t: t.replace('id = "x"', 'id = "y"'), r"'id' is 'y' but the file is named"),
        (lambda t: t + "[[[", r"is not valid TOML"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path: Path, change, message: str) -> None:
    folder = write(tmp_path, "x", change(GOOD))
    with pytest.raises(InvalidBoard, match=message) as info:
        get("x", folder)
    assert str(folder / "x.toml") in str(info.value)
    assert "\n" not in str(info.value)


def test_fpga_without_resources(tmp_path: Path) -> None:
    text = 'id = "f"\nname = "F"\nkind = "fpga"\npart = "p"\ncore = "c"\nclock_hz = 1\n'
    with pytest.raises(InvalidBoard, match=r"lacks the table \[resources\]"):
        get("f", write(tmp_path, "f", text))
    with pytest.raises(InvalidBoard, match=r"lacks the field 'resources.dsp'"):
        get(
            "f", write(tmp_path, "f", text + "[resources]\nlut = 1\nff = 1\nbram36 = 1\nuram = 0\n")
        )


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(InvalidBoard, match="unknown board 'nope'; known boards: nrf52840-dk"):
        get("nope")
    assert list_ids()[0] == "nrf52840-dk"
