"""HwGraph -> QONNX: a standard ONNX graph plus qonnx ``Quant`` and ``MultiThreshold`` nodes.

Tensors are float32 holding integers, so onnxruntime and qonnx's ``execute_onnx`` compute
exactly what the golden executor does (accumulators stay below 2^24). Weights pass through a
``Quant`` node (scale 1, bit-width = the layer's widest kept channel), and each integer
requantization becomes per-channel thresholds: output = act_min + #{k : acc >= T_k}, where
T_k is the smallest accumulator whose multiplier/shift rounding reaches level k. This is
also the form FINN streamlines into its Thresholding units.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from ajpq.errors import UnsupportedOp
from ajpq.graph.hwgraph import HwGraph, Node, input_zero_point

QONNX_DOMAIN = "qonnx.custom_op.general"
BIG = float(2**31)


def thresholds(multiplier: np.ndarray, shift: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(C, hi - lo) accumulator thresholds equivalent to the multiplier/shift requantization."""
    rows = []
    for m, s in zip(multiplier.tolist(), shift.tolist(), strict=True):
        if m == 0:
            rows.append([-BIG if k <= 0 else BIG for k in range(lo + 1, hi + 1)])
            continue
        # level >= k  <=>  acc * m + 2^(s-1) >= k * 2^s  <=>  acc >= ceil((k 2^s - 2^(s-1)) / m)
        rows.append([-((-(k * (1 << s) - (1 << (s - 1)))) // m) for k in range(lo + 1, hi + 1)])
    return np.clip(np.array(rows, dtype=np.float64), -BIG, BIG).astype(np.float32)


class _Exporter:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], out: str, domain: str = "", **attrs: object) -> str:
        self.nodes.append(helper.make_node(kind, inputs, [out], domain=domain or None, **attrs))
        return out

    def requant(self, node: Node, acc: str) -> str:
        if not node.attrs.get("requant", True):
            return self.op("Identity", [acc], node.name)
        lo, hi = node.attrs["act_min"], node.attrs["act_max"]
        table = thresholds(node.arrays["multiplier"], node.arrays["shift"], lo, hi)
        dtype = f"INT{node.bits}" if node.signed else f"UINT{node.bits}"
        return self.op(
            "MultiThreshold",
            [acc, self.const(f"{node.name}.thresholds", table)],
            node.name,
            domain=QONNX_DOMAIN,
            out_dtype=dtype,
            out_scale=1.0,
            out_bias=float(lo),
            data_layout="NCHW" if len(node.shape) == 3 else "NC",
        )

    def weights(self, node: Node) -> str:
        weight = node.arrays["weight"].astype(np.float32)
        if node.op == "linear":
            weight = weight.T.copy()
        bits = float(max(int(node.arrays["weight_bits"].max()), 2))
        return self.op(
            "Quant",
            [
                self.const(f"{node.name}.weight", weight),
                self.const(f"{node.name}.one", np.float32(1.0)),
                self.const(f"{node.name}.zero", np.float32(0.0)),
                self.const(f"{node.name}.bits", np.float32(bits)),
            ],
            f"{node.name}.qweight",
            domain=QONNX_DOMAIN,
            signed=1,
            narrow=1,
            rounding_mode="ROUND",
        )

    def layer(self, node: Node, x: str) -> str:
        if "in_index" in node.arrays:
            x = self.op(
                "Gather",
                [x, self.const(f"{node.name}.in_index", node.arrays["in_index"].astype(np.int64))],
                f"{node.name}.gathered",
                axis=1,
            )
        w = self.weights(node)
        if node.op == "conv":
            ph, pw = node.attrs["padding"]
            y = self.op(
                "Conv",
                [x, w],
                f"{node.name}.conv",
                group=node.attrs["groups"],
                strides=list(node.attrs["stride"]),
                pads=[ph, pw, ph, pw],
            )
            bias = node.arrays["bias"].astype(np.float32).reshape(1, -1, 1, 1)
        else:
            y = self.op("MatMul", [x, w], f"{node.name}.matmul")
            bias = node.arrays["bias"].astype(np.float32).reshape(1, -1)
        acc = self.op("Add", [y, self.const(f"{node.name}.bias", bias)], f"{node.name}.acc")
        return self.requant(node, acc)

    def node(self, node: Node, ins: list[str]) -> str:
        if node.op in ("conv", "linear"):
            return self.layer(node, ins[0])
        if node.op == "maxpool":
            (ph, pw), k = node.attrs["padding"], list(node.attrs["kernel"])
            return self.op(
                "MaxPool",
                ins,
                node.name,
                kernel_shape=k,
                strides=list(node.attrs["stride"]),
                pads=[ph, pw, ph, pw],
            )
        if node.op == "avgpool":
            c, (kh, kw) = node.channels, node.attrs["kernel"]
            ones = self.const(f"{node.name}.ones", np.ones((c, 1, kh, kw), np.float32))
            total = self.op(
                "Conv",
                [ins[0], ones],
                f"{node.name}.sum",
                group=c,
                strides=list(node.attrs["stride"]),
            )
            return self.requant(node, total)
        if node.op == "concat":
            joined = self.op("Concat", ins, f"{node.name}.joined", axis=1)
            return (
                self.requant(node, joined)
                if node.attrs.get("requant")
                else self.op("Identity", [joined], node.name)
            )
        if node.op == "reorg":
            return self.reorg(node, ins[0])
        if node.op == "flatten":
            return self.op("Flatten", ins, node.name, axis=1)
        raise UnsupportedOp(
            f"node '{node.name}' ({node.op}) has no QONNX export yet; "
            "supported: conv, linear, maxpool, avgpool, concat, reorg, flatten"
        )

    def reorg(self, node: Node, x: str) -> str:
        s = node.attrs["stride"]
        c, h, w = node.shape[0] // (s * s), node.shape[1], node.shape[2]
        split = self.const(f"{node.name}.split", np.array([-1, c, h, s, w, s], np.int64))
        merged = self.const(f"{node.name}.merged", np.array([-1, s * s * c, h, w], np.int64))
        y = self.op("Reshape", [x, split], f"{node.name}.split_out")
        y = self.op("Transpose", [y], f"{node.name}.perm", perm=[0, 3, 5, 1, 2, 4])
        return self.op("Reshape", [y, merged], node.name)


def export(graph: HwGraph, path: str | Path) -> None:
    """Write ``graph`` as a QONNX model executable by ``qonnx.core.onnx_exec.execute_onnx``."""
    zero_point = input_zero_point(graph)
    if zero_point:
        raise UnsupportedOp(
            f"HwGraph input '{graph.nodes[0].name}' has zero point {zero_point}; the QONNX "
            "export takes raw uint8 pixels: fold a zero mean or use the mcu backend"
        )
    ex = _Exporter()
    names: dict[str, str] = {}
    first = graph.nodes[0]
    for node in graph.nodes:
        names[node.name] = (
            "global_in" if node.op == "input" else ex.node(node, [names[i] for i in node.inputs])
        )
    ex.op("Identity", [names[graph.output.name]], "global_out")
    in_info = helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, *first.shape])
    out_info = helper.make_tensor_value_info(
        "global_out", TensorProto.FLOAT, [1, *graph.output.shape]
    )
    model = helper.make_model(
        helper.make_graph(ex.nodes, "ajpq", [in_info], [out_info], ex.inits),
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)],
        producer_name="ajpq",
    )
    wrapper = ModelWrapper(model).transform(InferShapes())
    wrapper.set_tensor_datatype("global_in", DataType["UINT8"])
    wrapper.save(str(path))
