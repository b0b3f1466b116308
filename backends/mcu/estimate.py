"""Fast cost model of the mcu backend: instructions, flash and RAM of a HwGraph, no compiler.

Each node costs ``factor[kind] * work``: MACs for conv/linear (kinds ``pointwise``,
``depthwise3x3``, ``conv3x3``, ... as in ``bench/mcu_skynet.py``), input elements for pools
and output elements for data movement, plus ``decode`` instructions per weight for the
Huffman weight decoder. The defaults were measured on QEMU -icount with the Cortex-M4 kernels;
``calibrate`` re-measures them on a board with the self-test firmware and caches the fit by
board id and firmware-source hash.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ajpq.backends.mcu.host import FIRMWARE
from ajpq.backends.mcu.plan import plan
from ajpq.boards import BoardSpec, get
from ajpq.graph.hwgraph import HwGraph, Node

CODE_BYTES_ESTIMATE = 24 * 1024  # same as the compile step's flash check
RUNTIME_RAM_BYTES = 1024

# instructions per unit of work; measured on qemu-mps2-an386 (-icount) with the M4 kernels
DEFAULT_FACTORS: dict[str, float] = {
    "pointwise": 2.07,  # per MAC
    "depthwise3x3": 6.3,  # per MAC
    "conv3x3": 2.0,  # per MAC
    "conv": 2.0,  # per MAC, other dense kernel sizes
    "depthwise": 6.3,  # per MAC, other depthwise kernel sizes
    "linear": 2.0,  # per MAC
    "maxpool": 9.0,  # per input element
    "avgpool": 4.0,  # per input element
    "reorg": 3.0,  # per output element
    "concat": 3.0,  # per output element
    "add": 3.0,  # per output element
    "flatten": 0.0,  # an alias, no work
    "decode": 15.0,  # per weight, Huffman decode
}


@dataclass
class Cost:
    """The estimated cost of one inference of a HwGraph on an mcu board."""

    count: float  # instructions (or cycles) per inference
    unit: str
    latency_s: float
    flash_bytes: int
    ram_bytes: int
    per_layer: dict[str, dict[str, Any]] = field(default_factory=dict)


def kernel_kind(node: Node) -> str:
    """The factor key of ``node``: conv kinds by kernel size and grouping, else the op."""
    if node.op != "conv":
        return node.op
    kh, kw = node.arrays["weight"].shape[2:]
    if node.attrs.get("groups", 1) > 1:
        return f"depthwise{kh}x{kw}"
    return "pointwise" if (kh, kw) == (1, 1) else f"conv{kh}x{kw}"


def node_work(node: Node, shapes: dict[str, tuple[int, ...]]) -> tuple[str, int, int]:
    """(kind, work units, weights) of one node; work is MACs, input or output elements."""
    kind = kernel_kind(node)
    if node.op in ("conv", "linear"):
        weights = int(node.arrays["weight"].size)
        positions = int(np.prod(node.shape[1:])) if node.op == "conv" else 1
        return kind, positions * weights, weights
    if node.op in ("maxpool", "avgpool"):
        return kind, int(np.prod(shapes[node.inputs[0]])), 0
    return kind, int(np.prod(node.shape)), 0


def _factor(factors: dict[str, float], kind: str) -> float:
    if kind in factors:
        return factors[kind]
    return factors["depthwise" if kind.startswith("depthwise") else "conv"]


def estimate(
    hw: HwGraph,
    board: "str | BoardSpec" = "qemu-mps2-an386",
    factors: dict[str, float] | None = None,
) -> Cost:
    """Estimated instructions, latency (at the board's clock), flash and RAM of ``hw``."""
    spec = get(board)
    table = {**DEFAULT_FACTORS, **(factors or {})}
    shapes = {n.name: n.shape for n in hw.nodes}
    per_layer: dict[str, dict[str, Any]] = {}
    for node in hw.nodes[1:]:
        kind, work, weights = node_work(node, shapes)
        compute = _factor(table, kind) * work
        decode = table["decode"] * weights
        per_layer[node.name] = {
            "kind": kind,
            "work": work,
            "weights": weights,
            "count": compute + decode,
            "decode": decode,
        }
    count = float(sum(layer["count"] for layer in per_layer.values()))
    model_plan = plan(hw, max_kernel_scratch=max(spec.ram_bytes // 8, 1024))
    ram = (
        model_plan.arena_bytes
        + model_plan.weight_scratch_bytes
        + model_plan.kernel_scratch_bytes
        + spec.stack_bytes
        + RUNTIME_RAM_BYTES
    )
    flash = _model_bytes(hw) + CODE_BYTES_ESTIMATE
    return Cost(count, "instructions", count / spec.clock_hz, flash, ram, per_layer)


def _model_bytes(hw: HwGraph) -> int:
    """Weights at their fixed bit-widths (Huffman only shrinks them) + 32-bit biases and
    requantization parameters per output channel."""
    total = 0
    for node in hw.nodes:
        if node.op in ("conv", "linear"):
            weight = node.arrays["weight"]
            per_channel = int(np.prod(weight.shape[1:]))
            bits = node.arrays["weight_bits"].astype(np.int64)
            total += int(np.ceil((bits * per_channel).sum() / 8)) + 12 * len(bits)
    return total


# ---- calibration on a board ---------------------------------------------------------------
def firmware_hash() -> str:
    """Hash of the firmware/ sources: a new kernel invalidates a calibration."""
    digest = hashlib.sha256()
    for path in sorted(p for p in FIRMWARE.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(FIRMWARE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fit_factors(
    graph: HwGraph, layer_counts: np.ndarray, decode_counts: np.ndarray
) -> dict[str, float]:
    """Per-kind factors from measured per-node counts (one inference, nodes after the input):
    total instructions of a kind over its total work; decode over all weights."""
    shapes = {n.name: n.shape for n in graph.nodes}
    work: dict[str, float] = {}
    spent: dict[str, float] = {}
    weights = decode = 0.0
    for node, count, dec in zip(graph.nodes[1:], layer_counts, decode_counts, strict=True):
        kind, units, node_weights = node_work(node, shapes)
        work[kind] = work.get(kind, 0.0) + units
        spent[kind] = spent.get(kind, 0.0) + float(count) - float(dec)
        weights, decode = weights + node_weights, decode + float(dec)
    fitted = {kind: spent[kind] / work[kind] for kind in work if work[kind] > 0}
    if weights > 0:
        fitted["decode"] = decode / weights
    return fitted


def calibrate(
    board: "str | BoardSpec",
    out_dir: "str | Path",
    graph: HwGraph | None = None,
    images: np.ndarray | None = None,
    timeout_s: float = 600.0,
) -> dict[str, float]:
    """Factors for ``board``: measured with the self-test firmware on ``graph`` (by default a
    small random Skynet) and cached in ``out_dir`` by board id and firmware hash."""
    spec = get(board)
    cache = Path(out_dir) / f"mcu-factors-{spec.id}-{firmware_hash()}.json"
    if cache.exists():
        return {str(k): float(v) for k, v in json.loads(cache.read_text()).items()}
    if graph is None:
        graph = _calibration_graph()
    if images is None:
        shape = graph.nodes[0].shape
        images = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
    from ajpq.backends.mcu import compile

    artifact = compile(graph, spec, Path(out_dir) / f"calibrate-{spec.id}", firmware=False)
    result = artifact.run_selftest(images, timeout_s=timeout_s)
    fitted = {
        **DEFAULT_FACTORS,
        **fit_factors(graph, result.layer_counts[0], result.decode_counts[0]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(fitted, indent=1))
    return fitted


def _calibration_graph() -> HwGraph:
    import torch

    from ajpq.graph.lower import lower
    from ajpq.models.skynet import skynet
    from ajpq.quant.policy import Policy
    from ajpq.quant.quantize import quantize

    torch.manual_seed(0)
    model = skynet(0.25, (32, 64))
    return lower(quantize(model, Policy.from_sparsity(model, 0.3, bits=[8, 6, 4])))
