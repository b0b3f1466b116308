"""The golden integer executor: defines the numbers every backend must reproduce exactly.

All arithmetic is on integers. Convolutions go through float64 BLAS, which is exact here:
every product and partial sum is an integer far below 2^53.
"""

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ajpq.errors import InvalidGraph
from ajpq.graph.hwgraph import HwGraph, Node, input_zero_point
from ajpq.graph.requant import requantize, requantize_double, tflite_add_sum


def run(graph: HwGraph, x: np.ndarray) -> np.ndarray:
    """uint8 images (N, C, H, W) (or one (C, H, W)) -> the integer output (int64)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    expected = graph.nodes[0].shape
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(expected):
        raise InvalidGraph(f"input has shape {x.shape}; this graph takes (N, {expected}) uint8")
    if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255 or not np.all(x == np.round(x))):
        raise InvalidGraph("input pixels must be integers 0..255 (uint8)")
    values: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        args = [values[name] for name in node.inputs]
        values[node.name] = pixels(graph, x) if node.op == "input" else KERNELS[node.op](node, args)
    return values[graph.output.name]


def pixels(graph: HwGraph, x: np.ndarray) -> np.ndarray:
    """The input node's integers: the pixels minus the per-channel zero point (if any)."""
    zero_point = input_zero_point(graph)
    values = x.astype(np.int64)
    if not zero_point:
        return values
    return values - np.asarray(zero_point, dtype=np.int64).reshape(1, -1, 1, 1)


def _windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    fill: float = 0,
) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) view of sliding windows over a padded (N, C, H, W) tensor."""
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    win = sliding_window_view(x, tuple(kernel), axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1]]


def _output(node: Node, acc: np.ndarray) -> np.ndarray:
    if not node.attrs.get("requant", True):
        return acc
    rescale = requantize_double if double_rounding(node) else requantize
    return rescale(
        acc,
        node.arrays["multiplier"],
        node.arrays["shift"],
        node.attrs["act_min"],
        node.attrs["act_max"],
    )


def double_rounding(node: Node) -> bool:
    """Whether the node requantizes as TFLite does (``rounding: double``, quantized with
    ``target="tflite"``) rather than ajpq's single rounding."""
    return node.attrs.get("rounding", "single") == "double"


def conv(node: Node, args: list[np.ndarray]) -> np.ndarray:
    x = args[0]
    if "in_index" in node.arrays:
        x = x[:, node.arrays["in_index"]]
    weight = node.arrays["weight"].astype(np.float64)
    win = _windows(
        x.astype(np.float64), weight.shape[2:], node.attrs["stride"], node.attrs["padding"]
    )
    if node.attrs["groups"] == 1:
        acc = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    else:
        acc = np.einsum("nchwij,cij->nchw", win, weight[:, 0], optimize=True)
    acc = np.rint(acc).astype(np.int64) + node.arrays["bias"].astype(np.int64)[None, :, None, None]
    return _output(node, acc)


def linear(node: Node, args: list[np.ndarray]) -> np.ndarray:
    weight = node.arrays["weight"].astype(np.float64)
    acc = np.rint(args[0].astype(np.float64) @ weight.T).astype(np.int64)
    return _output(node, acc + node.arrays["bias"].astype(np.int64)[None, :])


def maxpool(node: Node, args: list[np.ndarray]) -> np.ndarray:
    low = np.iinfo(np.int64).min
    win = _windows(args[0], node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"], low)
    return win.max(axis=(4, 5))


def avgpool(node: Node, args: list[np.ndarray]) -> np.ndarray:
    win = _windows(args[0], node.attrs["kernel"], node.attrs["stride"], (0, 0))
    return _output(node, win.sum(axis=(4, 5), dtype=np.int64))


def add(node: Node, args: list[np.ndarray]) -> np.ndarray:
    a = args[0][:, node.arrays["index_a"]]
    b = args[1][:, node.arrays["index_b"]]
    if double_rounding(node):
        return _add_double(node, a, b)
    shape = (1, -1) + (1,) * (a.ndim - 2)
    ma = node.arrays["multiplier_a"].astype(np.int64).reshape(shape)
    mb = node.arrays["multiplier_b"].astype(np.int64).reshape(shape)
    s = node.arrays["shift"].astype(np.int64).reshape(shape)
    out = (a * ma + b * mb + (np.int64(1) << (s - 1))) >> s
    return np.clip(out, node.attrs["act_min"], node.attrs["act_max"])


def _add_double(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite's int8 ADD (``requant.tflite_add_sum``), then the output's double rounding."""
    arrays = node.arrays
    summed = tflite_add_sum(
        a, b, arrays["multiplier_a"], arrays["shift_a"], arrays["multiplier_b"],
        arrays["shift_b"], node.attrs["left_shift"],
    )  # fmt: skip
    return _output(node, summed)


def concat(node: Node, args: list[np.ndarray]) -> np.ndarray:
    joined = np.concatenate(args, axis=1)
    return _output(node, joined) if node.attrs.get("requant") else joined


def reorg(node: Node, args: list[np.ndarray]) -> np.ndarray:
    x, s = args[0], node.attrs["stride"]
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // s, s, w // s, s).transpose(0, 3, 5, 1, 2, 4)
    return x.reshape(n, s * s * c, h // s, w // s)


def flatten(node: Node, args: list[np.ndarray]) -> np.ndarray:
    return args[0].reshape(args[0].shape[0], -1)


KERNELS: dict[str, Callable[[Node, list[np.ndarray]], np.ndarray]] = {
    "conv": conv,
    "linear": linear,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "add": add,
    "concat": concat,
    "reorg": reorg,
    "flatten": flatten,
}
