"""The FINN nodes a HwGraph becomes, derived from shapes and bit-widths alone.

``layers(hw)`` lists, in dataflow order, the HW nodes the finn-plus steps produce for each
HwGraph node (see steps.py): a conv becomes FMPadding (if padded), a sliding-window
generator (k > 1 or stride > 1), a VVAU (depthwise) or MVAU, and a Thresholding (requantized
output; an un-requantized head gets an ElementwiseAdd for its bias instead); a maxpool is a
depthwise SWG + Pool; a reorg is a 2x2/stride-2 SWG (``reorg.py``); a concat is a
StreamingConcat; a tensor read by several nodes is forked by a DuplicateStreams. Weights
are never read (a shape-only graph with zero weights gives the same layers): a MAC layer's
weight width is its widest channel, its accumulator width the worst case of its bit-widths.
"""

import math
from dataclasses import dataclass, field

from ajpq.errors import UnsupportedOp
from ajpq.graph.hwgraph import HwGraph, Node, input_zero_point

MAC_OPS = ("MVAU", "VVAU")


@dataclass(frozen=True)
class Layer:
    """One FINN HW node: its op (FINN's name without _hls/_rtl) and its dimensions.

    ``channels``: channels streamed in (SWG, FMPadding, VVAU, Pool, Thresholding, ...);
    ``pixels``: output pixels per frame; ``ifm``/``ofm``: (H, W) in and out of a window op;
    ``mw``/``mh``: an MVAU's matrix (inputs per output, outputs); ``tied``: a depthwise SWG
    folds with the VVAU/Pool that follows it (its SIMD = that node's PE).
    """

    name: str
    op: str
    source: str  # the HwGraph node it comes from
    channels: int
    pixels: int
    in_bits: int
    out_bits: int = 0
    weight_bits: int = 0
    acc_bits: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    ifm: tuple[int, int] = (1, 1)
    ofm: tuple[int, int] = (1, 1)
    mw: int = 0
    mh: int = 0
    depthwise: bool = False
    tied: bool = False
    streams: tuple[int, ...] = field(default_factory=tuple)  # concat: channels per input


def accumulator_bits(terms: int, weight_bits: int, input_bits: int, signed_input: bool) -> int:
    """Worst-case accumulator width of ``terms`` products (the bound FINN's estimators use)."""
    alpha = math.log2(max(terms, 1)) + weight_bits + input_bits - 1 - int(signed_input)
    return math.ceil(alpha + math.log2(1 + 2.0**-alpha) + 1)


