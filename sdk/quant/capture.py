"""Capture a float torch CNN as a flat list of ops (torch.fx), with BatchNorm folded.

This is the one place that turns torch modules into ops; ``quantize`` builds the QAT model
from the captured ops and ``Policy`` lists the quantizable layers from them. Which of the
many ways to write a layer (``F.relu``, ``x.mean((2, 3))``, ``x.view(x.size(0), -1)``...)
is which op is decided in ``capture_forms``.
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ajpq.errors import UnsupportedOp
from ajpq.models.layers import Normalize, Reorg
from ajpq.quant.capture_forms import Form, Helper, classify, label

SUPPORTED = (
    "Conv2d (dense or depthwise), BatchNorm2d after a conv (BatchNorm1d after a Linear), "
    "ReLU/ReLU6/Hardtanh(0, 6)/clamp(0, 6), MaxPool2d, AvgPool2d, global average pooling "
    "(AdaptiveAvgPool2d(1) or x.mean((2, 3))), Linear, flatten (nn.Flatten, x.flatten(1), "
    "x.view(x.size(0), -1)), torch.cat on channels, residual add, Identity, Dropout, Reorg, "
    "Normalize or x / 255 on the input"
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


def input_channels(model: nn.Module) -> int:
    """The model's ``input_channels`` attribute, else the in_channels of its first Conv2d."""
    channels = getattr(model, "input_channels", None)
    if channels is not None:
        return int(channels)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    raise UnsupportedOp(
        f"cannot tell how many channels {type(model).__name__} takes (it has no Conv2d); give "
        "the model an input_channels attribute"
    )


