"""FINN backend with 8-bit activations: thresholds as standalone Thresholding_rtl layers.

Embedded in the MVAU/VVAU, 8-bit activations cost 255 thresholds per channel in LUTs and no
8-bit Skynet fitted ultra96-v2 even fully folded; standalone, the threshold memories fold
with their own PE and move to BRAM stage by stage."""

import math

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends.finn import folding
from ajpq.models.random_init import randomize_batchnorm
from tests.backend.tools import need_finn


@pytest.fixture(scope="module", autouse=True)
def _finn(request: pytest.FixtureRequest) -> None:
    need_finn(request)


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory):  # noqa: ANN001, ANN201
    from ajpq.backends import finn

    torch.manual_seed(0)
    model = randomize_batchnorm(ajpq.models.skynet(0.125, (32, 64)))
    graph = ajpq.lower(ajpq.quantize(model, ajpq.Policy.uniform(model, 8, 8)))
    return graph, finn.compile(graph, "ultra96-v2", tmp_path_factory.mktemp("int8"))


def test_int8_skynet_fits_ultra96_with_standalone_thresholds(int8_build) -> None:  # noqa: ANN001
    from finn.util.basic import getHWCustomOp
    from qonnx.core.modelwrapper import ModelWrapper

    _, artifact = int8_build
    limit = folding.budget(ajpq.boards.get("ultra96-v2"))
    assert all(artifact.cost.resources[k] <= limit[k] for k in limit)
    assert artifact.cost.resources["URAM"] == 0
    model = ModelWrapper(str(artifact.model))
    kinds = [node.op_type for node in model.graph.node]
    assert kinds.count("Thresholding_rtl") == 12  # one per 8-bit activation
    for node in model.graph.node:
        if node.op_type.startswith(("MVAU", "VVAU")):
            assert getHWCustomOp(node).get_nodeattr("noActivation") == 1
    assert artifact.cost.fps > 10_000


def test_int8_convert_to_hw_execution_equals_golden(int8_build) -> None:  # noqa: ANN001
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    graph, artifact = int8_build
    model = ModelWrapper(str(artifact.out_dir / "05_convert_to_hw.onnx"))
    assert len(model.get_nodes_by_op_type("Thresholding")) == 12
    images = np.random.default_rng(5).integers(0, 256, (8, 1, 3, 32, 64)).astype(np.uint8)
    mismatches = 0
    for image in images:
        out = execute_onnx(model, {"global_in": image.astype(np.float32)})["global_out"]
        mismatches += int(np.count_nonzero(out.astype(np.int64) != graph.run(image)))
    assert mismatches == 0


def test_threshold_memory_moves_to_bram_deepest_stage_first(int8_build) -> None:  # noqa: ANN001
    from finn.util.basic import getHWCustomOp
    from qonnx.core.modelwrapper import ModelWrapper

    _, artifact = int8_build
    part = ajpq.boards.get("ultra96-v2").part
    model = ModelWrapper(str(artifact.out_dir / "08_specialize_layers.onnx"))
    node = model.get_nodes_by_op_type("Thresholding_rtl")[-1]
    inst = getHWCustomOp(node)
    channels, width = inst.get_nodeattr("NumChannels"), inst.get_input_datatype(1).bitwidth()
    before = folding.node_resources(inst, part)
    assert before["BRAM_18K"] == 0 and before["URAM"] == 0
    assert before["LUT"] == width * sum(math.ceil(channels * 2**s / 64) for s in range(8)) + (
        8 * inst.get_input_datatype().bitwidth()  # comparators: 8 stages, PE = 1
    )
    (move,) = folding._rebindings(inst)
    assert move == {"depth_trigger_bram": channels * 128, "depth_trigger_uram": 1 << 30}
    for attr, value in move.items():
        inst.set_nodeattr(attr, value)
    after = folding.node_resources(inst, part)
    assert before["LUT"] - after["LUT"] == width * math.ceil(channels * 128 / 64)
    assert after["BRAM_18K"] > 0 and after["URAM"] == 0
    (next_move,) = folding._rebindings(inst)
    assert next_move["depth_trigger_bram"] == channels * 64
