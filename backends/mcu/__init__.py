"""The microcontroller backend: HwGraph -> C with Huffman-packed weights -> host library and
board firmware. ``compile`` runs named steps, each writing into the build directory:

    sort      channels sorted by bit-width, so each width gets its own Huffman code
    plan      kernel calls + static arena (plan.json)
    emit      src/ajpq_model.{h,c}, src/ajpq_weights.{h,c}
    budget    refuse a model over the board's RAM/flash before linking
    host      host/libajpq_model.so (gcc), for run_host and tests
    firmware  firmware/ajpq.elf: model + runtime + serial protocol server (arm-none-eabi-gcc,
              the board's linker script with its real budget)
    report    report.json + a printed table
"""

import json
from pathlib import Path

from rich.console import Console

from ajpq.backends.mcu.artifact import Artifact, SelfTest
from ajpq.backends.mcu.emit import model_hash
from ajpq.backends.mcu.estimate import estimate
from ajpq.backends.mcu.host import build_host_library
from ajpq.backends.mcu.plan import Plan, plan
from ajpq.backends.mcu.report import build_report, layer_table, report_table
from ajpq.backends.mcu.sources import write_sources
from ajpq.boards import BoardSpec, get
from ajpq.errors import AjpqError, BudgetExceeded
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.sort_channels_by_bits import sort_channels_by_bits

__all__ = ["Artifact", "SelfTest", "compile", "check_budget", "estimate"]

RUNTIME_RAM_BYTES = 1024  # port state, timer, small statics
CODE_BYTES_ESTIMATE = 24 * 1024


def check_budget(board: BoardSpec, model_plan: Plan, flash_data_bytes: int) -> None:
    ram = (
        model_plan.arena_bytes
        + model_plan.weight_scratch_bytes
        + model_plan.kernel_scratch_bytes
        + board.stack_bytes
        + RUNTIME_RAM_BYTES
    )
    if board.ram_bytes and ram > board.ram_bytes:
        raise BudgetExceeded(
            f"the model needs {ram:,} bytes of RAM (arena {model_plan.arena_bytes:,} + scratch "
            f"{model_plan.weight_scratch_bytes + model_plan.kernel_scratch_bytes:,} + stack "
            f"{board.stack_bytes:,}) but "
            f"{board.id} has {board.ram_bytes:,}; prune more, lower the input size, or pick a "
            "board with more RAM"
        )
    flash = flash_data_bytes + CODE_BYTES_ESTIMATE
    if board.flash_bytes and flash > board.flash_bytes:
        raise BudgetExceeded(
            f"the model needs about {flash:,} bytes of flash ({flash_data_bytes:,} of weights "
            f"and parameters + ~{CODE_BYTES_ESTIMATE:,} of code) but {board.id} has "
            f"{board.flash_bytes:,}; prune more or use fewer bits"
        )


def compile(
    hw: HwGraph,
    board: "str | BoardSpec" = "qemu-mps2-an386",
    out_dir: "str | Path" = "build/ajpq-mcu",
    firmware: bool = True,
    console: Console | None = None,
    group_codes: bool = True,
) -> Artifact:
    """Compile ``hw`` for an MCU board: generated C, host library, board ELF and a report.

    ``group_codes``: one Huffman code per group of equal-bit-width channels (the graph's
    channels are first sorted by bit-width, which changes no output), else one per layer.
    """
    spec = get(board)
    if spec.kind != "mcu":
        raise AjpqError(
            f"{spec.id} is an {spec.kind} board; the mcu backend needs an mcu board "
            "(see `ajpq boards`)"
        )
    hw = sort_channels_by_bits(hw) if group_codes else hw
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_plan = plan(hw, max_kernel_scratch=spec.ram_bytes // 8)
    (out / "plan.json").write_text(
        json.dumps(
            {
                "arena_bytes": model_plan.arena_bytes,
                "weight_scratch_bytes": model_plan.weight_scratch_bytes,
                "tensors": {
                    n: {"offset": t.offset, "bytes": t.bytes, "first": t.first, "last": t.last}
                    for n, t in model_plan.tensors.items()
                },
            },
            indent=1,
        )
    )
    src = out / "src"
    layers, data_bytes = write_sources(hw, model_plan, src, group_codes)
    check_budget(spec, model_plan, data_bytes)
    (out / "host").mkdir(exist_ok=True)
    library = build_host_library(src, out / "host" / "libajpq_model.so")
    elf, sizes, model_data = None, None, None
    if firmware:  # the deployable firmware: model + runtime + the serial protocol server
        from ajpq.backends.mcu.firmware import build_server_firmware
        from ajpq.backends.mcu.report import symbol_bytes
        from ajpq.backends.mcu.toolchain import elf_sizes

        elf = build_server_firmware(src, spec, out / "firmware", name="ajpq")
        sizes, model_data = elf_sizes(elf), sum(symbol_bytes(elf).values())
    digest = model_hash(hw)
    report = build_report(spec, model_plan, layers, digest, sizes, model_data)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    artifact = Artifact(
        "mcu",
        spec.id,
        out,
        digest,
        tuple(hw.nodes[0].shape),
        tuple(hw.output.shape),
        sorted(src.glob("*")),
        library,
        elf,
        report,
    )
    artifact.save()
    if console is not None:
        console.print(report_table(report))
        console.print(layer_table(report))
    return artifact
