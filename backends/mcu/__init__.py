"""The microcontroller backend: HwGraph -> C with Huffman-packed weights -> host library and
board firmware. ``compile`` runs the named steps of ``steps.py`` (sort, plan, emit, budget,
host, firmware, report), each writing into the build directory and recorded in steps.json,
so a failed build can be read and resumed from the last good step. The memory rules (kernel
scratch, runtime RAM, code size) live in ``budget.py``; the stored weight bytes in
``huffman.stored_weight_bytes``.
"""

from pathlib import Path

from rich.console import Console

from ajpq.backends.mcu.artifact import Artifact
from ajpq.backends.mcu.budget import check_budget
from ajpq.backends.mcu.emit import model_hash
from ajpq.backends.mcu.estimate import estimate
from ajpq.backends.mcu.report import layer_table, report_table
from ajpq.backends.mcu.steps import BuildContext, run_steps
from ajpq.boards import BoardSpec, get
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph

__all__ = ["Artifact", "compile", "check_budget", "estimate"]


def compile(
    hw: HwGraph,
    board: "str | BoardSpec" = "qemu-mps2-an386",
    out_dir: "str | Path" = "build/ajpq-mcu",
    firmware: bool = True,
    console: Console | None = None,
    group_codes: bool = True,
    resume: bool = False,
) -> Artifact:
    """Compile ``hw`` for an MCU board: generated C, host library, board ELF and a report.

    ``group_codes``: one Huffman code per group of equal-bit-width channels (the graph's
    channels are first sorted by bit-width, which changes no output), else one per layer.
    ``resume``: reuse the steps an earlier build into ``out_dir`` finished, when the graph,
    board, options and firmware sources are unchanged (see steps.json there).
    """
    spec = get(board)
    if spec.kind != "mcu":
        raise AjpqError(
            f"{spec.id} is an {spec.kind} board; the mcu backend needs an mcu board "
            "(see `ajpq boards`)"
        )
    ctx = BuildContext(hw, spec, Path(out_dir), firmware=firmware, group_codes=group_codes)
    run_steps(ctx, resume=resume)
    assert ctx.library is not None
    artifact = Artifact(
        "mcu",
        spec.id,
        ctx.out_dir,
        model_hash(ctx.hw),
        tuple(ctx.hw.nodes[0].shape),
        tuple(ctx.hw.output.shape),
        sorted(ctx.src.glob("*")),
        ctx.library,
        ctx.elf,
        ctx.report,
    )
    artifact.save()
    if console is not None:
        console.print(report_table(ctx.report))
        console.print(layer_table(ctx.report))
    return artifact
