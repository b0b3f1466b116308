"""FINN backend (finn-plus, no Vivado): bit-exact python execution, HW mapping, budget."""

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends.finn import shim
from ajpq.models.random_init import randomize_batchnorm


@pytest.fixture(scope="module", autouse=True)
def _finn(request: pytest.FixtureRequest) -> None:
    if not shim.available():
        if request.config.getoption("--strict-hardware"):
            pytest.fail(shim.MISSING)
        pytest.skip(shim.MISSING)


@pytest.fixture(scope="module")
def graph() -> ajpq.HwGraph:
    torch.manual_seed(0)
    model = randomize_batchnorm(ajpq.models.skynet(0.25, (64, 128)))
    return ajpq.lower(ajpq.quantize(model, ajpq.Policy.uniform(model, 4, 4)))


@pytest.fixture(scope="module")
def artifact(graph, tmp_path_factory):  # noqa: ANN001, ANN201
    from ajpq.backends import finn

    return finn.compile(graph, "ultra96-v2", tmp_path_factory.mktemp("finn"))


def test_convert_to_hw_execution_equals_golden(graph, artifact) -> None:  # noqa: ANN001
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(artifact.out_dir / "05_convert_to_hw.onnx"))
    images = np.random.default_rng(3).integers(0, 256, (20, 1, 3, 64, 128)).astype(np.uint8)
    mismatches = 0
    for image in images:
        out = execute_onnx(model, {"global_in": image.astype(np.float32)})["global_out"]
        mismatches += int(np.count_nonzero(out.astype(np.int64) != graph.run(image)))
    assert mismatches == 0


def test_every_partition_node_is_a_finn_hw_op(artifact) -> None:  # noqa: ANN001
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(artifact.model))
    kinds = [node.op_type for node in model.graph.node]
    not_hw = [
        n.name
        for n in model.graph.node
        if n.domain != "finn.custom_op.fpgadataflow.hls"
        and n.domain != "finn.custom_op.fpgadataflow.rtl"
    ]
    assert not_hw == []
    assert kinds.count("StreamingConcat_hls") == 1 and kinds.count("DuplicateStreams_hls") == 1
    assert sum(k.startswith("MVAU") for k in kinds) == 7
    assert sum(k.startswith("VVAU") for k in kinds) == 6


def test_estimate_within_budget(artifact) -> None:  # noqa: ANN001
    board = ajpq.boards.get("ultra96-v2")
    cost = artifact.cost
    assert cost.resources["LUT"] <= 0.85 * board.resources["lut"]
    assert cost.resources["BRAM_18K"] <= 0.85 * 2 * board.resources["bram36"]
    assert cost.resources["DSP"] <= 0.85 * board.resources["dsp"]
    assert cost.fps > 1000
    from qonnx.core.modelwrapper import ModelWrapper

    assert set(cost.per_layer) == {n.name for n in ModelWrapper(str(artifact.model)).graph.node}
    assert all(layer["cycles"] > 0 for layer in cost.per_layer.values())
    for name in ("model.onnx", "dataflow_build_config.json", "folding_config.json", "README.md"):
        assert (artifact.out_dir / name).is_file()
