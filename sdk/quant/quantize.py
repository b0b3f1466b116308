"""``quantize(model, policy)``: the Brevitas QAT model that realises a policy.

The float model is captured op by op (``capture``), BatchNorm folded into the convs, and
each op rebuilt with Brevitas quantizers. The result is an ordinary trainable torch module
(QAT fine-tune it with ``ajpq.train``) that ``ajpq.lower`` turns into a HwGraph.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ajpq.errors import InvalidData
from ajpq.models.layers import reorg
from ajpq.quant.activation_formats import (
    ACCUMULATOR_BITS,
    ActFormat,
    activation_formats,
    check_target,
    input_zero_point,
    requantizing_concats,
)
from ajpq.quant.bias_correction import (
    check_mode,
    correct_biases,
    corrected_layers,
    reference_means,
)
from ajpq.quant.capture import FloatOp, capture, example_input
from ajpq.quant.exact_requant import add_integers, avgpool_integers, concat_integers
from ajpq.quant.fold_input import fold_input
from ajpq.quant.masks import channel_masks
from ajpq.quant.policy import Policy, specs_of
from ajpq.quant.qat import (
    QConv2d,
    QTensor,
    act_quant,
    check_weight_scale,
    from_brevitas,
    input_integers,
    input_quant,
)

FORWARDED = ("anchors", "num_anchors", "input_size", "grid_size")


def block_key(name: str) -> str:
    """The ``QuantModel.blocks`` key of the layer named ``name`` in the float model."""
    return name.replace(".", "__")


class QuantModel(nn.Module):
    """A QAT model: ops in order, each a Brevitas-quantized block; see ``forward_quant``."""

    def __init__(
        self,
        ops: list[FloatOp],
        policy: Policy,
        source: nn.Module,
        target: str = "ajpq",
        weight_scale: str = "max",
    ) -> None:
        super().__init__()
        self.target = check_target(target)
        self.weight_scale = check_weight_scale(weight_scale)
        self.ops = [
            FloatOp(o.name, o.kind, list(o.inputs), o.shape, dict(o.attrs), act=o.act) for o in ops
        ]
        self.policy = policy
        self.masks = channel_masks(ops, policy)
        self.output_name = ops[-1].name
        self.exact = True  # eval mode: the hardware's integers (False: the fake-quant floats)
        self.blocks = nn.ModuleDict()
        self.acts = nn.ModuleDict()
        formats = activation_formats(ops, policy, target)
        requantizing = requantizing_concats(ops, target)
        for op, kept in zip(ops, self.ops, strict=True):
            self._build(op, ops, formats[op.name], op.name in requantizing)
            kept.attrs = op.attrs
        for attr in FORWARDED:
            value = getattr(source, attr, None)
            if isinstance(value, torch.Tensor):
                self.register_buffer(attr, value.detach().clone())
            elif value is not None:
                setattr(self, attr, value)

    def _build(self, op: FloatOp, ops: list[FloatOp], fmt: ActFormat, requant: bool) -> None:
        """Create the op's modules: its quantizer outputs ``fmt`` (``activation_formats``)."""
        key = block_key(op.name)
        if op.kind == "input":
            consumer = next(c for c in ops if op.name in c.inputs)
            scale = consumer.attrs["scale"] if consumer.kind == "normalize" else 1.0
            op.attrs["scale"] = scale
            zero_point = input_zero_point(ops)
            if zero_point:  # pixel - zero_point, signed (activation_formats.input_format)
                op.attrs["zero_point"] = zero_point
            self.acts[key] = input_quant(scale)
        elif op.kind in ("conv", "linear"):
            mask = torch.from_numpy(self.masks[op.name])
            bits = list(self.policy.layers[op.name].weight_bits)
            self.blocks[key] = QConv2d(
                op.weight,
                op.bias,
                bits,
                mask,
                op.attrs,
                linear=op.kind == "linear",
                weight_scale=self.weight_scale,
            )
            if fmt.bits != ACCUMULATOR_BITS:  # the head keeps its int32 accumulator
                self.acts[key] = act_quant(op.act, fmt.bits, signed=fmt.signed)
        elif op.kind in ("add", "avgpool") or requant:
            if requant:
                op.attrs["requant"] = True
            self.acts[key] = act_quant(op.act, fmt.bits, signed=fmt.signed)

    @property
    def double_rounding(self) -> bool:
        """Whether its requantizers round as TFLite does (``target="tflite"``)."""
        return self.target == "tflite"

    @property
    def fake_quant(self) -> bool:
        """Whether ops compute Brevitas' float fake-quant values (training, or eval with
        ``exact = False``: ~3x faster, equal to the integers up to rare .5 rounding ties; the
        search scores its reward so) rather than the exact integer result."""
        return self.training or not self.exact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pixels (N, C, H, W) as float 0..255 -> the model's float output (in x's dtype;
        ``forward_quant`` keeps the head's exact float64 accumulators in eval mode)."""
        return self.forward_quant(x).value.to(x.dtype)

    def forward_quant(self, x: torch.Tensor, record: dict[str, QTensor] | None = None) -> QTensor:
        values: dict[str, QTensor] = {}
        for op in self.ops:
            values[op.name] = self._run(op, [values[i] for i in op.inputs], x)
        if record is not None:
            record.update(values)
        return values[self.output_name]

    def _run(self, op: FloatOp, args: list[QTensor], x: torch.Tensor) -> QTensor:
        key = block_key(op.name)
        if op.kind == "input":
            pixels = from_brevitas(self.acts[key](x * op.attrs["scale"]))
            return input_integers(pixels, op.attrs.get("zero_point", ()))
        if op.kind == "normalize":
            return args[0]
        if op.kind in ("conv", "linear"):
            block = self.blocks[key]
            y, acc_scale = block(args[0], op.name)
            if key not in self.acts:
                shape = (1, -1, 1, 1) if op.kind == "conv" else (1, -1)
                out = QTensor(y, acc_scale.view(shape), ACCUMULATOR_BITS, True)
                if self.fake_quant:
                    return out
                # int32 accumulators outgrow float32's 24-bit mantissa: exact in float64
                exact = block.integer_output(args[0], None, op.name).double()
                scale = out.scale.double()
                return out._replace(value=exact * scale, scale=scale)
            out = from_brevitas(self.acts[key](y))
            exact = (
                None
                if self.fake_quant
                else block.integer_output(args[0], out, op.name, self.double_rounding)
            )
            return out if exact is None else out._replace(value=exact.to(y.dtype) * out.scale)
        a = args[0]
        if op.kind == "maxpool":
            k, s, p = op.attrs["kernel"], op.attrs["stride"], op.attrs["padding"]
            return a._replace(value=F.max_pool2d(a.value, k, s, p))
        if op.kind == "avgpool":
            kernel, stride = op.attrs["kernel"], op.attrs["stride"]
            out = from_brevitas(self.acts[key](F.avg_pool2d(a.value, kernel, stride)))
            if self.fake_quant:
                return out
            return _exact(out, avgpool_integers(a, out, kernel, stride, self.double_rounding))
        if op.kind == "add":
            mask = torch.from_numpy(self.masks[op.name]).float().view(1, -1, 1, 1)
            out = from_brevitas(self.acts[key]((a.value + args[1].value) * mask))
            if self.fake_quant:
                return out
            mask = self.masks[op.name]
            return _exact(out, add_integers(a, args[1], out, mask, self.double_rounding))
        if op.kind == "concat" and key in self.acts:
            out = from_brevitas(self.acts[key](torch.cat([t.value for t in args], dim=1)))
            if self.fake_quant:
                return out
            return _exact(out, concat_integers(args, out, self.double_rounding))
        return _move(op, args)


