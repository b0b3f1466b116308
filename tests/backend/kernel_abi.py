"""ctypes mirror of firmware/include/ajpq_kernels.h, and one caller per kernel.

Each caller takes a golden ``Node`` and its numpy inputs (batch 1, as the golden executor
holds them), packs the params struct, runs the C kernel and returns its output as int64 in
the golden layout, so a test compares it with ``ajpq.graph.golden`` by plain equality.
"""

import ctypes
from ctypes import POINTER, Structure, c_int8, c_int16, c_int32, c_size_t, c_void_p
from typing import Any

import numpy as np

from ajpq.graph import golden
from ajpq.graph.hwgraph import Node


class Requant(Structure):
    _fields_ = [
        ("enabled", c_int32),
        ("multiplier", POINTER(c_int32)),
        ("shift", POINTER(c_int8)),
        ("act_min", c_int32),
        ("act_max", c_int32),
        ("rounding", c_int32),
        ("per_tensor", c_int32),
    ]


_WINDOW = [
    ("out_height", c_int32),
    ("out_width", c_int32),
    ("kernel_h", c_int32),
    ("kernel_w", c_int32),
    ("stride_h", c_int32),
    ("stride_w", c_int32),
    ("pad_h", c_int32),
    ("pad_w", c_int32),
]


class ConvParams(Structure):
    _fields_ = [
        ("in_channels", c_int32),
        ("in_height", c_int32),
        ("in_width", c_int32),
        ("out_channels", c_int32),
        *_WINDOW,
        ("in_index", POINTER(c_int32)),
        ("weight", POINTER(c_int8)),
        ("bias", POINTER(c_int32)),
        ("requant", Requant),
    ]


class DwconvParams(Structure):
    _fields_ = [
        ("channels", c_int32),
        ("in_height", c_int32),
        ("in_width", c_int32),
        *_WINDOW,
        ("in_index", POINTER(c_int32)),
        ("weight", POINTER(c_int8)),
        ("bias", POINTER(c_int32)),
        ("requant", Requant),
    ]


class PoolParams(Structure):
    _fields_ = [
        ("channels", c_int32),
        ("in_height", c_int32),
        ("in_width", c_int32),
        *_WINDOW,
        ("requant", Requant),
    ]


class AddParams(Structure):
    _fields_ = [
        ("channels", c_int32),
        ("size", c_int32),
        ("index_a", POINTER(c_int32)),
        ("index_b", POINTER(c_int32)),
        ("multiplier_a", POINTER(c_int32)),
        ("multiplier_b", POINTER(c_int32)),
        ("shift", POINTER(c_int8)),
        ("act_min", c_int32),
        ("act_max", c_int32),
        ("rounding", c_int32),
        ("shift_a", POINTER(c_int8)),
        ("shift_b", POINTER(c_int8)),
        ("multiplier", POINTER(c_int32)),
        ("left_shift", c_int32),
    ]


class ConcatParams(Structure):
    _fields_ = [
        ("num_inputs", c_int32),
        ("channels", POINTER(c_int32)),
        ("size", c_int32),
        ("requant", Requant),
    ]


class ReorgParams(Structure):
    _fields_ = [
        ("channels", c_int32),
        ("in_height", c_int32),
        ("in_width", c_int32),
        ("stride", c_int32),
    ]


class LinearParams(Structure):
    _fields_ = [
        ("in_features", c_int32),
        ("out_features", c_int32),
        ("weight", POINTER(c_int8)),
        ("bias", POINTER(c_int32)),
        ("requant", Requant),
    ]


KERNELS = {  # C function name -> its params struct
    "ajpq_conv_ref_s8": ConvParams,
    "ajpq_dwconv_ref_s8": DwconvParams,
    "ajpq_maxpool_ref_s16": PoolParams,
    "ajpq_avgpool_ref_s16": PoolParams,
    "ajpq_add_ref_s16": AddParams,
    "ajpq_concat_ref_s16": ConcatParams,
    "ajpq_reorg_ref_s16": ReorgParams,
    "ajpq_linear_ref_s8": LinearParams,
}


