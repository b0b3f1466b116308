"""TFLite's double-rounding requantization (issue 15's foundation): a one-conv int8
per-channel .tflite written by ajpq's flatbuffer writer runs in the real TFLM interpreter
exactly as numpy with ``requantize_double`` on 100 random inputs; single rounding does not."""

import numpy as np
import pytest

from ajpq.graph.requant import requantize, requantize_double, tflite_multipliers

pytest.importorskip("tflite_micro")
from ajpq.backends.tflite.flatbuffer import ModelBuilder  # noqa: E402

H, W, CIN, COUT = 8, 8, 3, 8
IN_ZP, OUT_ZP = -128, 5


def conv_model(rng: np.random.Generator) -> tuple[bytes, dict]:
    weights = rng.integers(-127, 128, (COUT, 3, 3, CIN)).astype(np.int8)
    bias = rng.integers(-5000, 5000, COUT).astype(np.int32)
    s_in, s_out = np.float32(0.02), np.float32(0.05)
    s_w = rng.uniform(0.001, 0.02, COUT).astype(np.float32)
    b = ModelBuilder()
    x = b.tensor("x", (1, H, W, CIN), np.int8, s_in, IN_ZP)
    w = b.tensor("w", weights.shape, np.int8, s_w, np.zeros(COUT, int), weights, axis=0)
    bias_t = b.tensor("b", (COUT,), np.int32, s_in * s_w, np.zeros(COUT, int), bias, axis=0)
    y = b.tensor("y", (1, H, W, COUT), np.int8, s_out, OUT_ZP)
    options = b.s.Conv2DOptionsT()
    options.padding, options.strideW, options.strideH = b.s.Padding.SAME, 1, 1
    options.dilationWFactor = options.dilationHFactor = 1
    b.operator("CONV_2D", [x, w, bias_t], [y], options)
    reals = np.float64(s_in) * s_w.astype(np.float64) / np.float64(s_out)
    return b.finish([x], [y]), {"weights": weights, "bias": bias, "reals": reals}


def reference(x: np.ndarray, params: dict, double: bool) -> np.ndarray:
    """int8 NHWC conv 3x3 SAME: int64 accumulators, requantized per output channel."""
    padded = np.pad(x.astype(np.int64) - IN_ZP, ((0, 0), (1, 1), (1, 1), (0, 0)))
    acc = np.zeros((x.shape[0], H, W, COUT), np.int64)
    for dy in range(3):
        for dx in range(3):
            window = padded[:, dy : dy + H, dx : dx + W, :]
            acc += np.einsum("nhwc,oc->nhwo", window, params["weights"][:, dy, dx, :])
    acc += params["bias"]
    multiplier, shift = tflite_multipliers(params["reals"])
    lo, hi = -128 - OUT_ZP, 127 - OUT_ZP
    if double:
        out = requantize_double(acc, multiplier, shift, lo, hi, channel_axis=3)
    else:
        out = requantize(acc, multiplier, shift, lo, hi, channel_axis=3)
    return (out + OUT_ZP).astype(np.int8)


def test_tflm_runs_the_conv_exactly_as_double_rounding() -> None:
    from tflite_micro import runtime

    rng = np.random.default_rng(0)
    model, params = conv_model(rng)
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=64 * 1024)
    inputs = rng.integers(-128, 128, (100, 1, H, W, CIN)).astype(np.int8)
    outputs = []
    for x in inputs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).copy())
    tflm = np.concatenate(outputs)
    double = reference(inputs[:, 0], params, double=True)
    single = reference(inputs[:, 0], params, double=False)
    assert np.array_equal(tflm, double)
    assert not np.array_equal(tflm, single)  # why the graph must carry its rounding mode


@pytest.mark.parametrize("real", [2.0**-33, 0.5, 0.75, 0.999999999, 1.0, 3.5])
def test_tflite_multipliers_recover_the_factor(real: float) -> None:
    multiplier, shift = tflite_multipliers(np.array([real]))
    if real < 2.0**-32:
        assert int(multiplier[0]) == 0
        return
    assert 1 << 30 <= int(multiplier[0]) < 1 << 31
    assert int(multiplier[0]) * 2.0 ** -int(shift[0]) == pytest.approx(real, rel=2**-30)