def _exact(out: QTensor, integers: torch.Tensor) -> QTensor:
    """``out`` holding the HwGraph's integers (eval mode)."""
    return out._replace(value=integers.to(out.value.dtype) * out.scale)


def _move(op: FloatOp, args: list[QTensor]) -> QTensor:
    """Data-movement ops: reorg, concat, flatten (scales move with their channels)."""
    a = args[0]
    per_channel = any(t.scale.numel() > 1 for t in args)
    if op.kind == "reorg":
        stride = op.attrs["stride"]
        scale = a.scale.repeat(1, stride * stride, 1, 1) if per_channel else a.scale
        return a._replace(value=reorg(a.value, stride), scale=scale)
    if op.kind == "flatten":
        spatial = a.value[0, 0].numel() if a.value.dim() == 4 else 1
        scale = a.scale.reshape(1, -1).repeat_interleave(spatial, 1) if per_channel else a.scale
        return a._replace(value=a.value.flatten(1), scale=scale)
    value = torch.cat([t.value for t in args], dim=1)
    scales = [t.scale.reshape(-1).expand(t.value.shape[1]) for t in args]
    scale = torch.cat(scales).view(1, -1, 1, 1)
    return QTensor(value, scale, max(t.bits for t in args), any(t.signed for t in args))