def _hw(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


def _window(
    node: Node, src: Node, name: str, kernel: tuple[int, int], stride: tuple[int, int], pad: int
) -> Layer:
    height, width = _hw(src.shape)
    return Layer(
        name,
        "ConvolutionInputGenerator",
        node.name,
        src.channels,
        math.prod(_hw(node.shape)),
        src.bits,
        src.bits,
        kernel=kernel,
        stride=stride,
        ifm=(height + 2 * pad, width + 2 * pad),
        ofm=_hw(node.shape),
        depthwise=node.op == "maxpool" or node.attrs.get("groups", 1) > 1,
        tied=node.op == "maxpool" or node.attrs.get("groups", 1) > 1,
    )


def _conv(node: Node, src: Node) -> list[Layer]:
    kernel = tuple(node.arrays["weight"].shape[2:]) if node.op == "conv" else (1, 1)
    stride = tuple(node.attrs.get("stride", (1, 1)))
    pad = max(node.attrs.get("padding", (0, 0)) or (0,))
    in_bits = int(node.attrs.get("input_bits", src.bits))
    weight_bits = (
        int(max(node.arrays["weight_bits"], default=1)) if "weight_bits" in node.arrays else 8
    )
    groups = node.attrs.get("groups", 1)
    depthwise = groups > 1 and groups == src.channels == node.channels
    pixels = math.prod(_hw(node.shape))
    out: list[Layer] = []
    height, width = _hw(src.shape)
    if pad:
        out.append(
            Layer(
                f"{node.name}/pad",
                "FMPadding",
                node.name,
                src.channels,
                (height + 2 * pad) * (width + 2 * pad),
                src.bits,
                src.bits,
                ifm=(height, width),
                ofm=(height + 2 * pad, width + 2 * pad),
            )
        )
    if kernel != (1, 1) or stride != (1, 1):
        out.append(_window(node, src, f"{node.name}/swg", kernel, stride, pad))
    terms = math.prod(kernel) * (1 if depthwise else src.channels // groups)
    acc = accumulator_bits(terms, weight_bits, in_bits, src.signed)
    common = dict(in_bits=in_bits, weight_bits=weight_bits, acc_bits=acc, kernel=kernel)
    if depthwise:
        out.append(Layer(f"{node.name}/mac", "VVAU", node.name, node.channels, pixels, **common))
    else:
        out.append(
            Layer(
                f"{node.name}/mac",
                "MVAU",
                node.name,
                src.channels,
                pixels,
                mw=terms,
                mh=node.channels,
                **common,
            )
        )
    if node.attrs.get("requant"):
        out.append(
            Layer(
                f"{node.name}/act",
                "Thresholding",
                node.name,
                node.channels,
                pixels,
                acc,
                node.bits,
                acc_bits=acc,
            )
        )
    elif "bias" in node.arrays:
        out.append(
            Layer(f"{node.name}/bias", "ElementwiseAdd", node.name, node.channels, pixels, acc, acc)
        )
    return out


def _node_layers(node: Node, srcs: list[Node]) -> list[Layer]:
    if node.op in ("conv", "linear"):
        return _conv(node, srcs[0])
    if node.op in ("maxpool", "avgpool"):
        kernel, stride = tuple(node.attrs["kernel"]), tuple(node.attrs["stride"])
        pool = Layer(
            f"{node.name}/pool",
            "Pool",
            node.name,
            node.channels,
            math.prod(_hw(node.shape)),
            srcs[0].bits,
            node.bits,
            kernel=kernel,
        )
        return [_window(node, srcs[0], f"{node.name}/swg", kernel, stride, 0), pool]
    if node.op == "reorg":
        stride = int(node.attrs.get("stride", 2))
        return [_window(node, srcs[0], f"{node.name}/swg", (stride,) * 2, (stride,) * 2, 0)]
    if node.op == "concat":
        streams = tuple(s.channels for s in srcs)
        return [
            Layer(
                f"{node.name}/concat",
                "StreamingConcat",
                node.name,
                sum(streams),
                math.prod(_hw(node.shape)),
                node.bits,
                node.bits,
                streams=streams,
            )
        ]
    if node.op == "add":
        return [
            Layer(
                f"{node.name}/add",
                "ElementwiseAdd",
                node.name,
                node.channels,
                math.prod(_hw(node.shape)),
                node.bits,
                node.bits,
            )
        ]
    return []  # input, flatten: no HW node


def check_input(hw: HwGraph) -> None:
    """FINN streams the image as UINT8 pixels: refuse an input with a zero point."""
    zero_point = input_zero_point(hw)
    if zero_point:
        raise UnsupportedOp(
            f"HwGraph input '{hw.nodes[0].name}' has zero point {zero_point} (a folded mean); "
            "the finn backend takes raw uint8 pixels: fold a zero mean or use the mcu backend"
        )


def layers(hw: HwGraph) -> list[Layer]:
    """The FINN HW nodes of ``hw`` in dataflow order (see the module docstring)."""
    check_input(hw)
    by_name = {n.name: n for n in hw.nodes}
    readers: dict[str, int] = {}
    for node in hw.nodes:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    out: list[Layer] = []
    for node in hw.nodes:
        out += _node_layers(node, [by_name[i] for i in node.inputs])
        if readers.get(node.name, 0) > 1 and node.op != "input":
            out.append(
                Layer(
                    f"{node.name}/fork",
                    "DuplicateStreams",
                    node.name,
                    node.channels,
                    math.prod(_hw(node.shape)),
                    node.bits,
                    node.bits,
                    streams=(node.channels,) * readers[node.name],
                )
            )
    return out
