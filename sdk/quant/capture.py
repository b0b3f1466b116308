"""Capture a float torch CNN as a flat list of ops (torch.fx), with BatchNorm folded.

This is the one place that understands torch modules; ``quantize`` builds the QAT model
from the captured ops and ``Policy`` lists the quantizable layers from them.
"""

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ajpq.errors import UnsupportedOp
from ajpq.models.layers import Normalize, Reorg

SUPPORTED = (
    "Conv2d (dense or depthwise), BatchNorm2d after a conv, ReLU/ReLU6, MaxPool2d, AvgPool2d, "
    "AdaptiveAvgPool2d(1), Linear, flatten, torch.cat on channels, residual add, Reorg, Normalize"
)
LEAF_TYPES = (Normalize, Reorg, nn.Flatten)


@dataclass
class FloatOp:
    """One captured op. ``kind`` is one of: input, normalize, conv, linear, maxpool, avgpool,
    reorg, concat, add, flatten. ``act`` is None, "relu" or "relu6" (a fused activation)."""

    name: str
    kind: str
    inputs: list[str]
    shape: tuple[int, ...]  # output shape without the batch dimension
    attrs: dict[str, Any] = field(default_factory=dict)
    weight: torch.Tensor | None = None  # conv/linear, BatchNorm folded in
    bias: torch.Tensor | None = None
    act: str | None = None


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAF_TYPES) or super().is_leaf_module(m, qualname)


