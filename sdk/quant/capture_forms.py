"""The ways a PyTorch user writes the usual layers, recognised on torch.fx nodes.

``classify`` looks at one fx node (and the module it calls, if any) and says which ajpq op
it is, as a :class:`Form`; ``capture`` turns forms into ops. Knowing that ``F.relu6``,
``nn.Hardtanh(0, 6)`` and ``torch.clamp(x, 0, 6)`` are the same thing lives here only.
"""

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ajpq.errors import UnsupportedOp

# what a non-tensor helper node holds: ("size", None) for x.size()/x.shape, ("dim", k) for
# x.size(k)/x.shape[k], ("spatial", None) for x.size()[2:]/x.shape[-2:], ("other", None) for
# anything else derived from them
Helper = tuple[str, int | None]

IDENTITY_MODULES = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
IDENTITY_TARGETS = (
    F.dropout,
    F.dropout1d,
    F.dropout2d,
    F.dropout3d,
    F.alpha_dropout,
    F.feature_alpha_dropout,
    "contiguous",
    "float",
)
RELU = (F.relu, torch.relu, torch.relu_, "relu", "relu_")
HARDTANH = (F.hardtanh, F.relu6)
CLAMP = (torch.clamp, torch.clamp_, torch.clip, "clamp", "clamp_", "clip", "clip_")
ADD = (operator.add, operator.iadd, torch.add, "add", "add_")
CAT = (torch.cat, torch.concat, torch.concatenate)
FLATTEN = (torch.flatten, "flatten")
VIEW = (torch.reshape, "view", "reshape")
MEAN = (torch.mean, "mean")
POOLS = {F.max_pool2d: "maxpool", F.avg_pool2d: "avgpool"}
DIVIDE = (operator.truediv, torch.div, "div")
MULTIPLY = (operator.mul, torch.mul, "mul")
SQUEEZE = (torch.squeeze, "squeeze")
SPATIAL = ((2, None, None), (-2, None, None))  # x.size()[2:], x.shape[-2:]


@dataclass(frozen=True)
class Form:
    """What a node is to ajpq. ``kind``: alias (no op: the input's value), helper (a size,
    not a tensor), act, global_pool, flatten, add, concat, pool."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def argument(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    """The node's argument by position ``index`` or keyword ``name``."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def label(node: fx.Node) -> str:
    """How errors name a node: the module's path for a module call, else the fx name."""
    return str(node.target) if node.op == "call_module" else node.name


def activation(node: fx.Node, module: nn.Module | None) -> str | None:
    """ "relu" or "relu6" when the node is one of their forms, None when it is no activation."""
    if module is not None:
        if isinstance(module, nn.ReLU):
            return "relu"
        if isinstance(module, nn.Hardtanh):  # nn.ReLU6 is Hardtanh(0, 6)
            return _bounded(node, module.min_val, module.max_val)
        return None
    target = node.target
    if target in RELU:
        return "relu"
    if target is F.relu6:
        return "relu6"
    if target is F.hardtanh:
        return _bounded(node, argument(node, 1, "min_val", -1.0), argument(node, 2, "max_val", 1.0))
    if target in CLAMP:
        return _bounded(node, argument(node, 1, "min"), argument(node, 2, "max"))
    return None


def _bounded(node: fx.Node, low: Any, high: Any) -> str:
    if isinstance(low, int | float) and low == 0:
        if high is None:
            return "relu"
        if isinstance(high, int | float) and high == 6:
            return "relu6"
    raise UnsupportedOp(
        f"'{label(node)}' clamps to [{low}, {high}]; only [0, 6] (ReLU6) and [0, inf) (ReLU) "
        "are supported: use nn.ReLU6 or nn.ReLU"
    )


def classify(
    node: fx.Node,
    module: nn.Module | None,
    helpers: Mapping[str, Helper],
    in_shape: tuple[int, ...] | None,
) -> Form | None:
    """The node's form, or None when it is none ajpq knows. ``in_shape``: the shape (without
    batch) of the node's first argument when that is a tensor; ``helpers``: the size nodes."""
    helper = _helper(node, helpers)
    if helper is not None:
        return Form("helper", {"value": helper})
    if isinstance(module, IDENTITY_MODULES) or (module is None and node.target in IDENTITY_TARGETS):
        return Form("alias")
    act = activation(node, module)
    if act is not None:
        return Form("act", {"act": act})
    if module is not None:
        return _module_form(node, module, in_shape)
    return _function_form(node, helpers, in_shape)


