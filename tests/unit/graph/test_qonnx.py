"""Golden == qonnx execute_onnx of the exported QONNX model, exactly."""

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.unit.graph.conftest import random_images


def per_layer_policy(model, seed: int) -> Policy:
    """Per-layer-uniform bits (every channel of a layer alike), different across layers."""
    rng = np.random.default_rng(seed)
    base = Policy.uniform(model, 8, 8)
    return Policy(
        {
            name: type(lp)(
                (int(rng.choice([2, 4, 6, 8])),) * len(lp.weight_bits), int(rng.choice([4, 8]))
            )
            for name, lp in base.layers.items()
        }
    )


@pytest.mark.parametrize("which", ["uniform8", "uniform4", "per_layer"])
def test_qonnx_execution_equals_golden(tmp_path, small_skynet, which: str) -> None:
    if which == "per_layer":
        policy = per_layer_policy(small_skynet, 0)
    else:
        bits = 8 if which == "uniform8" else 4
        policy = Policy.uniform(small_skynet, bits, bits)
    graph = lower(quantize(small_skynet, policy))
    graph.to_qonnx(tmp_path / "m.onnx")
    model = ModelWrapper(str(tmp_path / "m.onnx"))
    images = random_images(5, seed=11).numpy().astype(np.uint8)
    for image in images:
        out = execute_onnx(model, {"global_in": image[None].astype(np.float32)})["global_out"]
        assert np.array_equal(out.astype(np.int64), graph.run(image[None]))
