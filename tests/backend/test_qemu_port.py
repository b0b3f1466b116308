"""The qemu-mps2-an386 port builds with arm-none-eabi-gcc and runs on qemu-system-arm.

Builds tests/backend/fixtures/firmware_hello.c at the board's real budget (1 MiB flash /
320 KiB RAM), runs it with the one QEMU launcher (``ajpq.boards.qemu.run_to_exit``, under
``-icount shift=0``) and checks its exact UART text, that the timer is SysTick counting 40
instructions per tick (the fixed loop is two instructions per iteration), that the count
repeats exactly, and the failure paths: RAM overflow at link time, a missing tool, a firmware
that never exits, a HardFault. A missing toolchain skips with the reason
(``--strict-hardware`` makes it a failure).
"""

import re
from pathlib import Path

import pytest

from ajpq.backends.mcu import toolchain
from ajpq.boards.qemu import Qemu, QemuResult, qemu_binary, qemu_command, run_to_exit
from ajpq.boards.qemu_board import tcp_serial
from ajpq.errors import AjpqError, ToolchainMissing

HELLO = Path(__file__).resolve().parent / "fixtures" / "firmware_hello.c"
FLASH_SIZE = 1024 * 1024
RAM_SIZE = 320 * 1024
STACK_SIZE = 8 * 1024
INSTRUCTIONS_PER_TICK = 40  # QEMU -icount shift=0: 1 ns per instruction, SysTick at 25 MHz
LOOP = 100_000
LOOP_LINE = re.compile(rb"loop (\d+) ticks (\d+) units (\d+)\n")
TIMEOUT_S = 20


