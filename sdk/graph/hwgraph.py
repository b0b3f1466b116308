"""HwGraph: the integer-only hardware graph every backend reads.

Nodes are in execution order; each names its inputs (other nodes) and holds integer arrays
(weights, biases, requantization multipliers and shifts) and plain attributes. Float scales
are kept only as metadata, to dequantize the output and to document the graph. The input node
takes uint8 pixels; its optional ``zero_point`` attr (one whole pixel value per channel, from
``ajpq.quant.fold_input``) is subtracted from them, so its output is ``pixel - zero_point``.
"""

import io
import json
import lzma
import math
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ajpq.errors import InvalidGraph, one_line
from ajpq.graph.requant import integer_range

FORMAT = "ajpq-hwgraph-1"
OPS = ("input", "conv", "linear", "maxpool", "avgpool", "add", "concat", "reorg", "flatten")
MAX_BITS = 32  # the widest value a node holds: a raw int32 accumulator
# What reading a damaged zip, graph.json or .npy raises: zipfile's BadZipFile, zlib/lzma/bz2
# (OSError) errors, NotImplementedError and RuntimeError (an unknown compression method or an
# encryption flag), struct.error, json's and numpy's ValueError, RecursionError on deep
# nesting, and tokenize.TokenError from numpy's parser of a cut .npy header.
READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    EOFError,
    RuntimeError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    tokenize.TokenError,
)


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    shape: tuple[int, ...]  # output shape without batch: (C, H, W) or (F,)
    bits: int  # output bit-width (32 for a raw accumulator)
    signed: bool
    attrs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.shape[0]


@dataclass
class HwGraph:
    nodes: list[Node]
    output_scale: np.ndarray  # float64 per output channel: real = int * output_scale
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def replace(self, nodes: list[Node], **kw: Any) -> "HwGraph":
        return replace(self, nodes=nodes, **kw)

    # ---- execution and reporting (implemented in golden.py / summary.py) ------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """The golden integer executor: uint8 images (N, C, H, W) -> int64 output tensor."""
        from ajpq.graph.golden import run

        return run(self, x)

    def summary(self) -> dict[str, Any]:
        from ajpq.graph.summary import summary

        return summary(self)

    def to_qonnx(self, path: str | Path) -> None:
        from ajpq.graph.qonnx import export

        export(self, path)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        header = {
            "format": FORMAT,
            "meta": self.meta,
            "nodes": [
                {
                    "name": n.name,
                    "op": n.op,
                    "inputs": n.inputs,
                    "shape": list(n.shape),
                    "bits": n.bits,
                    "signed": n.signed,
                    "attrs": n.attrs,
                    "arrays": sorted(n.arrays),
                }
                for n in self.nodes
            ],
        }
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("graph.json", json.dumps(header))
            _write_array(zf, "output_scale", self.output_scale)
            for i, n in enumerate(self.nodes):
                for key, arr in n.arrays.items():
                    _write_array(zf, f"{i}/{key}", arr)

    @classmethod
    def load(cls, path: str | Path) -> "HwGraph":
        try:
            with zipfile.ZipFile(path) as zf:
                header = _read_header(zf)
                nodes = [_read_node(zf, i, raw) for i, raw in enumerate(header["nodes"])]
                graph = cls(nodes, _read_array(zf, "output_scale"), header.get("meta", {}))
        except FileNotFoundError:
            raise InvalidGraph(f"{path} does not exist; save a graph with HwGraph.save") from None
        except READ_ERRORS as exc:
            raise InvalidGraph(
                f"{path} is not a valid ajpq HwGraph file ({_reason(exc)}); "
                "re-create it with ajpq.lower(...).save(path)"
            ) from None
        validate(graph, str(path))
        return graph


class _Malformed(ValueError):
    """graph.json or an array breaks the format; the message says where."""


def _reason(exc: Exception) -> str:
    return one_line(str(exc) if isinstance(exc, _Malformed) else f"{type(exc).__name__}: {exc}")


def _write_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    zf.writestr(f"arrays/{name}.npy", buf.getvalue())