def example_input(model: nn.Module, input_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A zero image batch of the model's input size (``model.input_size`` or the argument)."""
    size = input_size or getattr(model, "input_size", None)
    if size is None:
        raise UnsupportedOp(
            "cannot infer the model's input size; pass input_size=(H, W) or give the model an "
            "input_size attribute"
        )
    return torch.zeros(1, 3, int(size[0]), int(size[1]))


def capture(model: nn.Module, input_size: tuple[int, int] | None = None) -> list[FloatOp]:
    """Trace ``model`` and return its ops in execution order, BN folded, activations fused."""
    try:
        graph_module = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as exc:  # fx raises many types for untraceable Python
        raise UnsupportedOp(
            f"torch.fx cannot trace {type(model).__name__} ({exc}); ajpq needs a model without "
            "data-dependent control flow"
        ) from exc
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ShapeProp(graph_module).propagate(example_input(model, input_size))
    model.train(was_training)
    return _Builder(graph_module).build()


class _Builder:
    def __init__(self, graph_module: fx.GraphModule) -> None:
        self.gm = graph_module
        self.modules = dict(graph_module.named_modules())
        self.ops: list[FloatOp] = []
        self.alias: dict[str, str] = {}  # fx node name -> op name producing its value
        self.by_name: dict[str, FloatOp] = {}

    def build(self) -> list[FloatOp]:
        for node in self.gm.graph.nodes:
            if node.op == "output":
                self.output = self._src(node.args[0])
                continue
            self._visit(node)
        if not self.ops or self.ops[-1].name != self.output:
            raise UnsupportedOp("the model's output must be the last op it computes")
        return self.ops

    def _src(self, arg: Any) -> str:
        if not isinstance(arg, fx.Node):
            raise UnsupportedOp(f"unsupported non-tensor argument {arg!r}; supported: {SUPPORTED}")
        return self.alias[arg.name]

    def _shape(self, node: fx.Node) -> tuple[int, ...]:
        return tuple(int(d) for d in node.meta["tensor_meta"].shape[1:])

    def _add(self, node: fx.Node, kind: str, inputs: list[str], **kw: Any) -> FloatOp:
        name = node.target if node.op == "call_module" else node.name
        op = FloatOp(str(name), kind, inputs, self._shape(node), **kw)
        self.ops.append(op)
        self.by_name[op.name] = op
        self.alias[node.name] = op.name
        return op

    def _visit(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            self._add(node, "input", [])
        elif node.op == "call_module":
            self._visit_module(node, self.modules[node.target])
        elif node.op in ("call_function", "call_method"):
            self._visit_function(node)
        else:
            raise UnsupportedOp(f"node '{node.name}' ({node.op}) is not supported; use {SUPPORTED}")

    def _visit_module(self, node: fx.Node, m: nn.Module) -> None:
        src = [self._src(a) for a in node.args[:1]]
        if isinstance(m, Normalize):
            attrs = {"scale": m.scale, "zero_point": m.zero_point}
            self._add(node, "normalize", src, attrs=attrs)
        elif isinstance(m, nn.Conv2d):
            self._conv(node, m, src)
        elif isinstance(m, nn.Linear):
            w = m.weight.detach().clone()
            b = m.bias.detach().clone() if m.bias is not None else torch.zeros(m.out_features)
            self._add(node, "linear", src, weight=w, bias=b)
        elif isinstance(m, nn.BatchNorm2d):
            self._fold_bn(node, m, src[0])
        elif isinstance(m, nn.ReLU | nn.ReLU6):
            self._fuse_act(node, src[0], "relu6" if isinstance(m, nn.ReLU6) else "relu")
        elif isinstance(m, nn.MaxPool2d):
            self._pool(node, "maxpool", src, m.kernel_size, m.stride, m.padding, m.dilation)
        elif isinstance(m, nn.AvgPool2d):
            self._pool(node, "avgpool", src, m.kernel_size, m.stride, m.padding, 1)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self._global_pool(node, m.output_size, src)
        elif isinstance(m, Reorg):
            self._add(node, "reorg", src, attrs={"stride": m.stride})
        elif isinstance(m, nn.Flatten):
            self._flatten(node, src, m.start_dim)
        else:
            raise UnsupportedOp(
                f"module '{node.target}' ({type(m).__name__}) is not supported; "
                f"supported: {SUPPORTED}"
            )

    def _visit_function(self, node: fx.Node) -> None:
        target = node.target
        if target in (torch.cat, "cat"):
            tensors, dim = (
                node.args[0],
                node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0),
            )
            if dim not in (1, -3):
                raise UnsupportedOp(
                    f"'{node.name}' concatenates on dim {dim}; only channels (dim=1)"
                )
            self._add(node, "concat", [self._src(t) for t in tensors])
        elif target in (operator.add, torch.add, "add"):
            self._add(node, "add", [self._src(a) for a in node.args[:2]])
        elif target in (torch.relu, torch.nn.functional.relu, "relu"):
            self._fuse_act(node, self._src(node.args[0]), "relu")
        elif target in (torch.flatten, "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            self._flatten(node, [self._src(node.args[0])], start)
        else:
            raise UnsupportedOp(
                f"'{node.name}' calls {target}, which is not supported; use {SUPPORTED}"
            )

    def _conv(self, node: fx.Node, m: nn.Conv2d, src: list[str]) -> None:
        in_ch = m.in_channels
        if m.groups not in (1, in_ch) or (m.groups == in_ch and m.out_channels != in_ch):
            raise UnsupportedOp(
                f"conv '{node.target}' has groups={m.groups}; only dense (groups=1) and "
                "depthwise (groups=in=out channels) convolutions are supported"
            )
        if tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise UnsupportedOp(
                f"conv '{node.target}' uses dilation={tuple(m.dilation)}/padding={m.padding!r}; "
                "only dilation 1 with numeric zero padding is supported"
            )
        bias = m.bias.detach().clone() if m.bias is not None else torch.zeros(m.out_channels)
        attrs = {
            "stride": tuple(m.stride),
            "padding": tuple(m.padding),
            "groups": m.groups,
            "kernel": tuple(m.kernel_size),
        }
        self._add(node, "conv", src, attrs=attrs, weight=m.weight.detach().clone(), bias=bias)

    def _producer(self, node: fx.Node, src: str, what: str) -> FloatOp:
        arg = node.args[0]
        if isinstance(arg, fx.Node) and len(arg.users) != 1:
            raise UnsupportedOp(f"{what} '{node.name}' follows '{src}', which has other users too")
        return self.by_name[src]

    def _fold_bn(self, node: fx.Node, bn: nn.BatchNorm2d, src: str) -> None:
        op = self._producer(node, src, "BatchNorm")
        if op.kind != "conv" or op.act is not None:
            raise UnsupportedOp(f"BatchNorm '{node.target}' must directly follow a Conv2d")
        gamma = bn.weight.detach() if bn.affine else torch.ones_like(bn.running_mean)
        beta = bn.bias.detach() if bn.affine else torch.zeros_like(bn.running_mean)
        factor = gamma / torch.sqrt(bn.running_var + bn.eps)
        op.weight = op.weight * factor.view(-1, 1, 1, 1)
        op.bias = beta + (op.bias - bn.running_mean) * factor
        self.alias[node.name] = op.name

    def _fuse_act(self, node: fx.Node, src: str, act: str) -> None:
        op = self._producer(node, src, "activation")
        if op.kind not in ("conv", "linear", "add") or op.act is not None:
            raise UnsupportedOp(
                f"activation '{node.name}' must follow a conv, linear or add (it follows '{src}')"
            )
        op.act = act
        self.alias[node.name] = op.name

    def _pool(
        self, node: fx.Node, kind: str, src: list[str], k: Any, s: Any, p: Any, d: Any
    ) -> None:
        k, s = _pair(k), _pair(s if s is not None else k)
        p, d = _pair(p), _pair(d)
        if d != (1, 1) or (kind == "avgpool" and p != (0, 0)):
            raise UnsupportedOp(f"pool '{node.name}' uses padding/dilation; use plain pooling")
        if getattr(self.modules.get(node.target), "ceil_mode", False):
            raise UnsupportedOp(f"pool '{node.name}' uses ceil_mode=True; use ceil_mode=False")
        self._add(node, kind, src, attrs={"kernel": k, "stride": s, "padding": p})

    def _global_pool(self, node: fx.Node, size: Any, src: list[str]) -> None:
        if _pair(size) != (1, 1):
            raise UnsupportedOp(f"'{node.name}' is AdaptiveAvgPool2d({size}); only output size 1")
        h, w = self.by_name[src[0]].shape[1:]
        self._add(
            node, "avgpool", src, attrs={"kernel": (h, w), "stride": (h, w), "padding": (0, 0)}
        )

    def _flatten(self, node: fx.Node, src: list[str], start_dim: int) -> None:
        if start_dim != 1:
            raise UnsupportedOp(f"flatten '{node.name}' starts at dim {start_dim}; use start_dim=1")
        self._add(node, "flatten", src)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))
