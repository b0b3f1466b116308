"""HwGraph -> a list of kernel calls and a static arena plan (no malloc on the device).

Every activation tensor is stored as int16 CHW (the kernels' storage type; the head's raw
accumulators as int32). Tensors get arena offsets by liveness: a tensor occupies its slot
from the step that writes it to the last step that reads it, and slots are packed
first-fit by decreasing size. ``flatten`` is a view and shares its input's slot.
"""

from dataclasses import dataclass, field

import numpy as np

from ajpq.backends.mcu.budget import aligned, kernel_scratch_bytes, weight_scratch_bytes
from ajpq.errors import UnsupportedOp
from ajpq.graph.hwgraph import HwGraph, Node

OPTIMIZED = {  # same ABI and numbers, SMLAD dual MACs on Cortex-M4 (portable C elsewhere)
    "conv": "ajpq_conv_m4_s8",
    "dwconv": "ajpq_dwconv_m4_s8",
    "linear": "ajpq_linear_m4_s8",
}
KERNELS = {
    "conv": "ajpq_conv_ref_s8",
    "dwconv": "ajpq_dwconv_ref_s8",
    "linear": "ajpq_linear_ref_s8",
    "maxpool": "ajpq_maxpool_ref_s16",
    "avgpool": "ajpq_avgpool_ref_s16",
    "add": "ajpq_add_ref_s16",
    "concat": "ajpq_concat_ref_s16",
    "reorg": "ajpq_reorg_ref_s16",
}
SUPPORTED = (
    "conv (dense or depthwise, dilation 1), linear, maxpool, avgpool, add, concat, reorg, flatten"
)


@dataclass
class Tensor:
    name: str
    elements: int
    element_bytes: int  # 2 (int16) or 4 (int32 raw accumulators)
    first: int  # step that writes it (-1: the input, written before the run)
    last: int  # last step that reads it
    offset: int = -1
    alias_of: str | None = None

    @property
    def bytes(self) -> int:
        return self.elements * self.element_bytes


@dataclass
class Step:
    node: Node
    kind: str  # key of KERNELS, or "flatten"
    inputs: list[str]
    output: str
    kernel: str = ""  # the C function called
    scratch_bytes: int = 0  # the kernel's own scratch (get_buffer_size)


@dataclass
class Plan:
    steps: list[Step]
    tensors: dict[str, Tensor]
    arena_bytes: int
    weight_scratch_bytes: int
    kernel_scratch_bytes: int
    input: str
    output: str
    notes: list[str] = field(default_factory=list)


def kernel_kind(node: Node) -> str:
    if node.op == "conv":
        dilation = node.attrs.get("dilation", 1)
        if dilation not in (1, (1, 1), [1, 1]):
            raise UnsupportedOp(
                f"HwGraph node '{node.name}' uses dilation={dilation}; the mcu "
                "backend supports dilation 1"
            )
        return "dwconv" if node.attrs["groups"] > 1 else "conv"
    if node.op in ("linear", "maxpool", "avgpool", "add", "concat", "reorg", "flatten"):
        return node.op
    raise UnsupportedOp(
        f"HwGraph node '{node.name}' is a '{node.op}'; the mcu backend supports {SUPPORTED}"
    )


def choose_kernel(step: Step, graph: HwGraph, max_scratch: int) -> None:
    """The Cortex-M4 kernel when its preconditions hold (int32 accumulator, scratch within
    ``max_scratch``), else the reference kernel; both give the same numbers."""
    step.kernel = KERNELS.get(step.kind, "")
    if step.kind not in OPTIMIZED:
        return
    node = step.node
    weight = node.arrays["weight"]
    taps = int(np.prod(weight.shape[1:]))
    source = graph.node(step.inputs[0])
    largest_input = 1 << source.bits
    bound = int(np.abs(node.arrays["bias"]).max(initial=0)) + taps * largest_input * 128
    scratch = kernel_scratch_bytes(step.kind, node.channels, taps)
    if bound < 1 << 31 and scratch <= max_scratch:
        step.kernel, step.scratch_bytes = OPTIMIZED[step.kind], aligned(scratch)


def plan(graph: HwGraph, max_kernel_scratch: int) -> Plan:
    """Kernel calls and the arena of ``graph``; an M4 kernel may ask for at most
    ``max_kernel_scratch`` bytes (``budget.kernel_scratch_cap`` of the board's RAM)."""
    steps = [Step(n, kernel_kind(n), list(n.inputs), n.name) for n in graph.nodes[1:]]
    for step in steps:
        choose_kernel(step, graph, max_kernel_scratch)
    first = graph.nodes[0]
    tensors = {first.name: Tensor(first.name, int(np.prod(first.shape)), 2, -1, -1)}
    for index, step in enumerate(steps):
        raw = step.node.op in ("conv", "linear", "avgpool") and not step.node.attrs.get(
            "requant", True
        )
        tensors[step.output] = Tensor(
            step.output, int(np.prod(step.node.shape)), 4 if raw else 2, index, index
        )
        if step.kind == "flatten":
            tensors[step.output].alias_of = step.inputs[0]
        for name in step.inputs:
            root = _root(tensors, name)
            root.last = max(root.last, index)
    out = _root(tensors, graph.output.name)
    out.last = len(steps)  # read after the run
    arena = _assign_offsets([t for t in tensors.values() if t.alias_of is None])
    for t in tensors.values():
        if t.alias_of is not None:
            t.offset = _root(tensors, t.name).offset
    scratch = max(
        (
            weight_scratch_bytes(int(s.node.arrays["weight"].size), s.node.arrays["bias"])
            for s in steps
            if "weight" in s.node.arrays
        ),
        default=0,
    )
    kernel_scratch = max((s.scratch_bytes for s in steps), default=0)
    return Plan(
        steps, tensors, arena, aligned(scratch), kernel_scratch, first.name, graph.output.name
    )


def _root(tensors: dict[str, Tensor], name: str) -> Tensor:
    t = tensors[name]
    while t.alias_of is not None:
        t = tensors[t.alias_of]
    return t


def _assign_offsets(tensors: list[Tensor]) -> int:
    """First-fit by decreasing size among tensors whose lifetimes overlap; returns arena size."""
    placed: list[Tensor] = []
    for t in sorted(tensors, key=lambda t: (-t.bytes, t.first)):
        busy = sorted(
            (p.offset, p.offset + aligned(p.bytes))
            for p in placed
            if p.first <= t.last and t.first <= p.last
        )
        offset = 0
        for start, end in busy:
            if offset + aligned(t.bytes) <= start:
                break
            offset = max(offset, end)
        t.offset = offset
        placed.append(t)
    return max((p.offset + aligned(p.bytes) for p in placed), default=0)
