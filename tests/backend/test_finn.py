"""FINN backend (finn-plus, no Vivado): bit-exact python execution, HW mapping, folding,
budget and mapping errors. Three Skynet-0.25 64x128 builds are shared at module scope."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import ajpq
from ajpq.graph.hwgraph import Node
from ajpq.models.random_init import randomize_batchnorm
from tests.backend.tools import need_finn

POLICIES = ("uniform", "mixed", "per_layer")
HW_DOMAINS = ("finn.custom_op.fpgadataflow.hls", "finn.custom_op.fpgadataflow.rtl")


@pytest.fixture(scope="module", autouse=True)
def _finn(request: pytest.FixtureRequest) -> None:
    need_finn(request)


def _policy(kind: str, model: torch.nn.Module) -> ajpq.Policy:
    if kind == "uniform":
        return ajpq.Policy.uniform(model, 4, 4)
    if kind == "mixed":  # per-channel 4/3/2 bits, 30 % of channels pruned
        return ajpq.Policy.from_sparsity(model, 0.3, bits=[4, 3, 2], act_bits=4)
    uniform = ajpq.Policy.uniform(model, 4, 4)
    return ajpq.Policy(
        {
            name: ajpq.LayerPolicy((b,) * len(layer.weight_bits), 4 if i % 2 else 3)
            for i, (name, layer) in enumerate(uniform.layers.items())
            for b in [(4, 3, 2, 5)[i % 4]]
        }
    )


@pytest.fixture(scope="module")
def builds(tmp_path_factory):  # noqa: ANN001, ANN201
    from ajpq.backends import finn

    result = {}
    for kind in POLICIES:
        torch.manual_seed(0)
        model = randomize_batchnorm(ajpq.models.skynet(0.25, (64, 128)))
        graph = ajpq.lower(ajpq.quantize(model, _policy(kind, model)))
        result[kind] = (graph, finn.compile(graph, "ultra96-v2", tmp_path_factory.mktemp(kind)))
    return result


@pytest.mark.parametrize("kind", POLICIES)
def test_convert_to_hw_execution_equals_golden(builds, kind: str) -> None:  # noqa: ANN001
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    graph, artifact = builds[kind]
    model = ModelWrapper(str(artifact.out_dir / "05_convert_to_hw.onnx"))
    images = np.random.default_rng(3).integers(0, 256, (20, 1, 3, 64, 128)).astype(np.uint8)
    mismatches = 0
    for image in images:
        out = execute_onnx(model, {"global_in": image.astype(np.float32)})["global_out"]
        mismatches += int(np.count_nonzero(out.astype(np.int64) != graph.run(image)))
    assert mismatches == 0


@pytest.mark.parametrize("kind", POLICIES)
def test_every_partition_node_is_a_finn_hw_op_and_reported(builds, kind: str) -> None:  # noqa: ANN001
    from qonnx.core.modelwrapper import ModelWrapper

    _, artifact = builds[kind]
    model = ModelWrapper(str(artifact.model))
    kinds = [node.op_type for node in model.graph.node]
    assert [n.name for n in model.graph.node if n.domain not in HW_DOMAINS] == []
    assert kinds.count("StreamingConcat_hls") == 1 and kinds.count("DuplicateStreams_hls") == 1
    assert sum(k.startswith("MVAU") for k in kinds) == 7
    assert sum(k.startswith("VVAU") for k in kinds) == 6
    report = json.loads(artifact.report.read_text())
    listed = [(n["name"], n["op_type"]) for n in report["nodes"]]
    assert listed == [(n.name, n.op_type) for n in model.graph.node]
    for node in report["nodes"]:
        assert node["cycles"] > 0 and {"LUT", "BRAM_18K", "DSP"} <= set(node)
        assert "PE" in node or "SIMD" in node


@pytest.mark.parametrize("kind", POLICIES)
def test_folding_fills_the_budget_past_the_old_ceiling(builds, kind: str) -> None:  # noqa: ANN001
    from qonnx.core.modelwrapper import ModelWrapper

    _, artifact = builds[kind]
    board = ajpq.boards.get("ultra96-v2")
    cost = artifact.cost
    assert cost.resources["LUT"] <= 0.85 * board.resources["lut"]
    assert cost.resources["BRAM_18K"] <= 0.85 * 2 * board.resources["bram36"]
    assert cost.resources["DSP"] <= 0.85 * board.resources["dsp"]
    assert cost.fps > 8000  # was ~2,700 before parallel_window (first depthwise SWG)
    report = json.loads(artifact.report.read_text())
    assert (
        "budget" in report["folding"]["stop_reason"]
        or "fully parallel" in (report["folding"]["stop_reason"])
    )
    model = ModelWrapper(str(artifact.model))
    assert set(cost.per_layer) == {n.name for n in model.graph.node}
    for name in ("model.onnx", "dataflow_build_config.json", "folding_config.json", "README.md"):
        assert (artifact.out_dir / name).is_file()


def test_depthwise_swg_simd_matches_its_consumer(builds) -> None:  # noqa: ANN001
    from finn.util.basic import getHWCustomOp
    from qonnx.core.modelwrapper import ModelWrapper

    _, artifact = builds["uniform"]
    model = ModelWrapper(str(artifact.model))
    windows = 0
    for node in model.graph.node:
        inst = getHWCustomOp(node)
        if node.op_type.startswith("ConvolutionInputGenerator") and inst.get_nodeattr("depthwise"):
            consumer = getHWCustomOp(model.find_consumer(node.output[0]))
            assert inst.get_nodeattr("SIMD") == consumer.get_nodeattr("PE")
            windows += inst.get_nodeattr("parallel_window")
    assert windows >= 1


def test_finn_target_fps_baseline_at_same_budget(builds, tmp_path) -> None:  # noqa: ANN001
    from ajpq.backends import finn

    graph, ours = builds["uniform"]
    theirs = finn.compile(
        graph, "ultra96-v2", tmp_path, strategy="finn-target-fps", resume=ours.out_dir
    )
    board = ajpq.boards.get("ultra96-v2")
    assert theirs.cost.resources["LUT"] <= 0.85 * board.resources["lut"]
    assert theirs.cost.fps > 1000
    assert ours.cost.fps >= 0.9 * theirs.cost.fps


def test_board_too_small_names_the_resource(builds, tmp_path) -> None:  # noqa: ANN001
    from ajpq.backends import finn

    graph, artifact = builds["uniform"]
    tiny = dataclasses.replace(
        ajpq.boards.get("ultra96-v2"),
        resources={"lut": 5000, "ff": 10000, "bram36": 100, "uram": 0, "dsp": 100},
    )
    with pytest.raises(
        ajpq.errors.BudgetExceeded, match=r"LUT even fully folded.*more than the 4,250"
    ):
        finn.compile(graph, tiny, tmp_path, resume=artifact.out_dir)


def test_op_finn_cannot_map_names_the_node(builds, tmp_path) -> None:  # noqa: ANN001
    from ajpq.backends import finn

    graph, _ = builds["uniform"]
    last = graph.nodes[-1]
    flat = Node(
        "head_flat", "flatten", [last.name], (int(np.prod(last.shape)),), last.bits, last.signed
    )
    with pytest.raises(ajpq.UnsupportedOp, match="HwGraph node 'head_flat'.*Flatten"):
        finn.compile(graph.replace(graph.nodes + [flat]), "ultra96-v2", tmp_path)