def load(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    for name, params in KERNELS.items():
        getattr(lib, name).restype = None
        size = getattr(lib, f"{name}_get_buffer_size")
        size.argtypes = [POINTER(params)]
        size.restype = c_size_t
    return lib


class _Keep:
    """Holds the contiguous numpy arrays whose pointers a params struct borrows."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def ptr(self, array: np.ndarray | None, ctype: Any) -> Any:
        if array is None:
            return None
        array = np.ascontiguousarray(array, dtype=np.dtype(ctype))
        self.arrays.append(array)
        return array.ctypes.data_as(POINTER(ctype))


def _requant(node: Node, keep: _Keep, default: bool = True) -> Requant:
    if not node.attrs.get("requant", default):
        return Requant(0, None, None, 0, 0, 0)
    return Requant(
        1,
        keep.ptr(node.arrays["multiplier"], c_int32),
        keep.ptr(node.arrays["shift"], c_int8),
        node.attrs["act_min"],
        node.attrs["act_max"],
        int(golden.double_rounding(node)),
    )


def _window(node: Node, kernel: tuple[int, int], padding: tuple[int, int]) -> dict[str, int]:
    (kh, kw), (sh, sw), (ph, pw) = kernel, node.attrs["stride"], padding
    return dict(
        out_height=node.shape[1],
        out_width=node.shape[2],
        kernel_h=kh,
        kernel_w=kw,
        stride_h=sh,
        stride_w=sw,
        pad_h=ph,
        pad_w=pw,
    )


def _output(node: Node, raw: bool) -> np.ndarray:
    return np.zeros(node.shape, dtype=np.int32 if raw else np.int16)


def _scratch(lib: ctypes.CDLL, name: str, params: Structure) -> tuple[Any, Any]:
    """A scratch buffer of the size the kernel asks for (NULL when it asks for none)."""
    size = getattr(lib, f"{name}_get_buffer_size")(ctypes.byref(params))
    if size == 0:
        return None, None
    buffer = ctypes.create_string_buffer(size)
    return buffer, ctypes.cast(buffer, c_void_p)


def _call(lib: ctypes.CDLL, name: str, params: Structure, *tensors: Any) -> None:
    buffer, scratch = _scratch(lib, name, params)
    getattr(lib, name)(ctypes.byref(params), *tensors, scratch)
    del buffer


def _act(x: np.ndarray, keep: _Keep) -> Any:
    return keep.ptr(x[0], c_int16)


def run_conv(lib: ctypes.CDLL, node: Node, x: np.ndarray) -> np.ndarray:
    keep, weight = _Keep(), node.arrays["weight"]
    index = node.arrays.get("in_index")
    raw = not node.attrs.get("requant", True)
    window = _window(node, weight.shape[2:], node.attrs["padding"])
    common = dict(
        in_height=x.shape[2],
        in_width=x.shape[3],
        in_index=keep.ptr(index, c_int32),
        weight=keep.ptr(weight, c_int8),
        bias=keep.ptr(node.arrays["bias"], c_int32),
        requant=_requant(node, keep),
        **window,
    )
    out = _output(node, raw)
    if node.attrs["groups"] == 1:
        params: Structure = ConvParams(
            in_channels=weight.shape[1], out_channels=weight.shape[0], **common
        )
        name = "ajpq_conv_ref_s8"
    else:
        params = DwconvParams(channels=weight.shape[0], **common)
        name = "ajpq_dwconv_ref_s8"
    _call(lib, name, params, _act(x, keep), out.ctypes.data_as(c_void_p))
    return out[None].astype(np.int64)


def run_pool(lib: ctypes.CDLL, node: Node, x: np.ndarray) -> np.ndarray:
    keep, is_max = _Keep(), node.op == "maxpool"
    padding = node.attrs["padding"] if is_max else (0, 0)
    params = PoolParams(
        channels=x.shape[1],
        in_height=x.shape[2],
        in_width=x.shape[3],
        requant=Requant(0, None, None, 0, 0, 0) if is_max else _requant(node, keep),
        **_window(node, node.attrs["kernel"], padding),
    )
    out = _output(node, not is_max and not node.attrs.get("requant", True))
    name = "ajpq_maxpool_ref_s16" if is_max else "ajpq_avgpool_ref_s16"
    _call(lib, name, params, _act(x, keep), out.ctypes.data_as(c_void_p))
    return out[None].astype(np.int64)


def run_add(
    lib: ctypes.CDLL, node: Node, a: np.ndarray, b: np.ndarray, gather: bool = True
) -> np.ndarray:
    """gather=False passes NULL indices (the caller checks that they are the identity)."""
    keep, arrays = _Keep(), node.arrays
    double = golden.double_rounding(node)
    params = AddParams(
        channels=node.shape[0],
        size=int(np.prod(node.shape[1:], dtype=np.int64)),
        index_a=keep.ptr(arrays["index_a"] if gather else None, c_int32),
        index_b=keep.ptr(arrays["index_b"] if gather else None, c_int32),
        multiplier_a=keep.ptr(arrays["multiplier_a"], c_int32),
        multiplier_b=keep.ptr(arrays["multiplier_b"], c_int32),
        shift=keep.ptr(arrays["shift"], c_int8),
        act_min=node.attrs["act_min"],
        act_max=node.attrs["act_max"],
        rounding=int(double),
        shift_a=keep.ptr(arrays["shift_a"] if double else None, c_int8),
        shift_b=keep.ptr(arrays["shift_b"] if double else None, c_int8),
        multiplier=keep.ptr(arrays["multiplier"] if double else None, c_int32),
        left_shift=node.attrs["left_shift"] if double else 0,
    )
    out = _output(node, raw=False)
    _call(
        lib, "ajpq_add_ref_s16", params, _act(a, keep), _act(b, keep), out.ctypes.data_as(c_void_p)
    )
    return out[None].astype(np.int64)


def run_concat(lib: ctypes.CDLL, node: Node, *inputs: np.ndarray) -> np.ndarray:
    keep = _Keep()
    pointers = (POINTER(c_int16) * len(inputs))(*(_act(x, keep) for x in inputs))
    params = ConcatParams(
        num_inputs=len(inputs),
        channels=keep.ptr(np.array([x.shape[1] for x in inputs]), c_int32),
        size=int(np.prod(inputs[0].shape[2:], dtype=np.int64)),
        requant=_requant(node, keep, default=False),
    )
    out = _output(node, raw=False)
    _call(lib, "ajpq_concat_ref_s16", params, pointers, out.ctypes.data_as(c_void_p))
    return out[None].astype(np.int64)


def run_reorg(lib: ctypes.CDLL, node: Node, x: np.ndarray) -> np.ndarray:
    keep = _Keep()
    params = ReorgParams(x.shape[1], x.shape[2], x.shape[3], node.attrs["stride"])
    out = _output(node, raw=False)
    _call(lib, "ajpq_reorg_ref_s16", params, _act(x, keep), out.ctypes.data_as(c_void_p))
    return out[None].astype(np.int64)


def run_linear(lib: ctypes.CDLL, node: Node, x: np.ndarray) -> np.ndarray:
    keep, weight = _Keep(), node.arrays["weight"]
    params = LinearParams(
        in_features=weight.shape[1],
        out_features=weight.shape[0],
        weight=keep.ptr(weight, c_int8),
        bias=keep.ptr(node.arrays["bias"], c_int32),
        requant=_requant(node, keep),
    )
    out = _output(node, raw=not node.attrs.get("requant", True))
    _call(lib, "ajpq_linear_ref_s8", params, _act(x, keep), out.ctypes.data_as(c_void_p))
    return out[None].astype(np.int64)