@pytest.fixture(scope="module")
def build_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"):
            toolchain.find_tool(tool)
    except ToolchainMissing as error:
        if pytestconfig.getoption("--strict-hardware"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    return tmp_path_factory.mktemp("qemu_port")


def _build(build_dir: Path, name: str, **defines: object) -> Path:
    return toolchain.build_firmware(
        [HELLO], [], build_dir / f"{name}.elf", FLASH_SIZE, RAM_SIZE, STACK_SIZE, defines
    )


def _loop_ticks(output: bytes, iterations: int) -> int:
    match = LOOP_LINE.search(output)
    assert match is not None, output
    assert int(match[1]) == iterations
    ticks = int(match[2])
    assert int(match[3]) == ticks * INSTRUCTIONS_PER_TICK
    return ticks


@pytest.fixture(scope="module")
def hello_runs(build_dir: Path) -> dict[int, list[QemuResult]]:
    """Two runs of the hello firmware for each loop length."""
    runs = {}
    for iterations in (LOOP, 2 * LOOP):
        elf = _build(build_dir, f"hello_{iterations}", LOOP_ITERATIONS=iterations)
        runs[iterations] = [run_to_exit(elf, timeout_s=TIMEOUT_S) for _ in range(2)]
    return runs


def test_hello_prints_exact_text_and_exits_zero(hello_runs: dict) -> None:
    result = hello_runs[LOOP][0]
    ticks = _loop_ticks(result.uart_output, LOOP)
    expected = (
        "hello from ajpq\n"
        "timer systick-icount\n"
        f"loop {LOOP} ticks {ticks} units {ticks * INSTRUCTIONS_PER_TICK}\n"
    )
    assert result.uart_output.decode() == expected
    assert result.exit_code == 0


def test_systick_counts_40_instructions_per_tick(hello_runs: dict) -> None:
    # the loop is 2 instructions per iteration; reading the timer adds a few more
    ticks = _loop_ticks(hello_runs[LOOP][0].uart_output, LOOP)
    assert 2 * LOOP // INSTRUCTIONS_PER_TICK <= ticks <= 2 * LOOP // INSTRUCTIONS_PER_TICK + 2


def test_icount_timing_is_deterministic_and_grows_with_the_loop(hello_runs: dict) -> None:
    short = [_loop_ticks(run.uart_output, LOOP) for run in hello_runs[LOOP]]
    long = [_loop_ticks(run.uart_output, 2 * LOOP) for run in hello_runs[2 * LOOP]]
    assert short[0] == short[1]
    assert long[0] == long[1]
    assert abs((long[0] - short[0]) - 2 * LOOP // INSTRUCTIONS_PER_TICK) <= 1


def test_elf_sizes_fit_the_budget(build_dir: Path) -> None:
    sizes = toolchain.elf_sizes(_build(build_dir, "sizes"))
    assert sizes["flash"] == sizes["text"] + sizes["data"]
    assert sizes["stack"] == STACK_SIZE
    assert sizes["ram"] == sizes["data"] + sizes["bss"] + STACK_SIZE <= RAM_SIZE
    assert sizes["bss"] < 64  # the port's own variables: wrap count, timer choice
    assert 0 < sizes["text"] < 16 * 1024


def test_static_array_larger_than_ram_fails_to_link(build_dir: Path) -> None:
    with pytest.raises(AjpqError) as error:
        _build(build_dir, "too_big", STATIC_RAM_BYTES=400 * 1024)
    message = str(error.value)
    assert "bytes of RAM" in message
    assert f"qemu-mps2-an386 has {RAM_SIZE}" in message
    assert "overflowed by" in message
    assert "\n" not in message


def test_firmware_that_never_exits_times_out(build_dir: Path) -> None:
    elf = _build(build_dir, "never_exits", NEVER_EXIT=None)
    with pytest.raises(AjpqError, match=r"did not exit within 1\.5 s.*hello from ajpq"):
        run_to_exit(elf, timeout_s=1.5)


def test_hard_fault_is_reported_and_exits_3(build_dir: Path) -> None:
    elf = _build(build_dir, "hard_fault", HARD_FAULT=None)
    result = run_to_exit(elf, timeout_s=TIMEOUT_S, uart_input=b"x")
    assert result.exit_code == 3
    assert b"got x\najpq: HardFault pc=0x30000000 " in result.uart_output


def test_a_garbage_kernel_or_machine_is_one_sentence(build_dir: Path) -> None:
    junk = build_dir / "junk.elf"
    junk.write_bytes(bytes(100))  # a raw image: reset vector 0 faults, the fault locks up
    with pytest.raises(AjpqError) as error:
        run_to_exit(junk, timeout_s=TIMEOUT_S)
    assert str(error.value) == (
        "qemu-system-arm could not run junk.elf on mps2-an386 (exit -6): fatal: Lockup: can't "
        "escalate 3 to HardFault (current priority -1); check the machine and that the ELF is "
        "built for its port"
    )
    with pytest.raises(AjpqError, match=r"on no-such-board \(exit 1\): unsupported machine type; "):
        run_to_exit(_build(build_dir, "hello_other"), machine="no-such-board")


def test_one_command_line_for_both_serial_backends(build_dir: Path) -> None:
    elf = build_dir / "any.elf"
    common = [qemu_binary(), "-M", "mps2-an386", "-nographic", "-monitor", "none"]
    common += ["-semihosting-config", "enable=on,target=native", "-serial"]
    tail = ["-icount", "shift=0,sleep=off", "-kernel", str(elf)]
    assert qemu_command(elf, "mps2-an386", "stdio") == [*common, "stdio", *tail]
    tcp = "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on"
    assert qemu_command(elf, "mps2-an386", tcp_serial(4321)) == [*common, tcp, *tail]
    assert qemu_command(elf, "mps2-an386", "stdio", icount=False) == [*common, "stdio", *tail[2:]]


def test_the_launcher_kills_and_reaps_qemu(build_dir: Path) -> None:
    elf = _build(build_dir, "never_exits_too", NEVER_EXIT=None)
    with Qemu(elf) as qemu:
        process = qemu.start("stdio")
        assert process.poll() is None and not qemu.exited()
        logs = qemu.errors()
    assert process.returncode is not None  # killed and reaped: no zombie left
    assert (logs, qemu.process, qemu.output()) == ("", None, b"")


def test_missing_tools_raise_toolchain_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissing, match="install the Debian package gcc-arm-none-eabi"):
        toolchain.build_firmware([HELLO], [], tmp_path / "x.elf", FLASH_SIZE, RAM_SIZE, STACK_SIZE)
    with pytest.raises(ToolchainMissing, match="Debian package qemu-system-arm"):
        run_to_exit(HELLO, timeout_s=1)
    with pytest.raises(ToolchainMissing, match="Debian package gcc "):
        toolchain.find_tool("gcc")
