"""The bit-width and signedness of every op's output, from the policy alone (no Brevitas).

These are the formats ``ajpq.quantize`` gives each op's quantizer and ``lower`` builds its
HwGraph from: the image is unsigned 8-bit; a conv/linear outputs the policy's ``act_bits``,
unsigned after a ReLU/ReLU6 and signed without one; the model's output layer keeps its signed
32-bit accumulator; an add, an average pool and a requantizing concat output
``EXTRA_ACT_BITS``; pools, reorg, flatten and a plain concat pass their inputs' format on.
``lower`` checks every one against the QAT model it lowers.
"""

from typing import NamedTuple

from ajpq.quant.capture import FloatOp
from ajpq.quant.policy import Policy

INPUT_BITS = 8  # raw pixels, unsigned
ACCUMULATOR_BITS = 32  # the output layer's, signed
EXTRA_ACT_BITS = 8  # bit-width of requantizers that are not a policy layer (add, avgpool, concat)


class ActFormat(NamedTuple):
    bits: int
    signed: bool


def requantizing_concats(ops: list[FloatOp]) -> set[str]:
    """Concats that requantize to one scale: those read by anything but a depthwise conv
    (a dense layer needs one input scale; a depthwise one takes a scale per channel)."""
    return {
        op.name
        for op in ops
        if op.kind == "concat" and not all(_is_depthwise(c) for c in ops if op.name in c.inputs)
    }


def activation_formats(ops: list[FloatOp], policy: Policy) -> dict[str, ActFormat]:
    """The output format of every op (normalize included: it is its input's)."""
    output = ops[-1].name
    requantizing = requantizing_concats(ops)
    formats: dict[str, ActFormat] = {}
    for op in ops:
        inputs = [formats[name] for name in op.inputs]
        in_signed = any(f.signed for f in inputs)
        if op.kind == "input":
            formats[op.name] = ActFormat(INPUT_BITS, False)
        elif op.kind in ("conv", "linear") and op.name == output:
            formats[op.name] = ActFormat(ACCUMULATOR_BITS, True)
        elif op.kind in ("conv", "linear"):
            formats[op.name] = ActFormat(policy.layers[op.name].act_bits, op.act is None)
        elif op.kind in ("add", "avgpool"):
            signed = op.act is None and (in_signed or op.kind == "add")
            formats[op.name] = ActFormat(EXTRA_ACT_BITS, signed)
        elif op.kind == "concat" and op.name in requantizing:
            formats[op.name] = ActFormat(EXTRA_ACT_BITS, in_signed)
        elif op.kind == "concat":
            formats[op.name] = ActFormat(max(f.bits for f in inputs), in_signed)
        else:  # normalize, maxpool, reorg, flatten
            formats[op.name] = inputs[0]
    return formats


def _is_depthwise(op: FloatOp) -> bool:
    return op.kind == "conv" and op.attrs["groups"] > 1
