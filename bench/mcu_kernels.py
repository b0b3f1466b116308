"""Instructions per MAC of the conv kernels on the emulated Cortex-M4 (QEMU -icount shift=0).

Builds one firmware (tests/backend/kernel_firmware.py) holding five layers with random int8
weights and 8-bit activations: pointwise 64->64, conv3x3 3->16 and 16->16, depthwise 3x3 on
64 channels, all at 16x32, and a 512->64 linear layer. It runs each layer once through the
reference kernel and once through the m4 kernel, timing each call with SysTick
(instructions under -icount), checks both outputs against the golden executor, and prints
JSON:
``{"layers": {name: {"macs", "ref_instructions_per_mac", "m4_instructions_per_mac",
"speedup", "exact"}}, ...}``. MACs count every tap of every window, padding included.

    .venv/bin/python bench/mcu_kernels.py [--build-dir DIR]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ajpq.graph import golden  # noqa: E402
from ajpq.graph.hwgraph import Node  # noqa: E402
from ajpq.graph.requant import quantize_multipliers  # noqa: E402
from tests.backend import kernel_firmware  # noqa: E402
from tests.backend.kernel_cases import Case  # noqa: E402

HEIGHT, WIDTH = 16, 32
LAYERS = {  # name: (in_channels, out_channels, kernel, depthwise)
    "pointwise_64x64_16x32": (64, 64, 1, False),
    "conv3x3_3x16_16x32": (3, 16, 3, False),
    "conv3x3_16x16_16x32": (16, 16, 3, False),
    "depthwise3x3_64_16x32": (64, 64, 3, True),
}
LINEAR = {"linear_512x64": (512, 64)}  # name: (in_features, out_features)


def layer(rng: np.random.Generator, cin: int, cout: int, k: int, depthwise: bool) -> Case:
    pad = k // 2
    weight = rng.integers(-128, 128, size=(cout, 1 if depthwise else cin, k, k)).astype(np.int8)
    taps = k * k * (1 if depthwise else cin)
    multiplier, shift = quantize_multipliers(10.0 ** rng.uniform(-1, 0, cout) / (128 * 64 * taps))
    arrays = {
        "weight": weight,
        "bias": rng.integers(-(2**12), 2**12, size=cout).astype(np.int32),
        "multiplier": multiplier,
        "shift": shift,
    }
    attrs = {
        "requant": True,
        "act_min": 0,
        "act_max": 255,
        "stride": (1, 1),
        "padding": (pad, pad),
        "groups": cout if depthwise else 1,
    }
    node = Node("conv", "conv", ["x"], (cout, HEIGHT, WIDTH), 8, True, attrs, arrays)
    return node, [rng.integers(0, 256, size=(1, cin, HEIGHT, WIDTH), dtype=np.int64)]


def linear_layer(rng: np.random.Generator, features: int, out: int) -> Case:
    multiplier, shift = quantize_multipliers(
        10.0 ** rng.uniform(-1, 0, out) / (128 * 64 * features)
    )
    arrays = {
        "weight": rng.integers(-128, 128, size=(out, features)).astype(np.int8),
        "bias": rng.integers(-(2**12), 2**12, size=out).astype(np.int32),
        "multiplier": multiplier,
        "shift": shift,
    }
    attrs = {"requant": True, "act_min": 0, "act_max": 255}
    node = Node("fc", "linear", ["x"], (out,), 8, True, attrs, arrays)
    return node, [rng.integers(0, 256, size=(1, features), dtype=np.int64)]


def macs(case: Case) -> int:
    node = case[0]
    return int(np.prod(node.shape)) * int(np.prod(node.arrays["weight"].shape[1:]))


def measure(build_dir: Path) -> dict:
    rng = np.random.default_rng(0)
    cases = [layer(rng, *spec) for spec in LAYERS.values()]
    cases += [linear_layer(rng, *spec) for spec in LINEAR.values()]
    runs = kernel_firmware.run(kernel_firmware.build(cases, build_dir), timeout_s=300)
    layers = {}
    for i, (name, case) in enumerate(zip([*LAYERS, *LINEAR], cases, strict=True)):
        expected = golden.KERNELS[case[0].op](*case).reshape(-1).tolist()
        ref, m4 = runs[(i, "ref")], runs[(i, "m4")]
        count = macs(case)
        layers[name] = {
            "macs": count,
            "ref_instructions_per_mac": round(ref.units / count, 3),
            "m4_instructions_per_mac": round(m4.units / count, 3),
            "speedup": round(ref.units / m4.units, 2),
            "exact": ref.outputs == expected and m4.outputs == expected,
        }
    return {
        "machine": "qemu-system-arm mps2-an386 (Cortex-M4), -icount shift=0",
        "unit": "instructions per MAC (SysTick under -icount; not real cycles)",
        "layers": layers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.build_dir is not None:
        result = measure(args.build_dir)
    else:
        with tempfile.TemporaryDirectory() as folder:
            result = measure(Path(folder))
    print(json.dumps(result, indent=2))
    return 0 if all(entry["exact"] for entry in result["layers"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
