"""``lower(qmodel)``: a Brevitas QAT model -> an integer-only HwGraph.

The graph's structure (nodes, shapes, bit-widths, attributes, array shapes, channel masks)
is ``skeleton.structure`` of the model's ops and policy, the same one the search costs; this
file only fills in its numbers. Integer weights and biases are read off the Brevitas
quantizers; each float rescaling (input scale x weight scale / output scale) becomes an int32
multiplier and a shift. Pruned channels are all-zero channels (exactly what the QAT model
computes) until the ``remove_pruned_channels`` pass removes them physically.
"""

import numpy as np
import torch

from ajpq.errors import InvalidGraph
from ajpq.graph.hwgraph import HwGraph, Node, validate
from ajpq.graph.remove_pruned_channels import remove_pruned_channels
from ajpq.graph.requant import (
    quantize_multiplier_pairs,
    rescale_multipliers,
    tflite_add_multipliers,
)
from ajpq.graph.skeleton import structure
from ajpq.quant.capture import FloatOp
from ajpq.quant.exact_requant import avgpool_factors, tensor_scale
from ajpq.quant.qat import QTensor, channel_scale, channel_scales, uniform_scale
from ajpq.quant.quantize import QuantModel, block_key


def _put(node: Node, key: str, values: np.ndarray) -> None:
    """Write ``values`` into the structure's array ``key``, in its dtype (as ``astype``)."""
    target = node.arrays[key]
    if target.shape != np.shape(values):
        raise InvalidGraph(
            f"lower computed '{key}' of node '{node.name}' with shape {np.shape(values)} but "
            f"the graph's structure (ajpq.graph.skeleton) gives it {target.shape}"
        )
    if np.issubdtype(target.dtype, np.integer) and np.size(values):
        limits = np.iinfo(target.dtype)
        if np.min(values) < limits.min or np.max(values) > limits.max:
            raise InvalidGraph(
                f"node '{node.name}' has a {key} of {np.max(np.abs(values)):.3g}, outside "
                f"{target.dtype}: an activation scale before it collapsed (a layer silent on "
                "the calibration images); quantize with calibration= real images"
            )
    np.copyto(target, values, casting="unsafe")


class _Lowering:
    def __init__(self, qmodel: QuantModel) -> None:
        self.qmodel = qmodel
        size = qmodel.ops[0].shape
        self.record: dict[str, QTensor] = {}
        self.acc_scale: np.ndarray | None = None  # the head's, when it outputs accumulators
        qmodel.eval()
        with torch.no_grad():
            qmodel.forward_quant(torch.zeros(1, *size), self.record)

    def check(self, op: FloatOp, node: Node) -> None:
        """The structure's formats are the QAT model's (one rule, in activation_formats)."""
        q = self.record[op.name]
        requant = bool(op.attrs.get("requant", False))
        if (q.bits, q.signed) != (node.bits, node.signed) or (
            op.kind == "concat" and requant != node.attrs["requant"]
        ):
            raise InvalidGraph(
                f"node '{op.name}' is {q.bits}-bit (signed={q.signed}) in the QAT model but "
                f"{node.bits}-bit (signed={node.signed}) in its structure; "
                "the QAT model no longer follows ajpq.quant.activation_formats"
            )

    @property
    def double(self) -> bool:
        return self.qmodel.double_rounding

    def fill(self, op: FloatOp, node: Node) -> None:
        q = self.record[op.name]
        if "scale" in node.arrays:  # target tflite: the tensor's one float32 scale
            _put(node, "scale", np.float32([tensor_scale(q, op.name)]))
        if op.kind in ("conv", "linear"):
            self._layer(op, node)
        elif op.kind == "avgpool":
            area = op.attrs["kernel"][0] * op.attrs["kernel"][1]
            self._rescale(node, avgpool_factors(self._in(op), area, self.double), q)
        elif op.kind == "concat" and node.attrs["requant"]:
            joined = [channel_scales(self.record[name], self.record[name].value.shape[1])
                      for name in op.inputs]  # fmt: skip
            self._rescale(node, np.concatenate(joined), q)
        elif op.kind == "add":
            self._add(op, node, q)

    def _in(self, op: FloatOp, index: int = 0) -> np.ndarray:
        return channel_scales(self.record[op.inputs[index]], op.shape[0])

    def _rescale(self, node: Node, real_in: np.ndarray, q: QTensor) -> None:
        real = real_in / channel_scales(q, node.channels)
        multiplier, shift = rescale_multipliers(real, self.double)
        _put(node, "multiplier", multiplier)
        _put(node, "shift", shift)

    def _layer(self, op: FloatOp, node: Node) -> None:
        block = self.qmodel.blocks[block_key(op.name)]
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
        mask = node.arrays["mask"]
        weight[~mask], bias[~mask] = 0, 0
        _put(node, "weight", weight)
        _put(node, "bias", bias)
        if "weight_scale" in node.arrays:
            _put(node, "weight_scale", w_scale.numpy().astype(np.float32))
        real_acc = in_scale.double().numpy() * w_scale.double().numpy()
        if node.attrs["requant"]:
            self._rescale(node, real_acc, self.record[op.name])
        else:  # the head: int32 accumulators out
            self.acc_scale = real_acc

    def _add(self, op: FloatOp, node: Node, q: QTensor) -> None:
        if self.double:
            self._tflite_add(op, node, q)
            return
        out = channel_scales(q, node.channels)
        multiplier_a, multiplier_b, shift = quantize_multiplier_pairs(
            self._in(op, 0) / out, self._in(op, 1) / out
        )
        pruned = ~node.arrays["mask"]
        multiplier_a[pruned], multiplier_b[pruned] = 0, 0
        _put(node, "multiplier_a", multiplier_a)
        _put(node, "multiplier_b", multiplier_b)
        _put(node, "shift", shift)

    def _tflite_add(self, op: FloatOp, node: Node, q: QTensor) -> None:
        scales = [tensor_scale(self.record[name], name) for name in op.inputs]
        params = tflite_add_multipliers(*scales, tensor_scale(q, op.name))
        for key, part in (("_a", "a"), ("_b", "b"), ("", "out")):
            multiplier, shift = params[part]
            _put(node, f"multiplier{key}", np.full(node.channels, multiplier))
            _put(node, f"shift{key}", np.full(node.channels, shift))


def lower(qmodel: QuantModel, prune: bool = True) -> HwGraph:
    """Lower a QAT model from ``ajpq.quantize`` to a HwGraph (pruned channels removed)."""
    lowering = _Lowering(qmodel)
    graph = structure(qmodel.ops, qmodel.policy, qmodel.target)
    ops = {op.name: op for op in qmodel.ops}
    for node in graph.nodes:
        lowering.check(ops[node.name], node)
        lowering.fill(ops[node.name], node)
    output_scale = lowering.acc_scale
    if output_scale is None:
        output_scale = channel_scales(lowering.record[qmodel.output_name], graph.output.channels)
    meta = {"input_scale": float(qmodel.ops[0].attrs["scale"])}
    if qmodel.target != "ajpq":
        meta["target"] = qmodel.target
    for attr in ("anchors", "input_size"):
        value = getattr(qmodel, attr, None)
        if value is not None:
            meta[attr] = np.asarray(value).tolist()
    graph = graph.replace(
        graph.nodes, output_scale=np.asarray(output_scale, dtype=np.float64), meta=meta
    )
    validate(graph)
    return remove_pruned_channels(graph) if prune else graph