def _helper(node: fx.Node, helpers: Mapping[str, Helper]) -> Helper | None:
    target, args = node.target, node.args
    if node.op == "call_method" and target == "size":
        dim = argument(node, 1, "dim")
        return ("size", None) if dim is None else ("dim", int(dim))
    if target is getattr and len(args) == 2 and args[1] == "shape":
        return ("size", None)
    if target is operator.getitem and isinstance(args[0], fx.Node) and args[0].name in helpers:
        index = args[1]
        if helpers[args[0].name] != ("size", None):
            return ("other", None)
        if isinstance(index, int):
            return ("dim", index)
        if isinstance(index, slice) and (index.start, index.stop, index.step) in SPATIAL:
            return ("spatial", None)
        return ("other", None)
    return None


def _module_form(node: fx.Node, module: nn.Module, in_shape: tuple[int, ...] | None) -> Form | None:
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return _global(node, module.output_size, keepdim=True)
    if isinstance(module, nn.Flatten):
        return _flatten(node, module.start_dim, module.end_dim, in_shape)
    return None


def _function_form(
    node: fx.Node, helpers: Mapping[str, Helper], in_shape: tuple[int, ...] | None
) -> Form | None:
    target = node.target
    if target in ADD:
        alpha = node.kwargs.get("alpha", 1)
        if alpha != 1:
            raise UnsupportedOp(f"'{node.name}' adds with alpha={alpha}; use a plain a + b")
        return Form("add")
    if target in CAT:
        return _concat(node)
    if target in FLATTEN:
        start, end = argument(node, 1, "start_dim", 0), argument(node, 2, "end_dim", -1)
        return _flatten(node, start, end, in_shape)
    if target in VIEW:
        return _view(node, helpers, in_shape)
    if target in MEAN:
        return _mean(node, in_shape)
    if target is F.adaptive_avg_pool2d:
        return _global(node, argument(node, 1, "output_size"), keepdim=True)
    if target in POOLS:
        return _pool(node, POOLS[target], helpers)
    if target in SQUEEZE:
        return _squeeze(node, in_shape)
    if target in DIVIDE or target in MULTIPLY:
        return _scaling(node, divide=target in DIVIDE)
    return None


def _scaling(node: fx.Node, divide: bool) -> Form | None:
    """``x / 255`` or ``x * (1 / 255)``: a constant positive scale (the input's, see capture)."""
    tensors = [a for a in node.args[:2] if isinstance(a, fx.Node)]
    constants = [a for a in node.args[:2] if isinstance(a, int | float)]
    if len(tensors) != 1 or len(constants) != 1 or (divide and node.args[0] is not tensors[0]):
        return None
    factor = float(constants[0])
    if not factor > 0 or not math.isfinite(factor):
        raise UnsupportedOp(f"'{label(node)}' scales by {factor}; only a positive constant is")
    return Form("scale", {"scale": 1.0 / factor if divide else factor, "tensor": tensors[0]})


def _global(node: fx.Node, size: Any, keepdim: bool) -> Form:
    sizes = (size, size) if not isinstance(size, tuple | list) else tuple(size)
    if sizes != (1, 1):
        raise UnsupportedOp(
            f"'{label(node)}' is an adaptive average pool to {size}; only output size 1 "
            "(global average pooling) is supported"
        )
    return Form("global_pool", {"keepdim": keepdim})


