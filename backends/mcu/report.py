"""The MCU artifact's size and memory report (a dict, report.json, and a printed table)."""

import re
import subprocess
from pathlib import Path
from typing import Any

from rich.table import Table

from ajpq.backends.mcu.emit import LayerWeights
from ajpq.backends.mcu.plan import Plan
from ajpq.boards import BoardSpec

WEIGHT_SYMBOL = re.compile(r"^ajpq_w\d+_")


def symbol_bytes(elf: Path) -> dict[str, int]:
    """Sizes of the model's data symbols (weights, tables, per-channel parameters) in the ELF."""
    result = subprocess.run(
        ["arm-none-eabi-nm", "-S", "--size-sort", str(elf)],
        capture_output=True,
        text=True,
        check=True,
    )
    sizes: dict[str, int] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and WEIGHT_SYMBOL.match(parts[3]):
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def build_report(
    board: BoardSpec,
    plan: Plan,
    layers: list[LayerWeights],
    model_hash: str,
    elf_sizes: dict[str, int] | None,
    model_data_bytes: int | None,
) -> dict[str, Any]:
    count = sum(layer.count for layer in layers)
    stream = sum(layer.huffman_bytes for layer in layers)
    report: dict[str, Any] = {
        "board": board.id,
        "model_hash": model_hash,
        "weights": {
            "count": count,
            "huffman_bytes": stream,
            "fixed_width_bytes": (sum(layer.fixed_width_bits for layer in layers) + 7) // 8,
            "int8_bytes": count,
            "fp32_bytes": 4 * count,
        },
        "layers": [
            {
                "name": layer.name,
                "weights": layer.count,
                "symbols": layer.symbols,
                "huffman_bits": layer.huffman_bits,
                "entropy_bits": round(layer.entropy_bits, 1),
                "layer_entropy_bits": round(layer.layer_entropy_bits, 1),
                "huffman_groups": layer.groups,
                "huffman_vs_entropy": round(layer.huffman_bits / layer.entropy_bits, 4)
                if layer.entropy_bits
                else None,
                "fixed_width_bits": layer.fixed_width_bits,
            }
            for layer in layers
        ],
        "peak_arena_bytes": plan.arena_bytes,
        "weight_scratch_bytes": plan.weight_scratch_bytes,
        "budget": {"flash_bytes": board.flash_bytes, "ram_bytes": board.ram_bytes},
    }
    if elf_sizes is not None:
        flash = elf_sizes["text"] + elf_sizes["data"]
        report.update(
            {
                "flash_bytes": flash,
                "ram_bytes": elf_sizes["data"] + elf_sizes["bss"] + board.stack_bytes,
                "model_data_bytes": model_data_bytes,
                "code_bytes": flash - (model_data_bytes or 0),
            }
        )
    return report


def report_table(report: dict[str, Any]) -> Table:
    w = report["weights"]
    table = Table(title=f"ajpq mcu artifact for {report['board']} (model {report['model_hash']})")
    table.add_column("what")
    table.add_column("bytes", justify="right")
    table.add_column("note")
    rows = [
        ("weights, Huffman-packed", w["huffman_bytes"], "streams only"),
        ("weights at fixed per-channel width", w["fixed_width_bytes"], ""),
        ("weights as int8", w["int8_bytes"], ""),
        ("weights as fp32", w["fp32_bytes"], ""),
    ]
    if "flash_bytes" in report:
        rows += [
            (
                "model data in flash",
                report["model_data_bytes"],
                "streams + tables + biases + requant",
            ),
            ("code", report["code_bytes"], "runtime, kernels, startup"),
            ("flash total", report["flash_bytes"], f"budget {report['budget']['flash_bytes']:,}"),
            ("RAM total", report["ram_bytes"], f"budget {report['budget']['ram_bytes']:,}"),
        ]
    rows += [
        ("peak arena", report["peak_arena_bytes"], "activations, by liveness"),
        ("weight scratch", report["weight_scratch_bytes"], "largest decoded layer"),
    ]
    for what, value, note in rows:
        table.add_row(what, f"{value:,}", note)
    return table


def layer_table(report: dict[str, Any]) -> Table:
    table = Table(title="Huffman bits vs Shannon entropy per layer")
    for column in (
        "layer",
        "weights",
        "symbols",
        "Huffman bits",
        "entropy bits",
        "ratio",
        "fixed-width bits",
    ):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for layer in report["layers"]:
        ratio = "-" if layer["huffman_vs_entropy"] is None else f"{layer['huffman_vs_entropy']:.3f}"
        table.add_row(
            layer["name"],
            f"{layer['weights']:,}",
            str(layer["symbols"]),
            f"{layer['huffman_bits']:,}",
            f"{layer['entropy_bits']:,.0f}",
            ratio,
            f"{layer['fixed_width_bits']:,}",
        )
    return table
