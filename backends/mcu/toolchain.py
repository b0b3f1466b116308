"""Find the cross toolchain and build a firmware ELF for a board port (firmware/ports/<board>).

A port folder holds its C sources, a linker script template (``linker.ld.in`` with
``@FLASH_SIZE@``, ``@RAM_SIZE@`` and ``@STACK_SIZE@``) and ``port.mk``, whose plain
``NAME = words`` lines give the compile flags, the sources, and two numbers for the shared
Cortex-M startup (``ports/common/cortexm_startup.c``): ``PORT_IRQS``, the part's external
IRQ count, and ``PORT_SET_VTOR`` (1 or 0), passed as ``-DAJPQ_PORT_IRQS`` and
``-DAJPQ_PORT_SET_VTOR``. This module reads that file, renders the template with the board's
real budget into the build folder and runs arm-none-eabi-gcc once over every source. An image
that does not fit fails at link time and is reported as one sentence naming the region, the
bytes needed and the bytes the board has.
"""

import re
import shutil
import subprocess
from pathlib import Path

from ajpq import resources
from ajpq.errors import AjpqError, ToolchainMissing

FIRMWARE_DIR = resources.FIRMWARE_DIR
PORTS_DIR = FIRMWARE_DIR / "ports"
DEFAULT_BOARD = "qemu-mps2-an386"

