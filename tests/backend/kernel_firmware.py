"""Conv / depthwise / linear layers as a Cortex-M4 firmware: C tables, build, run, parse.

``emit_cases`` writes golden conv and linear layers (``kernel_cases.Case``: a golden
``Node`` and its input) as C arrays and a table (tests/backend/fixtures/kernel_bench.h);
``build`` links them with tests/backend/fixtures/kernel_bench_main.c, the reference and the
m4 kernels for the qemu-mps2-an386 port; ``run`` runs the firmware under QEMU ``-icount`` and
returns, per case and kernel variant ("ref", "m4"), the elapsed instructions and the outputs.
Used by tests/backend/test_kernels_m4.py and bench/mcu_kernels.py.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ajpq.backends.mcu import toolchain
from ajpq.boards.qemu import run_to_exit
from ajpq.errors import AjpqError
from tests.backend.kernel_cases import Case

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KERNELS = ROOT / "firmware" / "kernels"
OPS = ("conv", "dwconv", "linear")
SOURCES = [
    FIXTURES / "kernel_bench_main.c",
    *(KERNELS / f"ajpq_{op}_{kind}_s8.c" for op in OPS for kind in ("ref", "m4")),
]
INCLUDES = [ROOT / "firmware" / "runtime", FIXTURES]
FLASH_SIZE = 4 * 1024 * 1024  # QEMU's mps2-an386 memory, not a real board's budget
RAM_SIZE = 4 * 1024 * 1024
STACK_SIZE = 16 * 1024


@dataclass
class Run:
    """What one kernel variant did on one case."""

    units: int
    outputs: list[int] = field(default_factory=list)


def _array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1).astype(np.int64)
    if flat.size == 0:
        flat = np.zeros(1, dtype=np.int64)
    body = ",".join(str(int(v)) for v in flat)
    return f"static const {ctype} {name}[{flat.size}] = {{{body}}};\n"


def _requant(node_index: int, case: Case) -> tuple[str, str]:
    """(declarations, initializer) of the requant struct of one case."""
    node = case[0]
    if not node.attrs.get("requant", True):
        return "", "{0, NULL, NULL, 0, 0, 0}"
    decls = _array("int32_t", f"mult{node_index}", node.arrays["multiplier"])
    decls += _array("int8_t", f"shift{node_index}", node.arrays["shift"])
    lo, hi = node.attrs["act_min"], node.attrs["act_max"]
    rounding = int(node.attrs.get("rounding", "single") == "double")
    return decls, f"{{1, mult{node_index}, shift{node_index}, {lo}, {hi}, {rounding}}}"


def _linear_source(i: int, case: Case) -> tuple[str, str]:
    node, (x,) = case
    weight = node.arrays["weight"]
    text = _array("int16_t", f"input{i}", x[0])
    text += _array("int8_t", f"weight{i}", weight)
    text += _array("int32_t", f"bias{i}", node.arrays["bias"])
    decls, requant = _requant(i, case)
    text += decls + f"static const ajpq_linear_params_t params{i} = "
    text += f"{{{weight.shape[1]}, {weight.shape[0]}, weight{i}, bias{i}, {requant}}};\n"
    return text, f"{{NULL, NULL, &params{i}, input{i}, {weight.shape[0]}u}}"


def _case_source(i: int, case: Case) -> tuple[str, str]:
    """(C definitions, table entry) of case i."""
    node, (x,) = case
    if node.op == "linear":
        return _linear_source(i, case)
    weight = node.arrays["weight"]
    depthwise = node.attrs["groups"] != 1
    index = node.arrays.get("in_index")
    text = _array("int16_t", f"input{i}", x[0])
    text += _array("int8_t", f"weight{i}", weight)
    text += _array("int32_t", f"bias{i}", node.arrays["bias"])
    if index is not None:
        text += _array("int32_t", f"index{i}", index)
    decls, requant = _requant(i, case)
    text += decls
    (kh, kw), (sh, sw), (ph, pw) = weight.shape[2:], node.attrs["stride"], node.attrs["padding"]
    window = f"{node.shape[1]}, {node.shape[2]}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}"
    tail = f"{f'index{i}' if index is not None else 'NULL'}, weight{i}, bias{i}, {requant}"
    channels = f"{weight.shape[1]}, {x.shape[2]}, {x.shape[3]}, {weight.shape[0]}"
    if depthwise:
        text += f"static const ajpq_dwconv_params_t params{i} = "
        text += f"{{{weight.shape[0]}, {x.shape[2]}, {x.shape[3]}, {window}, {tail}}};\n"
        entry = f"{{NULL, &params{i}, NULL, input{i}, {int(np.prod(node.shape))}u}}"
    else:
        text += f"static const ajpq_conv_params_t params{i} = "
        text += f"{{{channels}, {window}, {tail}}};\n"
        entry = f"{{&params{i}, NULL, NULL, input{i}, {int(np.prod(node.shape))}u}}"
    return text, entry


def arena_bytes(case: Case) -> int:
    """Scratch the m4 kernel of the case asks for (the references need none)."""
    node = case[0]
    weight = node.arrays["weight"]
    if node.op == "linear":
        return weight.shape[1] // 4 * 4 * 2  # the reordered input
    if node.attrs["groups"] != 1:
        return 0
    depth = (int(np.prod(weight.shape[1:])) + 3) // 4 * 4
    return (weight.shape[0] + 2) * depth * 2 + weight.shape[0] * 16  # + requant constants


def emit_cases(cases: list[Case]) -> str:
    """The C source of the case table (kernel_cases_data.c)."""
    parts, entries = ['#include <stddef.h>\n#include "kernel_bench.h"\n'], []
    for i, case in enumerate(cases):
        text, entry = _case_source(i, case)
        parts.append(text)
        entries.append(entry)
    parts.append(f"const uint32_t ajpq_case_count = {len(cases)}u;\n")
    table = ",\n    ".join(entries)
    parts.append(f"const ajpq_kernel_case_t ajpq_cases[] = {{\n    {table}\n}};\n")
    return "".join(parts)


def build(cases: list[Case], build_dir: Path, print_outputs: bool = True) -> Path:
    """Builds the firmware that runs `cases`; returns its ELF."""
    build_dir.mkdir(parents=True, exist_ok=True)
    data = build_dir / "kernel_cases_data.c"
    data.write_text(emit_cases(cases))
    defines = {
        "ARENA_BYTES": max(arena_bytes(case) for case in cases),
        "OUTPUT_WORDS": max(int(np.prod(case[0].shape)) for case in cases),
        "PRINT_OUTPUTS": int(print_outputs),
    }
    elf = build_dir / "kernels.elf"
    return toolchain.build_firmware(
        [*SOURCES, data], INCLUDES, elf, FLASH_SIZE, RAM_SIZE, STACK_SIZE, defines
    )


def _signed(word: str) -> int:
    value = int(word, 16)
    return value - (1 << 32) if value >= 1 << 31 else value


def parse(uart: str) -> dict[tuple[int, str], Run]:
    """The r/o lines of the firmware's output, keyed by (case, variant)."""
    runs: dict[tuple[int, str], Run] = {}
    last: Run | None = None
    for line in uart.splitlines():
        words = line.split()
        if words[:1] == ["r"]:
            last = runs[(int(words[1]), words[2])] = Run(int(words[3]))
        elif words[:1] == ["o"] and last is not None:
            last.outputs = [_signed(word) for word in words[1:]]
    return runs


def run(elf: Path, timeout_s: float = 60) -> dict[tuple[int, str], Run]:
    """Runs the firmware under QEMU -icount; raises AjpqError unless it ends with done."""
    result = run_to_exit(elf, timeout_s=timeout_s, icount=True)
    uart = result.uart_output.decode(errors="replace")
    if result.exit_code != 0 or not uart.rstrip().endswith("done"):
        raise AjpqError(f"kernel firmware exited {result.exit_code}: {uart[-300:]!r}")
    if "systick-icount" not in uart.splitlines()[0]:
        raise AjpqError(f"kernel firmware timer is not systick-icount: {uart.splitlines()[0]}")
    return parse(uart)
