"""Random golden cases for the C reference kernels, and the loop that checks them.

Each generator draws one layer (a golden ``Node`` with random int8 weights, int32 biases and
multipliers from ``quantize_multipliers``) and its random inputs. ``check`` runs the C kernel
and the golden kernel on it and demands exact equality. ``python -m
tests.backend.kernel_cases LIB`` runs every case against a library; the sanitizer test uses
that in a subprocess, where libasan can be preloaded.
"""

import ctypes
import sys
from collections.abc import Callable

import numpy as np

from ajpq.graph import golden
from ajpq.graph.hwgraph import Node
from ajpq.graph.requant import ADD_LEFT_SHIFT, quantize_multipliers, tflite_multipliers
from tests.backend import kernel_abi

Case = tuple[Node, list[np.ndarray]]
RANGES = ((0, 255), (-128, 127), (0, 15), (-8, 7), (0, 1))  # (act_min, act_max) choices


def _activations(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    low, high = RANGES[rng.integers(len(RANGES))]
    return rng.integers(low, high + 1, size=(1, *shape), dtype=np.int64)


def _requant_arrays(rng: np.random.Generator, channels: int, scale: float) -> dict:
    """Multipliers for reals spread around 1/scale, so outputs span the clamp range."""
    reals = 10.0 ** rng.uniform(-2.5, 0.5, size=channels) / scale
    if rng.random() < 0.1:
        reals[rng.integers(channels)] = 1e-25  # the shift is capped at 62
    multiplier, shift = quantize_multipliers(reals)
    return {"multiplier": multiplier, "shift": shift}


def _requant_attrs(rng: np.random.Generator, allow_raw: bool) -> dict:
    low, high = RANGES[rng.integers(len(RANGES))]
    requant = not (allow_raw and rng.random() < 0.25)
    return {"requant": requant, "act_min": low, "act_max": high}


def _spatial(rng: np.random.Generator, kernel: int, pad: int) -> int:
    return int(rng.integers(max(1, kernel - 2 * pad), 12))


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _conv_case(rng: np.random.Generator, depthwise: bool) -> Case:
    k = (int(rng.choice([1, 3, 5])),) * 2
    if rng.random() < 0.15:
        k = (int(rng.choice([1, 3, 5])), int(rng.choice([1, 3, 5])))
    stride = (int(rng.integers(1, 3)),) * 2
    pad = tuple(int(min(rng.integers(0, 3), kk // 2 + 1)) for kk in k)
    h, w = _spatial(rng, k[0], pad[0]), _spatial(rng, k[1], pad[1])
    cin = 3 if rng.random() < 0.3 else int(rng.integers(1, 9))
    cout = cin if depthwise else int(rng.integers(1, 9))
    x = _activations(rng, (cin, h, w))
    arrays: dict[str, np.ndarray] = {}
    if rng.random() < 0.4:  # a pruned producer: gather cin channels out of more
        x = _activations(rng, (cin + int(rng.integers(0, 4)), h, w))
        arrays["in_index"] = rng.choice(x.shape[1], size=cin, replace=False).astype(np.int32)
    arrays["weight"] = rng.integers(-128, 128, size=(cout, 1 if depthwise else cin, *k))
    arrays["weight"] = arrays["weight"].astype(np.int8)
    arrays["bias"] = rng.integers(-(2**20), 2**20, size=cout).astype(np.int32)
    attrs = _requant_attrs(rng, allow_raw=True)
    scale = 128.0 * 128.0 * np.prod(k) * (1 if depthwise else cin)
    arrays.update(_requant_arrays(rng, cout, scale) if attrs["requant"] else {})
    attrs.update(stride=stride, padding=pad, groups=cout if depthwise else 1)
    shape = (cout, _out(h, k[0], stride[0], pad[0]), _out(w, k[1], stride[1], pad[1]))
    return Node("conv", "conv", ["x"], shape, 8, True, attrs, arrays), [x]


def conv_case(rng: np.random.Generator) -> Case:
    return _conv_case(rng, depthwise=False)


def dwconv_case(rng: np.random.Generator) -> Case:
    return _conv_case(rng, depthwise=True)


def _wide_conv_case(rng: np.random.Generator, depthwise: bool) -> Case:
    """Windows whose sums pass int32: int16 activations at -32768 against weights of -120 ..
    -128, over > 511 products (a 1x1 or 3x3 conv on 520+ or 60+ channels; a 23x23 or 25x25
    depthwise kernel), requantized so the exact int64 sum decides every output."""
    k = int(rng.choice([23, 25])) if depthwise else int(rng.choice([1, 3]))
    cin = (
        int(rng.integers(1, 4))
        if depthwise
        else int(rng.integers(*((520, 700) if k == 1 else (60, 80))))
    )
    cout = cin if depthwise else int(rng.integers(1, 4))
    pad, size = k // 2, k + int(rng.integers(0, 3))
    x = np.full((1, cin, size, size), -32768, dtype=np.int64)
    weight = rng.integers(-128, -119, size=(cout, 1 if depthwise else cin, k, k)).astype(np.int8)
    arrays = {"weight": weight, "bias": rng.integers(-(2**20), 2**20, size=cout).astype(np.int32)}
    arrays.update(_requant_arrays(rng, cout, 32768.0 * 128.0 * k * k * (1 if depthwise else cin)))
    attrs = {"requant": True, "act_min": -32768, "act_max": 32767, "stride": (1, 1),
             "padding": (pad, pad), "groups": cout if depthwise else 1}  # fmt: skip
    return Node("conv", "conv", ["x"], (cout, size, size), 16, True, attrs, arrays), [x]


def wide_linear_case(rng: np.random.Generator) -> Case:
    """A dot product past int32 (600..1200 products of -32768 x -120..-128), requantized."""
    features, out = int(rng.integers(600, 1200)), int(rng.integers(1, 4))
    arrays = {
        "weight": rng.integers(-128, -119, size=(out, features)).astype(np.int8),
        "bias": rng.integers(-(2**20), 2**20, size=out).astype(np.int32),
        **_requant_arrays(rng, out, 32768.0 * 128.0 * features),
    }
    attrs = {"requant": True, "act_min": -32768, "act_max": 32767}
    node = Node("fc", "linear", ["x"], (out,), 16, True, attrs, arrays)
    return node, [np.full((1, features), -32768, dtype=np.int64)]


def maxpool_case(rng: np.random.Generator) -> Case:
    k, stride = int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 3))
    pad = int(rng.integers(0, k // 2 + 1))
    c, h, w = int(rng.integers(1, 9)), _spatial(rng, k, pad), _spatial(rng, k, pad)
    attrs = {"kernel": (k, k), "stride": (stride, stride), "padding": (pad, pad)}
    shape = (c, _out(h, k, stride, pad), _out(w, k, stride, pad))
    return Node("pool", "maxpool", ["x"], shape, 8, True, attrs), [_activations(rng, (c, h, w))]


def avgpool_case(rng: np.random.Generator) -> Case:
    k, stride = int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 3))
    c, h, w = int(rng.integers(1, 9)), _spatial(rng, k, 0), _spatial(rng, k, 0)
    attrs = _requant_attrs(rng, allow_raw=True)
    attrs.update(kernel=(k, k), stride=(stride, stride), padding=(0, 0))
    arrays = _requant_arrays(rng, c, 128.0 * k * k) if attrs["requant"] else {}
    shape = (c, _out(h, k, stride, 0), _out(w, k, stride, 0))
    node = Node("pool", "avgpool", ["x"], shape, 8, True, attrs, arrays)
    return node, [_activations(rng, (c, h, w))]


def add_case(rng: np.random.Generator) -> Case:
    c = int(rng.integers(1, 9))
    spatial = () if rng.random() < 0.2 else (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    a = _activations(rng, (c + int(rng.integers(0, 3)), *spatial))
    b = _activations(rng, (c + int(rng.integers(0, 3)), *spatial))
    real_a, real_b = 10.0 ** rng.uniform(-2, 0, size=c), 10.0 ** rng.uniform(-2, 0, size=c)
    multiplier_a, shift = quantize_multipliers(real_a)
    multiplier_b = np.minimum(np.rint(real_b / real_a * multiplier_a), 2**31 - 1)
    arrays = {
        "index_a": rng.choice(a.shape[1], size=c, replace=False).astype(np.int32),
        "index_b": rng.choice(b.shape[1], size=c, replace=False).astype(np.int32),
        "multiplier_a": multiplier_a,
        "multiplier_b": multiplier_b.astype(np.int32),
        "shift": shift,
    }
    attrs = _requant_attrs(rng, allow_raw=False)
    return Node("add", "add", ["a", "b"], (c, *spatial), 8, True, attrs, arrays), [a, b]


def concat_case(rng: np.random.Generator) -> Case:
    h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    inputs = [_activations(rng, (int(rng.integers(1, 6)), h, w)) for _ in range(rng.integers(1, 5))]
    c = sum(x.shape[1] for x in inputs)
    attrs = _requant_attrs(rng, allow_raw=True)
    arrays = _requant_arrays(rng, c, 128.0) if attrs["requant"] else {}
    names = [f"x{i}" for i in range(len(inputs))]
    return Node("cat", "concat", names, (c, h, w), 8, True, attrs, arrays), inputs


def reorg_case(rng: np.random.Generator) -> Case:
    s, c = int(rng.choice([2, 2, 3])), int(rng.integers(1, 9))
    h, w = s * int(rng.integers(1, 6)), s * int(rng.integers(1, 6))
    shape = (s * s * c, h // s, w // s)
    node = Node("reorg", "reorg", ["x"], shape, 8, True, {"stride": s})
    return node, [_activations(rng, (c, h, w))]


def linear_case(rng: np.random.Generator) -> Case:
    features, out = int(rng.integers(1, 300)), int(rng.integers(1, 20))
    arrays = {
        "weight": rng.integers(-128, 128, size=(out, features)).astype(np.int8),
        "bias": rng.integers(-(2**20), 2**20, size=out).astype(np.int32),
    }
    attrs = _requant_attrs(rng, allow_raw=True)
    arrays.update(_requant_arrays(rng, out, 128.0 * 128.0 * features) if attrs["requant"] else {})
    node = Node("fc", "linear", ["x"], (out,), 8, True, attrs, arrays)
    return node, [_activations(rng, (features,))]


def in_double_rounding(case: Case, rng: np.random.Generator) -> Case:
    """The case in TFLite's double rounding (``rounding: double``), its multipliers from
    ``tflite_multipliers``: each channel keeps its factor or (a third of them) gets one near 1,
    so shifts run from below 31 (the accumulator shifted left) to 62."""
    node, inputs = case
    if node.attrs.get("requant", True) and "multiplier" in node.arrays:
        arrays = node.arrays
        reals = np.ldexp(arrays["multiplier"].astype(np.float64), -arrays["shift"].astype(int))
        near_one = rng.random(reals.size) < 1 / 3
        reals[near_one] = 10.0 ** rng.uniform(-1.5, 1.5, size=int(near_one.sum()))
        if "weight" in arrays and rng.random() < 0.5:
            # small accumulators and powers of two: the ties, where the roundings part
            arrays["weight"] = (arrays["weight"] >> 5).astype(np.int8)
            arrays["bias"] = (arrays["bias"] >> 14).astype(np.int32)
            exact = rng.random(reals.size) < 0.5
            reals[exact] = 2.0 ** -rng.integers(0, 6, size=int(exact.sum())).astype(float)
        arrays["multiplier"], arrays["shift"] = tflite_multipliers(reals)
        node.attrs["rounding"] = "double"
    return node, inputs


def _double(make: Callable[[np.random.Generator], Case]) -> Callable[[np.random.Generator], Case]:
    def make_double(rng: np.random.Generator) -> Case:
        return in_double_rounding(make(rng), rng)

    return make_double


def add_double_case(rng: np.random.Generator) -> Case:
    """TFLite's int8 ADD (golden's _add_double) with per-channel parameters computed as
    ``tflite_add_multipliers`` does for random scales (half of them powers of two, where the
    roundings tie), the left shift mostly TFLite's 20."""
    node, inputs = add_case(rng)
    left_shift = int(rng.choice([ADD_LEFT_SHIFT, ADD_LEFT_SHIFT, 0, 8]))
    if rng.random() < 0.5:
        scales = 2.0 ** rng.integers(-10, -3, size=(node.channels, 3)).astype(float)
    else:
        scales = 10.0 ** rng.uniform(-3, -1, size=(node.channels, 3))
    twice_max = 2.0 * scales[:, :2].max(axis=1)
    steps = {
        "a": scales[:, 0] / twice_max,
        "b": scales[:, 1] / twice_max,
        "": twice_max / (2.0**left_shift * scales[:, 2]),
    }
    for suffix, reals in steps.items():
        multiplier, shift = tflite_multipliers(reals)
        name = f"_{suffix}" if suffix else ""
        node.arrays[f"multiplier{name}"], node.arrays[f"shift{name}"] = multiplier, shift
    node.attrs.update(rounding="double", left_shift=left_shift)
    return node, inputs


Runner = Callable[..., np.ndarray]
CASES: dict[str, tuple[Callable[[np.random.Generator], Case], Runner]] = {
    "conv": (conv_case, kernel_abi.run_conv),
    "dwconv": (dwconv_case, kernel_abi.run_conv),
    "maxpool": (maxpool_case, kernel_abi.run_pool),
    "avgpool": (avgpool_case, kernel_abi.run_pool),
    "add": (add_case, kernel_abi.run_add),
    "concat": (concat_case, kernel_abi.run_concat),
    "reorg": (reorg_case, kernel_abi.run_reorg),
    "linear": (linear_case, kernel_abi.run_linear),
    # TFLite's double rounding (graphs quantized with target="tflite"); appended, so the
    # single-rounding cases above keep their seeds
    "conv_double": (_double(conv_case), kernel_abi.run_conv),
    "dwconv_double": (_double(dwconv_case), kernel_abi.run_conv),
    "avgpool_double": (_double(avgpool_case), kernel_abi.run_pool),
    "add_double": (add_double_case, kernel_abi.run_add),
    "concat_double": (_double(concat_case), kernel_abi.run_concat),
    "linear_double": (_double(linear_case), kernel_abi.run_linear),
    # sums past int32, which the references' int32 partial sums must keep exact
    "conv_wide": (lambda rng: _wide_conv_case(rng, depthwise=False), kernel_abi.run_conv),
    "dwconv_wide": (lambda rng: _wide_conv_case(rng, depthwise=True), kernel_abi.run_conv),
    "linear_wide": (wide_linear_case, kernel_abi.run_linear),
}


def check(lib: ctypes.CDLL, kernel: str, cases: int, seed: int = 0) -> int:
    """Runs `cases` random cases of one kernel; raises AssertionError on the first mismatch."""
    make, run = CASES[kernel]
    rng = np.random.default_rng([seed, list(CASES).index(kernel)])
    for i in range(cases):
        node, inputs = make(rng)
        expected = golden.KERNELS[node.op](node, inputs)
        actual = run(lib, node, *inputs)
        if node.op == "add" and i % 2:  # NULL gathers are the identity
            node.arrays["index_a"] = np.arange(node.channels, dtype=np.int32)
            node.arrays["index_b"] = np.arange(node.channels, dtype=np.int32)
            expected = golden.KERNELS[node.op](node, inputs)
            actual = kernel_abi.run_add(lib, node, *inputs, gather=False)
        if actual.shape != expected.shape or not np.array_equal(actual, expected):
            bad = int(np.sum(actual != expected)) if actual.shape == expected.shape else -1
            raise AssertionError(
                f"{kernel} case {i} (seed {seed}): C differs from golden in {bad} elements; "
                f"attrs={node.attrs}, input shapes={[x.shape for x in inputs]}"
            )
    return cases


def main(argv: list[str]) -> int:
    lib, cases = kernel_abi.load(argv[0]), int(argv[1])
    for kernel in CASES:
        print(kernel, check(lib, kernel, cases), "cases equal golden", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
