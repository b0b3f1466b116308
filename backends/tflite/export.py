"""HwGraph -> .tflite: the graph of ``quantize(..., target="tflite")`` as TFLite int8 ops.

Every activation is an int8 NHWC tensor with one float32 scale: an unsigned ajpq tensor
(``0..2^b-1``) has zero point -128, a signed one 0, so the TFLite integers are ajpq's plus the
zero point and every kernel's ``x - zero_point`` gives back ajpq's integers. Weights are int8
per output channel (a channel of b < 8 bits is int8 values on fewer levels; pruned channels
are gone). What TFLite computes is what the graph already says (double rounding, TFLite's
multipliers from the same float32 scales, TFLite's ADD), so the file runs bit-exactly:

- conv -> CONV_2D or DEPTHWISE_CONV_2D (a PAD first where ajpq's symmetric padding is not
  TFLite's SAME); linear -> FULLY_CONNECTED; average pool -> a DEPTHWISE_CONV_2D of ones with
  weight scale float32(1 / area); maxpool -> MAX_POOL_2D; add -> ADD; concat -> a QUANTIZE
  per input to the concat's scale, then CONCATENATION; reorg -> SPACE_TO_DEPTH (Skynet's
  channel order); flatten -> RESHAPE (the next linear's columns reordered to NHWC).
- A clamp narrower than int8 (b < 8 bits) is the fused RELU6 where that is exactly it, else a
  MINIMUM (and MAXIMUM when signed) against a constant.

Anything else is refused in one sentence naming the node.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from ajpq.backends.tflite.flatbuffer import ModelBuilder
from ajpq.errors import UnsupportedOp
from ajpq.graph.hwgraph import HwGraph, Node, input_zero_point
from ajpq.graph.requant import integer_range

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class Activation:
    """An int8 tensor of the file: its index, float32 scale, zero point, ajpq shape."""

    index: int
    scale: np.float32
    zero_point: int
    shape: tuple[int, ...]  # ajpq's (C, H, W) or (F,)


def zero_point_of(node: Node) -> int:
    """-128 for an unsigned tensor, 0 for a signed one."""
    return 0 if node.signed else INT8_MIN


def nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, shape[1], shape[2], shape[0]) if len(shape) == 3 else (1, shape[0])


def same_padding(size: int, kernel: int, stride: int, pad: int) -> bool:
    """Whether ajpq's symmetric ``pad`` gives TFLite SAME's windows: the same output size and
    the same padding before (TFLite puts the odd one after)."""
    out = (size + 2 * pad - kernel) // stride + 1
    same_out = -(-size // stride)
    total = max((same_out - 1) * stride + kernel - size, 0)
    return out == same_out and total // 2 == pad


class Exporter:
    """Walks a HwGraph in order and writes one TFLite operator chain per node."""

    def __init__(self, graph: HwGraph) -> None:
        self.graph = graph
        self.b = ModelBuilder(description="ajpq")
        self.values: dict[str, Activation] = {}
        self.flattened: dict[str, tuple[int, int, int]] = {}  # flatten -> the (C, H, W) it read
        self.weights: list[tuple[int, int, np.ndarray]] = []  # (tensor, channel axis, values)

    def run(self) -> bytes:
        check_graph(self.graph)
        for node in self.graph.nodes:
            self.values[node.name] = self.write(node)
        first, last = self.graph.nodes[0], self.graph.output
        return self.b.finish([self.values[first.name].index], [self.values[last.name].index])

    # ---- tensors ----------------------------------------------------------------------------
    def activation(self, node: Node, suffix: str = "") -> Activation:
        scale = np.float32(node.arrays["scale"][0])
        zero_point = zero_point_of(node)
        index = self.b.tensor(node.name + suffix, nhwc(node.shape), np.int8, scale, zero_point)
        return Activation(index, scale, zero_point, node.shape)

    def constant(
        self, name: str, data: np.ndarray, scale: Any, zero_point: Any, axis: int = 0
    ) -> int:
        return self.b.tensor(name, data.shape, data.dtype, scale, zero_point, data, axis)

    # ---- ops --------------------------------------------------------------------------------
    def write(self, node: Node) -> Activation:
        if node.op == "input":
            return self.activation(node)
        writer = getattr(self, f"_{node.op}", None)
        if writer is None:
            raise UnsupportedOp(
                f"node {node.name!r} is a {node.op}, which the tflite backend cannot export"
            )
        return writer(node, [self.values[name] for name in node.inputs])

    def _conv(self, node: Node, args: list[Activation]) -> Activation:
        x = args[0]
        if "in_index" in node.arrays:
            raise UnsupportedOp(
                f"node {node.name!r} is a depthwise conv pruned apart from its input, which "
                "TFLite's DEPTHWISE_CONV_2D cannot say; keep its channels as its input's"
            )
        (kh, kw), stride = node.arrays["weight"].shape[2:], node.attrs["stride"]
        x, padding = self.pad(node, x, (kh, kw))
        depthwise = node.attrs["groups"] > 1
        if depthwise:
            weight = node.arrays["weight"].transpose(1, 2, 3, 0)  # (1, kh, kw, C)
        else:
            weight = node.arrays["weight"].transpose(0, 2, 3, 1)  # (O, kh, kw, I)
        options = self.b.s.DepthwiseConv2DOptionsT() if depthwise else self.b.s.Conv2DOptionsT()
        options.padding, (options.strideH, options.strideW) = padding, stride
        options.dilationHFactor = options.dilationWFactor = 1
        if depthwise:
            options.depthMultiplier = 1
        code = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
        return self.layer(node, x, weight, 3 if depthwise else 0, code, options)

    def _linear(self, node: Node, args: list[Activation]) -> Activation:
        x, weight = args[0], node.arrays["weight"]
        source = self.flattened.get(node.inputs[0])
        if source is not None:  # columns in NCHW flatten order -> NHWC order
            c, h, w = source
            weight = weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        options = self.b.s.FullyConnectedOptionsT()
        return self.layer(node, x, weight, 0, "FULLY_CONNECTED", options)

    def _avgpool(self, node: Node, args: list[Activation]) -> Activation:
        (kh, kw), channels = node.attrs["kernel"], node.channels
        ones = np.ones((1, kh, kw, channels), dtype=np.int8)
        scale = np.full(channels, np.float32(1.0 / (kh * kw)), dtype=np.float32)
        options = self.b.s.DepthwiseConv2DOptionsT()
        options.padding = self.b.s.Padding.VALID
        options.strideH, options.strideW = node.attrs["stride"]
        options.dilationHFactor = options.dilationWFactor = options.depthMultiplier = 1
        return self.layer(
            node,
            args[0],
            ones,
            3,
            "DEPTHWISE_CONV_2D",
            options,
            scale,
            np.zeros(channels, np.int32),
        )

    def layer(
        self, node: Node, x: Activation, weight: np.ndarray, axis: int, code: str, options: Any,
        weight_scale: np.ndarray | None = None, bias: np.ndarray | None = None,
    ) -> Activation:  # fmt: skip
        """A conv-like op: int8 per-channel weights, int32 bias, fused or explicit clamp."""
        channels = node.channels
        if weight_scale is None:
            weight_scale = node.arrays["weight_scale"].astype(np.float32)
        if bias is None:
            bias = node.arrays["bias"].astype(np.int32)
        zeros = np.zeros(channels, dtype=np.int64)
        w = self.constant(f"{node.name}/weight", weight.astype(np.int8), weight_scale, zeros, axis)
        self.weights.append((w, axis, weight))
        bias_scale = np.float32(x.scale) * weight_scale
        b = self.constant(f"{node.name}/bias", bias.astype(np.int32), bias_scale, zeros)
        return self.clamped(node, code, [x.index, w, b], options)

    def _maxpool(self, node: Node, args: list[Activation]) -> Activation:
        x = args[0]
        kernel, stride = node.attrs["kernel"], node.attrs["stride"]
        if any(node.attrs["padding"]) and not self._same(node, x, kernel) and node.signed:
            raise UnsupportedOp(
                f"node {node.name!r} pads a signed max pool unlike TFLite's SAME; pad it "
                "symmetrically to SAME or not at all"
            )
        x, padding = self.pad(node, x, kernel)
        options = self.b.s.Pool2DOptionsT()
        options.padding, (options.strideH, options.strideW) = padding, stride
        options.filterHeight, options.filterWidth = kernel
        out = self.activation(node)
        self.b.operator("MAX_POOL_2D", [x.index], [out.index], options)
        return out

    def _add(self, node: Node, args: list[Activation]) -> Activation:
        for key, arg in (("index_a", args[0]), ("index_b", args[1])):
            if (
                not np.array_equal(node.arrays[key], np.arange(node.channels))
                or arg.shape != node.shape
            ):
                raise UnsupportedOp(
                    f"node {node.name!r} adds a subset of its input's channels, which TFLite's "
                    "ADD cannot; do not prune the layers that feed a residual add"
                )
        return self.clamped(node, "ADD", [args[0].index, args[1].index], self.b.s.AddOptionsT())

    def _concat(self, node: Node, args: list[Activation]) -> Activation:
        out = self.activation(node)
        parts = []
        for i, arg in enumerate(args):
            if arg.scale == out.scale and arg.zero_point == out.zero_point:
                parts.append(arg.index)
                continue
            moved = self.b.tensor(
                f"{node.name}/{i}", nhwc(arg.shape), np.int8, out.scale, out.zero_point
            )
            self.b.operator("QUANTIZE", [arg.index], [moved], None)
            parts.append(moved)
        options = self.b.s.ConcatenationOptionsT()
        options.axis = 3
        self.b.operator("CONCATENATION", parts, [out.index], options)
        return out

    def _reorg(self, node: Node, args: list[Activation]) -> Activation:
        options = self.b.s.SpaceToDepthOptionsT()
        options.blockSize = node.attrs["stride"]
        out = self.activation(node)
        self.b.operator("SPACE_TO_DEPTH", [args[0].index], [out.index], options)
        return out

    def _flatten(self, node: Node, args: list[Activation]) -> Activation:
        x = args[0]
        if len(x.shape) == 3:
            self.flattened[node.name] = x.shape
        shape = np.array(nhwc(node.shape), dtype=np.int32)
        target = self.constant(f"{node.name}/shape", shape, 0.0, 0)
        options = self.b.s.ReshapeOptionsT()
        options.newShape = [int(d) for d in shape]
        out = self.activation(node)
        self.b.operator("RESHAPE", [x.index, target], [out.index], options)
        return out

    # ---- padding and clamps -------------------------------------------------------------------
    def _same(self, node: Node, x: Activation, kernel: tuple[int, int]) -> bool:
        (ph, pw), (sh, sw) = node.attrs["padding"], node.attrs["stride"]
        return same_padding(x.shape[1], kernel[0], sh, ph) and same_padding(
            x.shape[2], kernel[1], sw, pw
        )

    def pad(self, node: Node, x: Activation, kernel: tuple[int, int]) -> tuple[Activation, int]:
        """(the input, SAME/VALID): a PAD op first where ajpq's padding is not SAME's."""
        padding = node.attrs.get("padding", (0, 0))
        if not any(padding):
            return x, self.b.s.Padding.VALID
        if self._same(node, x, kernel):
            return x, self.b.s.Padding.SAME
        ph, pw = padding
        c, h, w = x.shape
        amounts = np.array([[0, 0], [ph, ph], [pw, pw], [0, 0]], dtype=np.int32)
        paddings = self.constant(f"{node.name}/paddings", amounts, 0.0, 0)
        shape = (c, h + 2 * ph, w + 2 * pw)
        padded = self.b.tensor(f"{node.name}/padded", nhwc(shape), np.int8, x.scale, x.zero_point)
        self.b.operator("PAD", [x.index, paddings], [padded], self.b.s.PadOptionsT())
        return Activation(padded, x.scale, x.zero_point, shape), self.b.s.Padding.VALID

    def clamped(self, node: Node, code: str, inputs: list[int], options: Any) -> Activation:
        """``code`` writing the node's tensor, with its clamp: fused, or MINIMUM/MAXIMUM."""
        out = self.activation(node)
        low, high = (v + out.zero_point for v in integer_range(node.bits, node.signed))
        fused = self.b.s.ActivationFunctionType.NONE
        if low == out.zero_point and high == relu6_max(out.scale, out.zero_point):
            fused, low, high = self.b.s.ActivationFunctionType.RELU6, INT8_MIN, INT8_MAX
        options.fusedActivationFunction = fused
        if low == INT8_MIN and high == INT8_MAX:
            self.b.operator(code, inputs, [out.index], options)
            return out
        current = self.b.tensor(
            f"{node.name}/raw", nhwc(node.shape), np.int8, out.scale, out.zero_point
        )
        self.b.operator(code, inputs, [current], options)
        bounds = [
            (op, v)
            for op, v, full in (("MAXIMUM", low, INT8_MIN), ("MINIMUM", high, INT8_MAX))
            if v != full
        ]
        for i, (op, value) in enumerate(bounds):
            limit = self.constant(
                f"{node.name}/{op.lower()}", np.array([value], np.int8), out.scale, out.zero_point
            )
            last = i == len(bounds) - 1
            target = (
                out.index
                if last
                else self.b.tensor(
                    f"{node.name}/{op.lower()}ed",
                    nhwc(node.shape),
                    np.int8,
                    out.scale,
                    out.zero_point,
                )
            )
            self.b.operator(op, [current, limit], [target], None)
            current = target
        return out