def _mean(node: fx.Node, in_shape: tuple[int, ...] | None) -> Form:
    dims = argument(node, 1, "dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims) if dims is not None else ()
    rank = len(in_shape) + 1 if in_shape is not None else 0
    if rank != 4 or {d % rank for d in dims if isinstance(d, int)} != {2, 3} or len(dims) != 2:
        raise UnsupportedOp(
            f"'{node.name}' averages over dims {dims or 'all'} of a rank-{rank} tensor; only the "
            "spatial mean x.mean((2, 3)) of an (N, C, H, W) map (global average pooling) is "
            "supported"
        )
    return Form("global_pool", {"keepdim": bool(argument(node, 2, "keepdim", False))})


def _pool(node: fx.Node, kind: str, helpers: Mapping[str, Helper]) -> Form:
    kernel = argument(node, 1, "kernel_size")
    if isinstance(kernel, fx.Node) and helpers.get(kernel.name) == ("spatial", None):
        if kind == "avgpool" and argument(node, 2, "stride") in (None, kernel):
            return Form("global_pool", {"keepdim": True})  # F.avg_pool2d(x, x.size()[2:])
    params = {
        "kernel": argument(node, 1, "kernel_size"),
        "stride": argument(node, 2, "stride"),
        "padding": argument(node, 3, "padding", 0),
        "dilation": argument(node, 4, "dilation", 1) if kind == "maxpool" else 1,
        "ceil_mode": argument(node, 5 if kind == "maxpool" else 4, "ceil_mode", False),
    }
    if kind == "maxpool" and argument(node, 6, "return_indices", False):
        raise UnsupportedOp(f"'{node.name}' returns pooling indices; use return_indices=False")
    if kind == "avgpool" and argument(node, 6, "divisor_override") is not None:
        raise UnsupportedOp(f"'{node.name}' sets divisor_override; use a plain average pool")
    if any(isinstance(v, fx.Node) for v in params.values()):
        raise UnsupportedOp(
            f"'{node.name}' takes its pool sizes from the tensor's shape; write them as numbers, "
            "or use nn.AdaptiveAvgPool2d(1) for global average pooling"
        )
    return Form("pool", {"kind": kind, **params})


def _concat(node: fx.Node) -> Form:
    dim = argument(node, 1, "dim", 0)
    if dim not in (1, -3):
        raise UnsupportedOp(
            f"'{node.name}' concatenates on dim {dim}; only channels (dim=1) are supported"
        )
    return Form("concat", {"tensors": list(node.args[0])})


def _squeeze(node: fx.Node, in_shape: tuple[int, ...] | None) -> Form:
    dims = argument(node, 1, "dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims) if dims is not None else (2, 3)
    if in_shape is None or len(in_shape) != 3 or in_shape[1:] != (1, 1) or len(dims) != 2:
        raise UnsupportedOp(
            f"'{node.name}' squeezes dims {dims} of a tensor of shape {in_shape}; squeeze only a "
            "pooled (C, 1, 1) map in one call, x.squeeze((2, 3)), or use x.flatten(1)"
        )
    if {d % 4 for d in dims if isinstance(d, int)} != {2, 3}:
        raise UnsupportedOp(f"'{node.name}' squeezes dims {dims}; squeeze (2, 3)")
    return Form("flatten")


def _flatten(node: fx.Node, start: int, end: int, in_shape: tuple[int, ...] | None) -> Form:
    rank = len(in_shape) + 1 if in_shape is not None else 0
    if rank < 2 or start % rank != 1 or end % rank != rank - 1:
        raise UnsupportedOp(
            f"flatten '{label(node)}' flattens dims {start}..{end} of a rank-{rank} tensor; "
            "flatten everything but the batch (start_dim=1, end_dim=-1)"
        )
    return Form("flatten")


def _view(node: fx.Node, helpers: Mapping[str, Helper], in_shape: tuple[int, ...] | None) -> Form:
    sizes = list(node.args[1:])
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list | torch.Size):
        sizes = list(sizes[0])
    flat = math.prod(in_shape) if in_shape is not None else -2
    if len(sizes) == 2:
        batch, rest = sizes
        is_batch = isinstance(batch, fx.Node) and helpers.get(batch.name) == ("dim", 0)
        if (is_batch and rest in (-1, flat)) or (batch == -1 and rest == flat):
            return Form("flatten")
    shown = ", ".join(_size_text(s, helpers) for s in sizes)
    raise UnsupportedOp(
        f"'{node.name}' reshapes to ({shown}); the only reshape supported is a flatten before a "
        "Linear: x.view(x.size(0), -1), x.flatten(1) or nn.Flatten()"
    )


def _size_text(size: Any, helpers: Mapping[str, Helper]) -> str:
    if not isinstance(size, fx.Node):
        return str(size)
    kind, dim = helpers.get(size.name, ("other", None))
    return f"size({dim})" if kind == "dim" else size.name
