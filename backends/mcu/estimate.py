"""Fast cost model of the mcu backend: instructions, flash and RAM of a HwGraph, no compiler.

Each node's count is a linear function of its features (``FEATURES``): the work (MACs for
conv/linear, input elements for pools, output elements for data movement), the extra MACs of
the Cortex-M4 conv kernel's depth padding to a multiple of 4, its im2col column gathering,
the output elements requantized on the fast path (every channel's shift >= 33, in ajpq's
single rounding), on the fast path of a layer that also has slow channels, and on the slow
path (every channel of a layer in TFLite's double rounding), and one call. The
coefficients per kernel kind (``pointwise``, ``depthwise3x3``, ``conv3x3``, ... as in
``bench/mcu_skynet.py``) form a ``CostTable``; ``decode`` is instructions per weight of the
Huffman weight decoder. The defaults were measured on QEMU -icount with the M4 kernels;
``fit_table`` re-fits them from per-layer counts measured on a board (the search does that at
its start and after each whole-model measurement: ``ajpq.search.hardware``).
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ajpq.backends.mcu import budget, huffman
from ajpq.backends.mcu.host import FIRMWARE
from ajpq.backends.mcu.plan import KERNELS, OPTIMIZED, plan
from ajpq.boards import BoardSpec, get
from ajpq.graph.golden import double_rounding
from ajpq.graph.hwgraph import HwGraph, Node

FAST_SHIFT = 33  # the M4 kernels' requantization fast path needs shift >= 33

FEATURES = ("work", "padding", "columns", "requant_fast", "requant_mixed", "requant_slow", "node")

# instructions per unit of work; measured on qemu-mps2-an386 (-icount) with the M4 kernels
DEFAULT_FACTORS: dict[str, float] = {
    "pointwise": 2.07,  # per MAC
    "depthwise3x3": 6.3,  # per MAC
    "conv3x3": 2.0,  # per MAC
    "conv": 2.0,  # per MAC, other dense kernel sizes
    "depthwise": 6.3,  # per MAC, other depthwise kernel sizes
    "linear": 2.0,  # per MAC
    # the portable C reference kernels, where an M4 kernel's scratch would pass the board's
    # cap (or its accumulator int32); same QEMU (docs/mcu.md, bench/mcu_kernels.py): 3x3
    # 13.0 (16->16) to 18.5 (3->16), 1x1 13.6, dw 3x3 22.5, linear 5.2
    "conv_ref": 13.0,  # per MAC, dense kernels other than 1x1
    "pointwise_ref": 13.6,  # per MAC
    "depthwise_ref": 22.5,  # per MAC
    "linear_ref": 5.2,  # per MAC
    "maxpool": 9.0,  # per input element
    "avgpool": 4.0,  # per input element
    "reorg": 3.0,  # per output element
    "concat": 3.0,  # per output element
    "add": 3.0,  # per output element
    "flatten": 0.0,  # an alias, no work
    "decode": 15.0,  # per weight, Huffman decode
}

CostTable = dict[str, list[float]]  # kind -> coefficients over FEATURES; "decode" -> [per weight]


def default_table() -> CostTable:
    width = len(FEATURES)
    table = {kind: [factor] + [0.0] * (width - 1) for kind, factor in DEFAULT_FACTORS.items()}
    table["decode"] = [DEFAULT_FACTORS["decode"]]
    return table


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
    """The table key of ``node``: conv kinds by kernel size and grouping, else the op."""
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


def reference_layers(hw: HwGraph, spec: BoardSpec) -> set[str]:
    """The conv/linear nodes the plan runs on a reference kernel although an M4 one exists
    (its scratch over the board's cap, or its accumulator past int32): ~12x the work."""
    steps = plan(hw, budget.kernel_scratch_cap(spec.ram_bytes)).steps
    return {s.node.name for s in steps if s.kind in OPTIMIZED and s.kernel == KERNELS[s.kind]}


def node_features(
    node: Node, shapes: dict[str, tuple[int, ...]], reference: bool = False
) -> tuple[str, np.ndarray, int]:
    """(kind, feature vector over FEATURES, weights) of one node; ``reference``: it runs on
    the reference kernel (kind ``..._ref``, no M4 padding or column features)."""
    kind, work, weights = node_work(node, shapes)
    values = dict.fromkeys(FEATURES, 0.0)
    values["work"], values["node"] = float(work), 1.0
    if reference:
        return f"{kind}_ref", np.array([values[f] for f in FEATURES]), weights
    if node.op == "conv":
        channels = node.shape[0]
        positions = int(np.prod(node.shape[1:]))
        taps = int(np.prod(node.arrays["weight"].shape[1:]))
        if node.attrs.get("groups", 1) == 1:
            depth = budget.conv_m4_depth(taps)
            values["padding"] = float(positions * channels * (depth - taps))
            values["columns"] = float(positions * depth)
        if "shift" in node.arrays:  # TFLite's double rounding never takes the fast path
            fast_shifts = node.arrays["shift"].astype(np.int64) >= FAST_SHIFT
            fast = 0 if double_rounding(node) else int(fast_shifts.sum())
            if fast == channels:
                values["requant_fast"] = float(positions * channels)
            else:
                values["requant_mixed"] = float(positions * fast)
                values["requant_slow"] = float(positions * (channels - fast))
    return kind, np.array([values[f] for f in FEATURES]), weights


def _coefficients(table: CostTable, kind: str) -> np.ndarray:
    if kind not in table:
        family = next((f for f in ("depthwise", "linear") if kind.startswith(f)), "conv")
        kind = family + ("_ref" if kind.endswith("_ref") else "")
    return np.asarray(table[kind], dtype=np.float64)


def estimate(
    hw: HwGraph,
    board: "str | BoardSpec" = "qemu-mps2-an386",
    table: CostTable | None = None,
) -> Cost:
    """Estimated instructions, latency (at the board's clock), flash and RAM of ``hw``."""
    spec = get(board)
    table = {**default_table(), **(table or {})}
    shapes = {n.name: n.shape for n in hw.nodes}
    reference = reference_layers(hw, spec)
    per_layer: dict[str, dict[str, Any]] = {}
    for node in hw.nodes[1:]:
        kind, features, weights = node_features(node, shapes, node.name in reference)
        compute = float(_coefficients(table, kind) @ features)
        decode = table["decode"][0] * weights
        per_layer[node.name] = {
            "kind": kind,
            "work": int(features[0]),
            "weights": weights,
            "count": compute + decode,
            "decode": decode,
        }
    count = float(sum(layer["count"] for layer in per_layer.values()))
    model_plan = plan(hw, budget.kernel_scratch_cap(spec.ram_bytes))
    ram = budget.ram_bytes(model_plan, spec)
    flash = budget.flash_bytes(_model_bytes(hw))
    return Cost(count, "instructions", count / spec.clock_hz, flash, ram, per_layer)


def _model_bytes(hw: HwGraph) -> int:
    """At least the model's flash data: the weight streams and code tables bounded from the
    bit-widths (``huffman.stored_bytes_bound``; the search's shadow graphs have no weights)
    plus 12 bytes per output channel for biases, requantization and the integrity lists."""
    total = 0
    for node in hw.nodes:
        if node.op in ("conv", "linear"):
            per_channel = int(np.prod(node.arrays["weight"].shape[1:]))
            bits = node.arrays["weight_bits"]
            total += huffman.stored_bytes_bound(per_channel, bits) + 12 * len(bits)
    return total


# ---- fitting the table to measurements ----------------------------------------------------
def evidence(
    graph: HwGraph,
    layer_counts: np.ndarray,
    decode_counts: np.ndarray,
    board: "str | BoardSpec" = "qemu-mps2-an386",
) -> list[dict[str, Any]]:
    """One JSON-able row per node from one measured inference on ``board`` (counts of the
    nodes after the input, as the firmware reports them): kind, features, compute count,
    weights, decode."""
    shapes = {n.name: n.shape for n in graph.nodes}
    reference = reference_layers(graph, get(board))
    rows = []
    for node, count, decode in zip(graph.nodes[1:], layer_counts, decode_counts, strict=True):
        kind, features, weights = node_features(node, shapes, node.name in reference)
        rows.append(
            {
                "kind": kind,
                "features": features.tolist(),
                "compute": float(count) - float(decode),
                "weights": weights,
                "decode": float(decode),
            }
        )
    return rows


def fit_table(rows: list[dict[str, Any]]) -> CostTable:
    """Non-negative least squares per kind over ``rows`` (from ``evidence``); kinds without
    rows keep their defaults, ``decode`` is total decode over total weights."""
    from scipy.optimize import nnls  # only calibration needs scipy, not compile or estimate

    table = default_table()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    for kind, kind_rows in by_kind.items():
        features = np.array([r["features"] for r in kind_rows], dtype=np.float64)
        counts = np.array([r["compute"] for r in kind_rows], dtype=np.float64)
        scale = np.maximum(features.max(axis=0), 1.0)  # conditioning only
        solution, _ = nnls(features / scale, counts)
        table[kind] = (solution / scale).tolist()
    weights = sum(r["weights"] for r in rows)
    if weights > 0:
        table["decode"] = [sum(r["decode"] for r in rows) / weights]
    return table


def firmware_hash() -> str:
    """Hash of the firmware/ sources: a new kernel invalidates a calibration."""
    digest = hashlib.sha256()
    for path in sorted(p for p in FIRMWARE.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(FIRMWARE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