# Debian package (and the apt-get line) that provides each tool.
_PACKAGES = {
    "arm-none-eabi-gcc": (
        "gcc-arm-none-eabi",
        "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    ),
    "arm-none-eabi-size": ("binutils-arm-none-eabi", "apt-get install binutils-arm-none-eabi"),
    "qemu-system-arm": ("qemu-system-arm", "apt-get install qemu-system-arm"),
    "gcc": ("gcc", "apt-get install gcc"),
}

_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
_ASSERTION = re.compile(r"(ajpq: [^\n]+)")
_MAKE_LINE = re.compile(r"^([A-Z_]+)\s*=\s*(.*)$")


def find_tool(name: str) -> str:
    """Path of an executable on PATH; raises ToolchainMissing naming the package to install."""
    path = shutil.which(name)
    if path is None:
        package, command = _PACKAGES.get(name, (name, f"apt-get install {name}"))
        raise ToolchainMissing(
            f"{name} missing: install the Debian package {package} ({command}), or run make setup"
        )
    return path


def port_dir(board: str = DEFAULT_BOARD) -> Path:
    """The folder of a board's firmware port; raises AjpqError when there is none."""
    folder = PORTS_DIR / board
    if not (folder / "port.mk").is_file():
        known = sorted(p.name for p in PORTS_DIR.iterdir() if (p / "port.mk").is_file())
        raise AjpqError(f"board '{board}' has no firmware port in {PORTS_DIR}; ports: {known}")
    return folder


def port_settings(board: str = DEFAULT_BOARD) -> dict[str, list[str]]:
    """The ``NAME = words`` lines of a port's port.mk, each split into words."""
    settings: dict[str, list[str]] = {}
    for line in (port_dir(board) / "port.mk").read_text().splitlines():
        match = _MAKE_LINE.match(line.strip())
        if match:
            settings[match.group(1)] = match.group(2).split()
    return settings


def port_defines(board: str = DEFAULT_BOARD) -> dict[str, object]:
    """The startup's defines from port.mk: AJPQ_PORT_IRQS (required), AJPQ_PORT_SET_VTOR."""
    settings = port_settings(board)
    irqs = settings.get("PORT_IRQS", [])
    if len(irqs) != 1 or not irqs[0].isdigit():
        raise AjpqError(
            f"port.mk of '{board}' needs one line `PORT_IRQS = <count>` (the part's external "
            "IRQs, from its reference manual) for the vector table of ports/common"
        )
    set_vtor = settings.get("PORT_SET_VTOR", ["1"])
    if set_vtor not in (["0"], ["1"]):
        raise AjpqError(f"PORT_SET_VTOR in the port.mk of '{board}' must be 0 or 1")
    return {"AJPQ_PORT_IRQS": int(irqs[0]), "AJPQ_PORT_SET_VTOR": int(set_vtor[0])}


def render_linker_script(
    board: str, out_path: Path, flash_size: int, ram_size: int, stack_size: int
) -> Path:
    """Write the port's linker script with the given budget (bytes) to out_path."""
    settings = port_settings(board)
    template = (port_dir(board) / settings["PORT_LINKER_TEMPLATE"][0]).read_text()
    values = {"FLASH_SIZE": flash_size, "RAM_SIZE": ram_size, "STACK_SIZE": stack_size}
    for name, value in values.items():
        template = template.replace(f"@{name}@", str(int(value)))
    leftover = re.search(r"@[A-Z_]+@", template)
    if leftover:
        raise AjpqError(f"linker template of '{board}' has an unknown placeholder {leftover[0]}")
    out_path.write_text(template)
    return out_path


def _define_flags(defines: dict[str, object] | None) -> list[str]:
    flags = []
    for name, value in (defines or {}).items():
        flags.append(f"-D{name}" if value is None else f"-D{name}={value}")
    return flags


def _link_error(stderr: str, board: str, sizes: dict[str, int], stack_size: int) -> AjpqError:
    overflows = {region: int(amount) for region, amount in _OVERFLOW.findall(stderr)}
    if overflows:
        parts = []
        for region, amount in sorted(overflows.items()):
            available = sizes.get(region, 0)
            what = (
                f"for .data, .bss and {stack_size} bytes of stack"
                if region == "RAM"
                else "for code, constants and .data initial values"
            )
            parts.append(
                f"{available + amount} bytes of {region} {what} but {board} has {available}"
            )
        return AjpqError(
            f"the firmware needs {' and '.join(parts)} (the linker said region overflowed by "
            f"{', '.join(f'{n} bytes in {r}' for r, n in sorted(overflows.items()))}); "
            "choose a smaller model or policy, or a board with more memory"
        )
    assertion = _ASSERTION.search(stderr)
    if assertion:
        return AjpqError(f"the firmware for {board} does not link: {assertion[1]}")
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    first = errors[0] if errors else (stderr.strip().splitlines() or ["no output"])[-1]
    return AjpqError(f"arm-none-eabi-gcc failed to build the firmware for {board}: {first}")


def build_firmware(
    sources: list[Path],
    include_dirs: list[Path],
    out_elf: Path,
    flash_size: int,
    ram_size: int,
    stack_size: int,
    defines: dict[str, object] | None = None,
    board: str = DEFAULT_BOARD,
) -> Path:
    """Compile and link sources plus the board port into out_elf; returns out_elf.

    The rendered linker script (``<elf stem>.ld``) and link map (``<elf stem>.map``) are
    written next to out_elf. firmware/include is always on the include path.
    """
    gcc = find_tool("arm-none-eabi-gcc")
    folder = port_dir(board)
    settings = port_settings(board)
    out_elf = Path(out_elf)
    out_elf.parent.mkdir(parents=True, exist_ok=True)
    script = render_linker_script(
        board, out_elf.with_suffix(".ld"), flash_size, ram_size, stack_size
    )
    port_sources = [folder / name for name in settings["PORT_SOURCES"]]
    includes = [FIRMWARE_DIR / "include", *map(Path, include_dirs)]
    command = [
        gcc,
        *settings["PORT_CPU_FLAGS"],
        *settings["PORT_CFLAGS"],
        *_define_flags({**port_defines(board), **(defines or {})}),
        *(f"-I{path}" for path in includes),
        *map(str, [*sources, *port_sources]),
        f"-T{script}",
        *settings["PORT_LDFLAGS"],
        f"-Wl,-Map={out_elf.with_suffix('.map')}",
        "-o",
        str(out_elf),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        if "nano.specs" in result.stderr:
            raise ToolchainMissing(
                "newlib for arm-none-eabi missing: install the Debian package "
                "libnewlib-arm-none-eabi (apt-get install libnewlib-arm-none-eabi), "
                "or run make setup"
            )
        sizes = {"FLASH": flash_size, "RAM": ram_size}
        raise _link_error(result.stderr, board, sizes, stack_size)
    return out_elf


def _run_size(elf: Path, *options: str) -> str:
    result = subprocess.run(
        [find_tool("arm-none-eabi-size"), *options, str(elf)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise AjpqError(f"arm-none-eabi-size cannot read {elf}: {result.stderr.strip()}")
    return result.stdout


def elf_sizes(elf: Path) -> dict[str, int]:
    """Section totals of an ELF from arm-none-eabi-size, in bytes.

    ``text`` is code + constants (flash), ``data`` initialised RAM (also stored in flash),
    ``bss`` zeroed RAM variables, ``stack`` the stack the linker script reserves at the end of
    RAM; ``flash`` = text + data and ``ram`` = data + bss + stack.
    """
    text, data, berkeley_bss = (int(w) for w in _run_size(elf, "-B").splitlines()[1].split()[:3])
    sections = {}
    for line in _run_size(elf, "-A").splitlines():
        words = line.split()
        if len(words) == 3 and words[1].isdigit():
            sections[words[0]] = int(words[1])
    stack = sections.get(".stack", 0)
    bss = berkeley_bss - stack
    return {
        "text": text,
        "data": data,
        "bss": bss,
        "stack": stack,
        "flash": text + data,
        "ram": data + bss + stack,
    }