def relu6_max(scale: np.float32, zero_point: int) -> int:
    """The upper clamp TFLite computes for a fused RELU6 (float32 6 / scale, rounded)."""
    quotient = float(np.float32(6.0) / np.float32(scale))
    return min(INT8_MAX, zero_point + int(np.floor(quotient + 0.5)))  # std::round, positive


def check_graph(graph: HwGraph) -> None:
    """One sentence for a graph the tflite backend cannot write."""
    if graph.meta.get("target") != "tflite":
        raise UnsupportedOp(
            "this graph follows ajpq's own arithmetic (single rounding, an int32 head); "
            'quantize with ajpq.quantize(..., target="tflite") and lower again'
        )
    if input_zero_point(graph):
        raise UnsupportedOp(
            f"the input has a zero point per channel {input_zero_point(graph)}, but a .tflite "
            "tensor has one; fold a normalization with one mean for every channel, or none"
        )
    for node in graph.nodes:
        if node.bits > 8:
            raise UnsupportedOp(
                f"node {node.name!r} outputs {node.bits}-bit integers; TFLite's int8 kernels "
                "take at most 8"
            )


@dataclass(frozen=True)
class Exported:
    model: bytes  # the .tflite flatbuffer, not yet aligned
    weights: list[tuple[int, int, np.ndarray]]  # (tensor, channel axis, int8 values)
    operators: list[str]  # the builtin operators it uses, for a TFLM op resolver


def export(graph: HwGraph) -> Exported:
    """The .tflite of a graph lowered with ``target="tflite"``, its weight tensors (for
    TFLM's LUT compression) and the operators a TFLM op resolver must register."""
    exporter = Exporter(graph)
    model = exporter.run()
    names = {code: name for name, code in vars(exporter.b.s.BuiltinOperator).items()}
    return Exported(model, exporter.weights, sorted(names[code] for code in exporter.b.opcodes))
