"""The bit-width and signedness of every op's output, from the policy alone (no Brevitas).

These are the formats ``ajpq.quantize`` gives each op's quantizer and ``lower`` builds its
HwGraph from: the image is unsigned 8-bit, or, when the Normalize reading it has a nonzero
per-channel zero point (``fold_input``), ``pixel - zero_point`` signed with just enough bits
(``input_format``); a conv/linear outputs the policy's ``act_bits``,
unsigned after a ReLU/ReLU6 and signed without one; the model's output layer keeps its signed
32-bit accumulator; an add, an average pool and a requantizing concat output
``EXTRA_ACT_BITS``; pools, reorg, flatten and a plain concat pass their inputs' format on.
``lower`` checks every one against the QAT model it lowers.

With ``target="tflite"`` the formats are what TensorFlow Lite's int8 kernels can say: the
output layer requantizes to signed 8 bits (a TFLite conv has no int32 output) and every concat
requantizes (TFLite's CONCATENATION takes one scale for all its inputs).
"""

from typing import NamedTuple

from ajpq.errors import UnsupportedOp
from ajpq.quant.capture import FloatOp
from ajpq.quant.policy import Policy

INPUT_BITS = 8  # raw pixels, unsigned
PIXEL_MAX = 255
ACCUMULATOR_BITS = 32  # the output layer's, signed
EXTRA_ACT_BITS = 8  # bit-width of requantizers that are not a policy layer (add, avgpool, concat)
TARGETS = ("ajpq", "tflite")  # whose arithmetic the graph follows (see ajpq.quantize)


class ActFormat(NamedTuple):
    bits: int
    signed: bool


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise UnsupportedOp(f"target {target!r} is not one of {TARGETS}; pick one of them")
    return target


def requantizing_concats(ops: list[FloatOp], target: str = "ajpq") -> set[str]:
    """Concats that requantize to one scale: those read by anything but a depthwise conv
    (a dense layer needs one input scale; a depthwise one takes a scale per channel), and
    every concat for TFLite."""
    return {
        op.name
        for op in ops
        if op.kind == "concat"
        and (
            check_target(target) == "tflite"
            or not all(_is_depthwise(c) for c in ops if op.name in c.inputs)
        )
    }


def activation_formats(
    ops: list[FloatOp], policy: Policy, target: str = "ajpq"
) -> dict[str, ActFormat]:
    """The output format of every op (normalize included: it is its input's)."""
    output = ops[-1].name
    requantizing = requantizing_concats(ops, target)
    formats: dict[str, ActFormat] = {}
    for op in ops:
        inputs = [formats[name] for name in op.inputs]
        in_signed = any(f.signed for f in inputs)
        if op.kind == "input":
            formats[op.name] = input_format(input_zero_point(ops))
        elif op.kind in ("conv", "linear") and op.name == output and target == "tflite":
            formats[op.name] = ActFormat(EXTRA_ACT_BITS, op.act is None)
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


def input_zero_point(ops: list[FloatOp]) -> tuple[int, ...]:
    """The per-channel zero point the input's integers carry (``pixel - zero_point``): that of
    the Normalize reading the image; () when there is none or it is all zeros."""
    image = ops[0]
    readers = [op for op in ops if image.name in op.inputs]
    zero_point = next(
        (tuple(op.attrs.get("zero_point", ())) for op in readers if op.kind == "normalize"), ()
    )
    if not any(zero_point):
        return ()
    if len(readers) > 1:
        raise UnsupportedOp(
            f"the input is read by {len(readers)} ops but has a zero point; "
            "read it through the one Normalize only"
        )
    if len(zero_point) != image.shape[0] or not all(0 <= z <= PIXEL_MAX for z in zero_point):
        raise UnsupportedOp(
            f"the Normalize zero point {zero_point} must be one whole pixel value 0..255 per "
            f"input channel ({image.shape[0]})"
        )
    return tuple(int(z) for z in zero_point)


def input_format(zero_point: tuple[int, ...]) -> ActFormat:
    """The image's format: unsigned 8-bit pixels, or ``pixel - zero_point`` (range
    ``[-max(zp), 255 - min(zp)]``) signed with the fewest bits that hold it."""
    if not any(zero_point):
        return ActFormat(INPUT_BITS, False)
    lowest, highest = -max(zero_point), PIXEL_MAX - min(zero_point)
    magnitude_bits = max((-lowest - 1).bit_length(), highest.bit_length())
    return ActFormat(magnitude_bits + 1, True)


def _is_depthwise(op: FloatOp) -> bool:
    return op.kind == "conv" and op.attrs["groups"] > 1