def _read_array(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """One array; its header must describe exactly the bytes that follow it (numpy would
    first allocate whatever shape a damaged header claims)."""
    content = zf.read(f"arrays/{name}.npy")
    stream = io.BytesIO(content)
    if np.lib.format.read_magic(stream) != (1, 0):
        raise _Malformed(f"arrays/{name}.npy is not a version 1.0 .npy file")
    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    claimed, held = math.prod(shape) * dtype.itemsize, len(content) - stream.tell()
    if claimed != held:
        raise _Malformed(f"arrays/{name}.npy holds {held} bytes of data, its header {claimed}")
    stream.seek(0)
    return np.load(stream, allow_pickle=False)


def _read_header(zf: zipfile.ZipFile) -> dict[str, Any]:
    header = json.loads(zf.read("graph.json"))
    if not isinstance(header, dict):
        raise _Malformed(f"graph.json holds a {type(header).__name__}, not an object")
    if header.get("format") != FORMAT:
        raise _Malformed(f"graph.json's format is {header.get('format')!r}, not {FORMAT!r}")
    if not isinstance(header.get("nodes"), list) or not isinstance(header.get("meta", {}), dict):
        raise _Malformed("graph.json's nodes must be a list and its meta an object")
    return header


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# Each field of a node in graph.json: whether a value is valid, and what a valid one is.
NODE_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "op": (lambda v: isinstance(v, str), "a string"),
    "inputs": (_is_names, "a list of node names"),
    "shape": (
        lambda v: isinstance(v, list) and len(v) > 0 and all(_is_whole(d) and d > 0 for d in v),
        "a list of positive whole numbers",
    ),
    "bits": (lambda v: _is_whole(v) and 1 <= v <= MAX_BITS, f"a whole number 1..{MAX_BITS}"),
    "signed": (lambda v: isinstance(v, bool), "true or false"),
    "attrs": (lambda v: isinstance(v, dict), "an object"),
    "arrays": (_is_names, "a list of array names"),
}


def _read_node(zf: zipfile.ZipFile, index: int, raw: Any) -> Node:
    if not isinstance(raw, dict):
        raise _Malformed(f"node {index} is {type(raw).__name__}, not an object")
    for key, (valid, meaning) in NODE_FIELDS.items():
        if key not in raw:
            raise _Malformed(f"node {index} lacks the field '{key}'")
        if not valid(raw[key]):
            raise _Malformed(f"node {index}'s '{key}' is {raw[key]!r}, not {meaning}")
    arrays = {key: _read_array(zf, f"{index}/{key}") for key in raw["arrays"]}
    attrs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["attrs"].items()}
    return Node(
        raw["name"],
        raw["op"],
        raw["inputs"],
        tuple(raw["shape"]),
        raw["bits"],
        raw["signed"],
        attrs,
        arrays,
    )


def input_zero_point(graph: HwGraph) -> tuple[int, ...]:
    """The per-channel zero point subtracted from the uint8 pixels; () when there is none."""
    zero_point = tuple(int(z) for z in graph.nodes[0].attrs.get("zero_point", ()))
    return zero_point if any(zero_point) else ()


REQUIRED = {"conv": ("weight", "bias"), "linear": ("weight", "bias")}


def validate(graph: HwGraph, where: str = "graph") -> None:
    """Structural checks: known ops, inputs defined before use, required arrays present."""
    seen: set[str] = set()
    if not graph.nodes or graph.nodes[0].op != "input":
        raise InvalidGraph(f"{where}: the first node must be the input; re-lower the model")
    _validate_zero_point(graph.nodes[0], where)
    for n in graph.nodes:
        if n.op not in OPS:
            raise InvalidGraph(f"{where}: node {n.name!r} has unknown op {n.op!r}; known: {OPS}")
        missing = [i for i in n.inputs if i not in seen]
        if missing:
            raise InvalidGraph(
                f"{where}: node {n.name!r} reads {missing[0]!r} before it exists; "
                "re-lower the model"
            )
        absent = [a for a in REQUIRED.get(n.op, ()) if a not in n.arrays]
        if absent:
            raise InvalidGraph(
                f"{where}: node {n.name!r} lacks its {absent[0]!r} array; re-lower the model"
            )
        if n.name in seen:
            raise InvalidGraph(f"{where}: node name {n.name!r} is used twice; re-lower the model")
        seen.add(n.name)
    if np.shape(graph.output_scale) != (graph.output.channels,):
        raise InvalidGraph(
            f"{where}: output_scale has shape {np.shape(graph.output_scale)}, not one scale per "
            f"output channel ({graph.output.channels},); re-lower the model"
        )


def _validate_zero_point(node: Node, where: str) -> None:
    """The input's zero point: one pixel value 0..255 per channel, its range in the format."""
    zero_point = node.attrs.get("zero_point")
    if zero_point is None:
        return
    values = list(zero_point) if isinstance(zero_point, (list, tuple)) else [zero_point]
    if len(values) != node.channels or not all(
        isinstance(z, int) and not isinstance(z, bool) and 0 <= z <= 255 for z in values
    ):
        raise InvalidGraph(
            f"{where}: input {node.name!r} zero_point {zero_point!r} must be {node.channels} "
            "whole pixel values 0..255; re-lower the model"
        )
    lo, hi = integer_range(node.bits, node.signed)
    if -max(values) < lo or 255 - min(values) > hi:
        signedness = "signed" if node.signed else "unsigned"
        raise InvalidGraph(
            f"{where}: input {node.name!r} is {node.bits}-bit {signedness} but pixels minus "
            f"its zero_point span {-max(values)}..{255 - min(values)}; re-lower the model"
        )