def quantize(
    model: nn.Module,
    policy: Policy,
    calibration: torch.Tensor | None = None,
    input_size: tuple[int, int] | None = None,
    input_normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    target: str = "ajpq",
    weight_scale: str = "max",
    bias_correction: str = "off",
) -> QuantModel:
    """Build the Brevitas QAT model realising ``policy`` (per-channel bits, 0 = pruned).

    ``calibration``: a batch of raw-pixel images used to initialise learned activation
    scales (ReLU without an upper bound); a seeded random batch is used when omitted.
    ``bias_correction``: ``"output"`` shifts the output layer's bias so its mean output per
    channel on ``calibration`` equals the unpruned 8-bit model's; ``"all"`` corrects every
    layer so, in order (``ajpq.quant.bias_correction``: keeps a heavily pruned model's
    fine-tune from losing what it had learnt); needs ``calibration``. Default ``"off"``.
    ``input_normalization``: ``(mean, std)`` per channel when ``model`` was trained on
    ``(pixels / 255 - mean) / std``; it is folded into the first convs (``fold_input``) so
    the QAT model, like every other, takes raw pixels.
    ``target``: whose integer arithmetic the model and its HwGraph follow: ``"ajpq"`` (ajpq's
    runtimes: single rounding, an int32 head, per-channel concats) or ``"tflite"`` (what a
    .tflite file can say and TFLM computes: double rounding, an 8-bit head, per-tensor scales,
    TFLite's add; ``ajpq.compile(..., backend="tflite")`` needs it).
    ``weight_scale``: how each output channel's weight scale is set: ``"max"`` (its largest
    |w| maps to the top level) or ``"mse"`` (the scale with the least squared rounding and
    clipping error; better at uniform 4 bits, see docs/quantization.md).
    """
    if input_normalization is not None:
        mean, std = input_normalization
        model = fold_input(model, mean, std, input_size)
    if check_mode(bias_correction) != "off" and calibration is None:
        raise InvalidData(
            "bias_correction needs calibration images (a batch of real training images, "
            'e.g. 32); pass calibration=... or bias_correction="off".'
        )
    ops = capture(model, input_size)
    policy.validated(specs_of(ops))
    qmodel = QuantModel(ops, policy, model, target, weight_scale)
    if calibration is None:
        generator = torch.Generator().manual_seed(0)
        shape = example_input(model, input_size).shape[1:]
        calibration = torch.randint(0, 256, (8, *shape), generator=generator).float()
    qmodel.train()
    with torch.no_grad():  # learned activation scales take their initial value from stats
        qmodel(calibration)
    qmodel.eval()
    layers = corrected_layers(qmodel, bias_correction)
    if layers:
        reference = quantize(
            model, Policy.uniform(model, 8, 8, input_size), calibration, input_size,
            target=target, weight_scale=weight_scale,
        )  # fmt: skip
        means = reference_means(reference, calibration)
        correct_biases(qmodel, {name: means[name] for name in layers}, calibration)
    return qmodel