def example_input(model: nn.Module, input_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A zero image batch (1, C, H, W): C from ``input_channels``, (H, W) from the argument
    or ``model.input_size``."""
    size = input_size or getattr(model, "input_size", None)
    if size is None:
        raise UnsupportedOp(
            "cannot infer the model's input size; pass input_size=(H, W) or give the model an "
            "input_size attribute"
        )
    return torch.zeros(1, input_channels(model), int(size[0]), int(size[1]))


def capture(model: nn.Module, input_size: tuple[int, int] | None = None) -> list[FloatOp]:
    """Trace ``model`` and return its ops in execution order, BN folded, activations fused."""
    try:
        graph_module = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as exc:  # fx raises many types for untraceable Python
        raise UnsupportedOp(
            f"torch.fx cannot trace {type(model).__name__} ({exc}); ajpq needs a model without "
            "data-dependent control flow"
        ) from exc
    example = example_input(model, input_size).repeat(2, 1, 1, 1)  # a batch that squeeze keeps
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(graph_module).propagate(example)
    except (RuntimeError, ValueError, TypeError) as exc:
        cause: BaseException = exc
        while cause.__cause__ is not None:  # ShapeProp wraps the layer's own error
            cause = cause.__cause__
        reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise UnsupportedOp(
            f"{type(model).__name__} fails on an input of shape {tuple(example.shape)} "
            f"({reason}); pass its input_size=(H, W), and give the model an input_channels "
            "attribute if its first Conv2d is not the one reading the image"
        ) from exc
    finally:
        model.train(was_training)
    return _Builder(graph_module).build()


class _Builder:
    def __init__(self, graph_module: fx.GraphModule) -> None:
        self.gm = graph_module
        self.modules = dict(graph_module.named_modules())
        self.ops: list[FloatOp] = []
        self.alias: dict[str, str] = {}  # fx node name -> op name producing its value
        self.by_name: dict[str, FloatOp] = {}
        self.helpers: dict[str, Helper] = {}  # fx nodes holding sizes, not tensors
        self.passes: dict[str, fx.Node] = {}  # identity node name -> the node it passes on
        self.node_of: dict[str, fx.Node] = {}  # op name -> the fx node that made it

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
        if isinstance(arg, fx.Node) and arg.name in self.helpers:
            raise UnsupportedOp(
                f"'{arg.name}' is a tensor size used as a value; sizes are supported only in a "
                "flatten, x.view(x.size(0), -1)"
            )
        if not isinstance(arg, fx.Node):
            raise UnsupportedOp(f"unsupported non-tensor argument {arg!r}; supported: {SUPPORTED}")
        return self.alias[arg.name]

    def _in_shape(self, node: fx.Node) -> tuple[int, ...] | None:
        arg = node.args[0] if node.args else None
        if isinstance(arg, fx.Node) and arg.name in self.alias:
            return self.by_name[self.alias[arg.name]].shape
        return None

    def _shape(self, node: fx.Node) -> tuple[int, ...]:
        return tuple(int(d) for d in node.meta["tensor_meta"].shape[1:])

    def _append(
        self, name: str, kind: str, inputs: list[str], shape: tuple[int, ...], **kw: Any
    ) -> FloatOp:
        base, index = name, 0
        while name in self.by_name:  # a module called twice gives two ops
            index += 1
            name = f"{base}_{index}"
        op = FloatOp(name, kind, inputs, shape, **kw)
        self.ops.append(op)
        self.by_name[op.name] = op
        return op

    def _add(self, node: fx.Node, kind: str, inputs: list[str], **kw: Any) -> FloatOp:
        op = self._append(label(node), kind, inputs, self._shape(node), **kw)
        self.alias[node.name] = op.name
        self.node_of[op.name] = node
        return op

    def _visit(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            self._add(node, "input", [])
        elif node.op == "call_module":
            self._visit_module(node, self.modules[node.target])
        elif node.op in ("call_function", "call_method"):
            self._visit_form(node, None)
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
            self._linear(node, m, src)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            self._fold_bn(node, m, src[0])
        elif isinstance(m, nn.MaxPool2d):
            self._pool(node, "maxpool", src, m.kernel_size, m.stride, m.padding, m.dilation)
            self._check_ceil_mode(node, m.ceil_mode)
        elif isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise UnsupportedOp(
                    f"pool '{node.target}' sets divisor_override; use a plain average pool"
                )
            self._pool(node, "avgpool", src, m.kernel_size, m.stride, m.padding, 1)
            self._check_ceil_mode(node, m.ceil_mode)
        elif isinstance(m, Reorg):
            self._add(node, "reorg", src, attrs={"stride": m.stride})
        else:
            self._visit_form(node, m)

    def _visit_form(self, node: fx.Node, module: nn.Module | None) -> None:
        """The many-ways-to-write-it layers: see ``capture_forms.classify``."""
        form = classify(node, module, self.helpers, self._in_shape(node))
        if form is None:
            self._refuse(node, module)
        elif form.kind == "helper":
            self.helpers[node.name] = form.params["value"]
        elif form.kind == "alias":
            self.alias[node.name] = self._src(node.args[0])
            self.passes[node.name] = node.args[0]
        elif form.kind == "act":
            self._fuse_act(node, self._src(node.args[0]), form.params["act"])
        elif form.kind == "global_pool":
            self._global_pool(node, self._src(node.args[0]), form.params["keepdim"])
        elif form.kind == "flatten":
            self._add(node, "flatten", [self._src(node.args[0])])
        elif form.kind == "add":
            self._add(node, "add", [self._src(a) for a in node.args[:2]])
        elif form.kind == "concat":
            self._add(node, "concat", [self._src(t) for t in form.params["tensors"]])
        elif form.kind == "scale":
            self._input_scale(node, self._src(form.params["tensor"]), form.params["scale"])
        else:
            self._functional_pool(node, form)

    def _input_scale(self, node: fx.Node, src: str, scale: float) -> None:
        """``x / 255`` on the input is Normalize(1/255); anywhere else a constant scale has no
        integer layer to live in."""
        if self.by_name[src].kind != "input":
            raise UnsupportedOp(
                f"'{node.name}' scales '{src}' by a constant; ajpq takes a constant scale only "
                "on the input (x / 255): fold it into the layer before it"
            )
        self._add(node, "normalize", [src], attrs={"scale": scale, "zero_point": ()})

    def _refuse(self, node: fx.Node, module: nn.Module | None) -> None:
        if module is not None:
            raise UnsupportedOp(
                f"module '{node.target}' ({type(module).__name__}) is not supported; "
                f"supported: {SUPPORTED}"
            )
        what = f"x.{node.target}()" if node.op == "call_method" else _function_name(node.target)
        raise UnsupportedOp(
            f"'{node.name}' calls {what}, which is not supported; rewrite it with the supported "
            f"layers ({SUPPORTED}) or move it out of the model"
        )

    def _functional_pool(self, node: fx.Node, form: Form) -> None:
        p = form.params
        src = [self._src(node.args[0])]
        self._pool(node, p["kind"], src, p["kernel"], p["stride"], p["padding"], p["dilation"])
        self._check_ceil_mode(node, p["ceil_mode"])

    def _conv(self, node: fx.Node, m: nn.Conv2d, src: list[str]) -> None:
        in_ch = m.in_channels
        if m.groups != 1 and (m.groups != in_ch or m.out_channels != in_ch):
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

    def _linear(self, node: fx.Node, m: nn.Linear, src: list[str]) -> None:
        shape = self.by_name[src[0]].shape
        if len(shape) != 1:
            raise UnsupportedOp(
                f"Linear '{node.target}' reads a tensor of shape {shape}; flatten it first "
                "(nn.Flatten() or x.flatten(1))"
            )
        w = m.weight.detach().clone()
        b = m.bias.detach().clone() if m.bias is not None else torch.zeros(m.out_features)
        self._add(node, "linear", src, weight=w, bias=b)

    def _producer(self, node: fx.Node, src: str, what: str) -> FloatOp:
        """The op ``node`` fuses into; every node between them must have no other user."""
        arg = node.args[0]
        while isinstance(arg, fx.Node):
            if len(arg.users) != 1:
                raise UnsupportedOp(
                    f"{what} '{label(node)}' follows '{src}', which has other users too"
                )
            arg = self.passes.get(arg.name)
        return self.by_name[src]

    def _fold_bn(self, node: fx.Node, bn: nn.BatchNorm2d | nn.BatchNorm1d, src: str) -> None:
        op = self._producer(node, src, "BatchNorm")
        after = "conv" if isinstance(bn, nn.BatchNorm2d) else "linear"
        if op.kind != after or op.act is not None:
            raise UnsupportedOp(
                f"{type(bn).__name__} '{node.target}' must directly follow a "
                f"{'Conv2d' if after == 'conv' else 'Linear'}"
            )
        gamma = bn.weight.detach() if bn.affine else torch.ones_like(bn.running_mean)
        beta = bn.bias.detach() if bn.affine else torch.zeros_like(bn.running_mean)
        factor = gamma / torch.sqrt(bn.running_var + bn.eps)
        op.weight = op.weight * factor.view(-1, *([1] * (op.weight.dim() - 1)))
        op.bias = beta + (op.bias - bn.running_mean) * factor
        self.alias[node.name] = op.name

    def _fuse_act(self, node: fx.Node, src: str, act: str) -> None:
        """Fuse into the conv, linear or add before; relu(maxpool(conv)) is maxpool(relu(conv))
        (both are monotone), so an activation after a max pool fuses into the pool's input."""
        op = target = self._producer(node, src, "activation")
        if op.kind == "maxpool":
            target = self._producer(self.node_of[op.name], op.inputs[0], "max pool")
        if target.kind not in ("conv", "linear", "add") or target.act is not None:
            raise UnsupportedOp(
                f"activation '{label(node)}' must follow a conv, linear or add (it follows '{src}')"
            )
        target.act = act
        self.alias[node.name] = op.name

    def _pool(
        self, node: fx.Node, kind: str, src: list[str], k: Any, s: Any, p: Any, d: Any
    ) -> None:
        k, s = _pair(k), _pair(s if s is not None and s != [] else k)
        p, d = _pair(p), _pair(d)
        if d != (1, 1) or (kind == "avgpool" and p != (0, 0)):
            raise UnsupportedOp(f"pool '{label(node)}' uses padding/dilation; use plain pooling")
        self._add(node, kind, src, attrs={"kernel": k, "stride": s, "padding": p})

    def _check_ceil_mode(self, node: fx.Node, ceil_mode: bool) -> None:
        if ceil_mode:
            raise UnsupportedOp(f"pool '{label(node)}' uses ceil_mode=True; use ceil_mode=False")

    def _global_pool(self, node: fx.Node, src: str, keepdim: bool) -> None:
        """Average over the whole map; without keepdim (x.mean((2, 3))) then flatten."""
        channels, h, w = self.by_name[src].shape
        attrs = {"kernel": (h, w), "stride": (h, w), "padding": (0, 0)}
        if keepdim:
            self._add(node, "avgpool", [src], attrs=attrs)
            return
        pool = self._append(label(node), "avgpool", [src], (channels, 1, 1), attrs=attrs)
        flat = self._append(f"{pool.name}_flatten", "flatten", [pool.name], (channels,))
        self.alias[node.name] = flat.name


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _function_name(target: Any) -> str:
    name = getattr(target, "__name__", str(target))
    module = (getattr(target, "__module__", None) or "torch").lstrip("_")
    return f"{module}.{name}" if module != "builtins" else name
