import numpy as np
import pytest

from ajpq.errors import InvalidGraph
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.unit.graph.conftest import random_images


@pytest.fixture(scope="module")
def graph(small_skynet) -> HwGraph:
    return lower(quantize(small_skynet, Policy.random(small_skynet, seed=4)))


def test_save_load_round_trip_is_identical(tmp_path, graph: HwGraph) -> None:
    graph.save(tmp_path / "m.hwg")
    loaded = HwGraph.load(tmp_path / "m.hwg")
    assert [n.name for n in loaded.nodes] == [n.name for n in graph.nodes]
    for a, b in zip(graph.nodes, loaded.nodes, strict=True):
        assert (a.op, a.inputs, a.shape, a.bits, a.signed, a.attrs) == (
            b.op,
            b.inputs,
            b.shape,
            b.bits,
            b.signed,
            b.attrs,
        )
        assert sorted(a.arrays) == sorted(b.arrays)
        for key in a.arrays:
            assert a.arrays[key].dtype == b.arrays[key].dtype
            assert np.array_equal(a.arrays[key], b.arrays[key])
    assert np.array_equal(loaded.output_scale, graph.output_scale)
    assert loaded.meta == graph.meta
    images = random_images(4).numpy().astype(np.uint8)
    assert np.array_equal(loaded.run(images), graph.run(images))
    assert loaded.summary() == graph.summary()


def test_truncated_file_is_a_one_line_error(tmp_path, graph: HwGraph) -> None:
    graph.save(tmp_path / "m.hwg")
    data = (tmp_path / "m.hwg").read_bytes()
    (tmp_path / "cut.hwg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidGraph, match="is not a valid ajpq HwGraph file") as info:
        HwGraph.load(tmp_path / "cut.hwg")
    assert "\n" not in str(info.value)


def test_random_bytes_are_refused(tmp_path) -> None:
    (tmp_path / "junk.hwg").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InvalidGraph, match="re-create it"):
        HwGraph.load(tmp_path / "junk.hwg")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InvalidGraph, match="does not exist"):
        HwGraph.load(tmp_path / "nope.hwg")


def test_wrong_input_shape_is_refused(graph: HwGraph) -> None:
    with pytest.raises(InvalidGraph, match="this graph takes"):
        graph.run(np.zeros((1, 3, 10, 10), np.uint8))
