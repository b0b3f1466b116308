"""MCU backend bench: Skynet (width 0.5, 160x320, a mixed policy with pruning) compiled to C
with Huffman-packed weights, flashed to the emulated Cortex-M4 (QEMU -icount shift=0) and
run over serial (ajpq.boards.Board / Session).

Prints JSON: weight bytes (Huffman / fixed width / int8 / fp32), Huffman bits vs entropy,
code bytes, peak arena RAM, flash, and instructions per MAC per kernel kind and for the whole
net, plus the share of instructions spent decoding weights. The model's weights are random
drawn from a Gaussian (trained conv weights are close to one; the default uniform init would
make Huffman coding look worse than it is) with BN statistics randomised: speed does not
depend on training. Skynet at 160x320
needs ~3 MB of activations, so it runs on qemu-mps2-an386-4m (all of QEMU's RAM).

    python bench/mcu_skynet.py [--width 0.5] [--size 160 320] [--board qemu-mps2-an386-4m]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import ajpq
from ajpq.backends.mcu.artifact import Artifact
from ajpq.boards import Board, Measurement
from ajpq.models.random_init import randomize_batchnorm


def kind_of(node: ajpq.graph.hwgraph.Node) -> str:
    if node.op != "conv":
        return node.op
    kh, kw = node.arrays["weight"].shape[2:]
    if node.attrs["groups"] > 1:
        return f"depthwise{kh}x{kw}"
    return "pointwise" if (kh, kw) == (1, 1) else f"conv{kh}x{kw}"


def per_kind(graph: ajpq.HwGraph, per_layer: list[dict[str, int]]) -> dict:
    """Instructions per MAC of each kernel kind, from a Measurement's per-layer counts."""
    kinds: dict[str, dict[str, float]] = {}
    for node, layer in zip(graph.nodes[1:], per_layer, strict=True):
        if node.op not in ("conv", "linear"):
            continue
        macs = int(np.prod(node.shape[1:]) if node.op == "conv" else 1) * int(
            node.arrays["weight"].size
        )
        entry = kinds.setdefault(kind_of(node), {"macs": 0, "instructions": 0, "decode": 0})
        entry["macs"] += macs
        entry["instructions"] += layer["count"] - layer["decode_count"]
        entry["decode"] += layer["decode_count"]
    for entry in kinds.values():
        entry["instructions_per_mac"] = round(entry["instructions"] / entry["macs"], 3)
    return kinds


def measure(artifact: Artifact, board_id: str, image: np.ndarray) -> Measurement:
    """One inference of ``image`` on the board, over serial (QEMU runs Skynet slowly)."""
    with Board(board_id) as board:
        board.flash(artifact)
        with board.open(run_timeout_s=1800) as session:
            return session.benchmark(runs=1, warmup=0, x=image)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--size", type=int, nargs=2, default=[160, 320])
    parser.add_argument("--board", default="qemu-mps2-an386-4m")
    parser.add_argument("--sparsity", type=float, default=0.3)
    args = parser.parse_args(argv)
    size = (args.size[0], args.size[1])
    torch.manual_seed(0)
    model = randomize_batchnorm(ajpq.models.skynet(args.width, size))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
    policy = ajpq.Policy.from_sparsity(model, args.sparsity, bits=[8, 6, 4], act_bits=8)
    graph = ajpq.lower(ajpq.quantize(model, policy))
    with tempfile.TemporaryDirectory() as out:
        artifact = ajpq.compile(graph, "mcu", args.board, Path(out))
        image = np.random.default_rng(0).integers(0, 256, (1, 3, *size), dtype=np.uint8)
        result = measure(artifact, args.board, image[0])
        exact = bool(np.array_equal(result.output, graph.run(image)[0]))
    report = artifact.report
    total = result.count
    decode = sum(layer["decode_count"] for layer in result.per_layer)
    macs = graph.summary()["macs"]
    layers = report["layers"]
    return {
        "model": f"skynet width {args.width} {size[0]}x{size[1]}, sparsity {args.sparsity}, "
        "bits [8, 6, 4] by importance",
        "board": args.board,
        "bit_exact_with_golden": exact,
        "weights": report["weights"],
        "huffman_bits_vs_entropy": round(
            sum(x["huffman_bits"] for x in layers) / sum(x["entropy_bits"] for x in layers), 4
        ),
        "worst_layer_huffman_vs_entropy": max(x["huffman_vs_entropy"] or 0 for x in layers),
        "code_bytes": report["code_bytes"],
        "model_data_bytes": report["model_data_bytes"],
        "flash_bytes": report["flash_bytes"],
        "peak_arena_bytes": report["peak_arena_bytes"],
        "ram_bytes": report["ram_bytes"],
        "macs": macs,
        "instructions": total,
        "unit": result.unit,
        "instructions_per_mac": round(total / macs, 3),
        "decode_share": round(decode / total, 4),
        "timer_source": result.timer_source,
        "per_kind": per_kind(graph, result.per_layer),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
