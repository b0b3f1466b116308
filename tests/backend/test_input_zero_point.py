"""A model trained on normalized inputs, folded (``input_normalization``): its input carries a
per-channel zero point that the generated C subtracts from the uint8 pixels, bit-exact with
golden on the host and on the emulated M4; finn and the QONNX export refuse it in one sentence."""

from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import get
from ajpq.boards import Board
from ajpq.errors import UnsupportedOp
from ajpq.graph.hwgraph import input_zero_point
from tests.backend.tools import need
from tests.models import ds_cnn
from tests.unit.quant.test_fold_input import folded_qat

ZERO_POINT = (124, 116, 104)  # round(255 * ImageNet's mean)
REFUSAL = "has zero point (124, 116, 104)"
GRAY_SIZE = (49, 10)


@pytest.fixture(scope="module")
def graph() -> ajpq.HwGraph:
    """RGB 12x10, a mixed policy, ImageNet's mean and std folded."""
    graph = ajpq.lower(folded_qat(seed=4, policy_seed=3))
    assert input_zero_point(graph) == ZERO_POINT
    return graph


@pytest.fixture(scope="module")
def gray_graph() -> ajpq.HwGraph:
    """A DS-CNN on a 1-channel 49x10 map (10x4 first kernel), mean 0.45 and std 0.25 folded."""
    torch.manual_seed(6)
    model = ds_cnn(input_size=GRAY_SIZE).eval()
    policy = ajpq.Policy.random(model, seed=7, prune_max=0.5, input_size=GRAY_SIZE)
    qmodel = ajpq.quantize(
        model, policy, input_size=GRAY_SIZE, input_normalization=([0.45], [0.25])
    )
    return ajpq.lower(qmodel)


@pytest.fixture(scope="module")
def built(request: pytest.FixtureRequest, graph, tmp_path_factory) -> object:
    need(request, "gcc")
    need(request, "arm-none-eabi-gcc")
    return ajpq.compile(graph, "mcu", "qemu-mps2-an386", tmp_path_factory.mktemp("zp"))


def images(count: int, seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


def test_host_build_subtracts_the_zero_point_bit_exact(built, graph) -> None:
    x = images(100, 1, graph.nodes[0].shape)
    x[0], x[1] = 0, 255  # the extremes of pixel - zero_point: -124 and 151
    assert np.array_equal(built.run_host(x), graph.run(x))


def test_grayscale_host_build_is_bit_exact(
    gray_graph, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    need(request, "gcc")
    need(request, "arm-none-eabi-gcc")
    assert input_zero_point(gray_graph) == (115,)
    artifact = ajpq.compile(gray_graph, "mcu", "qemu-mps2-an386", tmp_path)
    x = images(100, 3, gray_graph.nodes[0].shape)
    assert np.array_equal(artifact.run_host(x), gray_graph.run(x))


def test_generated_c_holds_the_zero_point(built) -> None:
    source = (Path(built.out_dir) / "src" / "ajpq_model.c").read_text()
    assert "ajpq_input_zero_point[3] = {124, 116, 104};" in source


def test_firmware_on_qemu_is_bit_exact(built, graph, request: pytest.FixtureRequest) -> None:
    need(request, "qemu-system-arm")
    x = images(3, 2, graph.nodes[0].shape)
    with Board("qemu-mps2-an386") as board:
        board.flash(built)
        with board.open() as session:
            outputs = np.stack([session.infer(image) for image in x])
    assert np.array_equal(outputs, graph.run(x))


def test_finn_compile_refuses_a_zero_point(graph, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOp) as error:
        ajpq.compile(graph, "finn", "ultra96-v2", tmp_path / "finn")
    assert REFUSAL in str(error.value)
    assert "fold a zero mean or use the mcu backend" in str(error.value)
    assert not (tmp_path / "finn").exists()


def test_finn_estimate_refuses_a_zero_point(graph) -> None:
    with pytest.raises(UnsupportedOp) as error:
        get("finn").estimate(graph, "ultra96-v2")
    assert REFUSAL in str(error.value)


def test_qonnx_export_refuses_a_zero_point(graph, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOp) as error:
        graph.to_qonnx(tmp_path / "m.onnx")
    assert REFUSAL in str(error.value)
