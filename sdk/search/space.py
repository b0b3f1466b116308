"""The search space of one model: its quantizable layers, their HAQ state features, channel
importance, and a fast cost of any policy (the weightless HwGraph ``lower`` would build, see
``ajpq.graph.skeleton``: no QAT).
"""

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ajpq.graph.estimate_requant import requant_factors as graph_requant_factors
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.skeleton import skeleton
from ajpq.quant.capture import FloatOp, capture
from ajpq.quant.importance import op_importance
from ajpq.quant.policy import LayerSpec, Policy, layer_specs

FEATURES = (
    "index", "in_channels", "out_channels", "stride", "kernel", "depthwise", "weights",
    "feature_map", "previous_sparsity", "previous_precision",
)  # fmt: skip


@dataclass
class SearchSpace:
    ops: list[FloatOp]
    specs: list[LayerSpec]
    importance: dict[str, np.ndarray]  # the one criterion: L1 norm after BN folding
    features: np.ndarray  # (layers, 8) static HAQ features, each column scaled to [0, 1]
    requant8: dict[str, np.ndarray] = field(default_factory=dict)  # per-channel M at 8 bits

    @classmethod
    def of(cls, model: nn.Module, input_size: tuple[int, int] | None = None) -> "SearchSpace":
        ops = capture(model, input_size)
        specs = layer_specs(model, input_size)
        by_name = {op.name: op for op in ops}
        importance = {s.name: op_importance(by_name[s.name]) for s in specs}
        features = _static_features(specs, by_name)
        return cls(ops, specs, importance, features, requant_factors(model, input_size))

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def prunable(self, name: str) -> bool:
        return self.specs[self.names.index(name)].prunable


def _static_features(specs: list[LayerSpec], by_name: dict[str, FloatOp]) -> np.ndarray:
    rows = []
    for index, spec in enumerate(specs):
        op = by_name[spec.name]
        source = by_name[op.inputs[0]].shape
        kernel = op.attrs.get("kernel", (1, 1))
        stride = op.attrs.get("stride", (1, 1))
        rows.append(
            [
                index,
                source[0],
                spec.out_channels,
                stride[0],
                kernel[0],
                float(spec.depthwise),
                op.weight.numel() if op.weight is not None else 0,
                int(np.prod(source[1:])) if len(source) == 3 else 1,
            ]
        )
    table = np.asarray(rows, dtype=np.float64)
    return table / np.maximum(table.max(axis=0), 1e-12)


def requant_factors(model: nn.Module, input_size: tuple[int, int] | None) -> dict[str, np.ndarray]:
    """Each requantizing layer's real factors M = s_in * s_w / s_out per output channel at
    uniform 8 bits: ``shadow_graph`` estimates any policy's multipliers and shifts from them
    (see ajpq.graph.estimate_requant)."""
    from ajpq.graph.lower import lower
    from ajpq.quant.quantize import quantize

    graph = lower(quantize(model, Policy.uniform(model, 8, 8, input_size)), prune=False)
    return graph_requant_factors(graph)


def shadow_graph(space: SearchSpace, policy: Policy) -> HwGraph:
    """The pruned HwGraph ``lower`` would build for ``policy`` (``ajpq.graph.skeleton``), with
    zero weights: the same structure, summary() and backend estimate, at no cost of QAT."""
    return skeleton(space.ops, policy, space.requant8)
