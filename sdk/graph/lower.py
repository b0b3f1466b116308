"""``lower(qmodel)``: a Brevitas QAT model -> an integer-only HwGraph.

Integer weights and biases are read off the Brevitas quantizers; each float rescaling
(input scale x weight scale / output scale) becomes an int32 multiplier and a shift. Pruned
channels first become all-zero channels (exactly what the QAT model computes), then the
``remove_pruned_channels`` pass removes them physically.
"""

import numpy as np
import torch

from ajpq.graph.hwgraph import HwGraph, Node, validate
from ajpq.graph.remove_pruned_channels import remove_pruned_channels
from ajpq.graph.requant import quantize_multiplier, quantize_multipliers
from ajpq.quant.capture import FloatOp
from ajpq.quant.qat import QTensor, channel_scale, int_range, uniform_scale
from ajpq.quant.quantize import QuantModel, _key


def _scales(q: QTensor, channels: int) -> np.ndarray:
    return channel_scale(q.scale.detach(), channels).double().numpy()


def _requant_attrs(q: QTensor) -> dict:
    lo, hi = int_range(q)
    return {"requant": True, "act_min": lo, "act_max": hi}


class _Lowering:
    def __init__(self, qmodel: QuantModel) -> None:
        self.qmodel = qmodel
        size = qmodel.ops[0].shape
        self.record: dict[str, QTensor] = {}
        qmodel.eval()
        with torch.no_grad():
            qmodel.forward_quant(torch.zeros(1, *size), self.record)

    def node(self, op: FloatOp, inputs: list[str]) -> Node:
        q = self.record[op.name]
        node = Node(op.name, op.kind, inputs, tuple(op.shape), q.bits, q.signed)
        if op.kind in ("conv", "linear"):
            self._layer(op, node)
        elif op.kind in ("maxpool", "avgpool"):
            node.attrs.update(
                kernel=op.attrs["kernel"], stride=op.attrs["stride"], padding=op.attrs["padding"]
            )
            if op.kind == "avgpool":
                area = op.attrs["kernel"][0] * op.attrs["kernel"][1]
                self._rescale(node, self._in(op) / area, q)
        elif op.kind == "reorg":
            node.attrs["stride"] = op.attrs["stride"]
        elif op.kind == "concat":
            node.attrs["requant"] = bool(op.attrs.get("requant", False))
            if node.attrs["requant"]:
                self._rescale(node, self._in(op), q)
        elif op.kind == "add":
            self._add(op, node, q)
        node.arrays["mask"] = self.qmodel.masks[op.name].copy()
        return node

    def _in(self, op: FloatOp, index: int = 0) -> np.ndarray:
        return _scales(self.record[op.inputs[index]], op.shape[0])

    def _rescale(self, node: Node, real_in: np.ndarray, q: QTensor) -> None:
        real = real_in / _scales(q, node.channels)
        node.arrays["multiplier"], node.arrays["shift"] = quantize_multipliers(real)
        node.attrs.update(_requant_attrs(q))

    def _layer(self, op: FloatOp, node: Node) -> None:
        block = self.qmodel.blocks[_key(op.name)]
        with torch.no_grad():
            w = block.layer.quant_weight()
            w_scale = w.scale.reshape(-1)
            x = self.record[op.inputs[0]]
            in_scale = (
                channel_scale(x.scale, w_scale.numel())
                if block.depthwise
                else uniform_scale(x, op.name).expand_as(w_scale)
            )
            acc_scale = in_scale * w_scale  # float32, as in the QAT forward
            weight = torch.round(w.value / w.scale).to(torch.int64).numpy()
            bias = torch.round(block.bias / acc_scale).to(torch.int64).numpy()
        mask = self.qmodel.masks[op.name]
        weight[~mask], bias[~mask] = 0, 0
        bits = np.array(self.qmodel.policy.layers[op.name].weight_bits, dtype=np.uint8)
        bits[~mask] = 0
        node.arrays.update(
            weight=weight.astype(np.int8), bias=bias.astype(np.int32), weight_bits=bits
        )
        if op.kind == "conv":
            node.attrs.update(
                stride=op.attrs["stride"], padding=op.attrs["padding"], groups=op.attrs["groups"]
            )
        real_acc = in_scale.double().numpy() * w_scale.double().numpy()
        node.attrs["input_bits"] = x.bits
        if node.bits == 32:  # the head: int32 accumulators out
            node.attrs["requant"] = False
            node.arrays["acc_scale"] = real_acc
        else:
            self._rescale(node, real_acc, self.record[op.name])

    def _add(self, op: FloatOp, node: Node, q: QTensor) -> None:
        out = _scales(q, node.channels)
        ma, mb = self._in(op, 0) / out, self._in(op, 1) / out
        multipliers, shifts = [], []
        for a, b in zip(ma, mb, strict=True):
            _, shift = quantize_multiplier(max(a, b))
            multipliers.append((round(a * 2.0**shift), round(b * 2.0**shift)))
            shifts.append(shift)
        pairs = np.array(multipliers, dtype=np.int64)
        pairs[~self.qmodel.masks[op.name]] = 0
        index = np.arange(node.channels, dtype=np.int32)
        node.arrays.update(
            multiplier_a=pairs[:, 0].astype(np.int32),
            multiplier_b=pairs[:, 1].astype(np.int32),
            shift=np.array(shifts, dtype=np.int8),
            index_a=index,
            index_b=index,
        )
        node.attrs.update(_requant_attrs(q))


def lower(qmodel: QuantModel, prune: bool = True) -> HwGraph:
    """Lower a QAT model from ``ajpq.quantize`` to a HwGraph (pruned channels removed)."""
    lowering = _Lowering(qmodel)
    nodes: list[Node] = []
    alias: dict[str, str] = {}
    for op in qmodel.ops:
        if op.kind == "normalize":
            alias[op.name] = alias[op.inputs[0]]
            continue
        nodes.append(lowering.node(op, [alias[i] for i in op.inputs]))
        alias[op.name] = op.name
    head = nodes[-1]
    output_scale = head.arrays.pop("acc_scale", None)
    if output_scale is None:
        output_scale = _scales(lowering.record[qmodel.output_name], head.channels)
    meta = {"input_scale": float(qmodel.ops[0].attrs["scale"])}
    for attr in ("anchors", "input_size"):
        value = getattr(qmodel, attr, None)
        if value is not None:
            meta[attr] = np.asarray(value).tolist()
    graph = HwGraph(nodes, np.asarray(output_scale, dtype=np.float64), meta)
    validate(graph)
    return remove_pruned_channels(graph) if prune else graph
