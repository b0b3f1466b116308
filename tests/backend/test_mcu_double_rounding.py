"""The MCU backend in TFLite's double rounding: graphs quantized with ``target="tflite"``
compile to C whose every requantizing layer (and add) rounds as TFLite does, bit-exact with
the golden executor on the host on 100 random images each, for Skynet (uniform 8/8, uniform
4/4, a mixed pruned policy) and the two test classifiers (residual adds, global average pool,
linear head). The float32 scales those graphs carry for the .tflite exporter stay out of
flash. (The same graphs on the emulated board: tests/hil/test_double_rounding_qemu.py.)"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import mcu
from ajpq.backends.mcu.estimate import node_features
from ajpq.backends.mcu.plan import plan
from ajpq.backends.mcu.sources import write_sources
from ajpq.graph.golden import double_rounding
from tests.backend.tools import need
from tests.models import ds_cnn, resnet_tiny
from tests.unit.graph.conftest import randomize_batchnorm

SKYNET_SIZE = (64, 128)
MODELS = {  # name -> (input size, channels)
    "skynet-uniform8": (SKYNET_SIZE, 3),
    "skynet-uniform4": (SKYNET_SIZE, 3),
    "skynet-mixed": (SKYNET_SIZE, 3),
    "resnet_tiny": ((16, 16), 1),
    "ds_cnn": ((49, 10), 1),
}
IMAGES = 100


def tflite_graph(name: str) -> ajpq.HwGraph:
    """The named model quantized with target="tflite" and lowered (seeded)."""
    size, _ = MODELS[name]
    torch.manual_seed(0)
    if name.startswith("skynet"):
        model = randomize_batchnorm(ajpq.models.skynet(0.25, size))
    else:
        model = randomize_batchnorm(resnet_tiny() if name == "resnet_tiny" else ds_cnn())
    if name.endswith("uniform8") or name == "resnet_tiny":
        policy = ajpq.Policy.uniform(model, 8, 8, input_size=size)
    elif name.endswith("uniform4"):
        policy = ajpq.Policy.uniform(model, 4, 4, input_size=size)
    else:  # mixed bit-widths and pruning
        policy = ajpq.Policy.random(model, seed=1, prune_max=0.6, input_size=size)
    return ajpq.lower(ajpq.quantize(model, policy, target="tflite", input_size=size))


def images(name: str, count: int, seed: int) -> np.ndarray:
    size, channels = MODELS[name]
    return np.random.default_rng(seed).integers(0, 256, (count, channels, *size), dtype=np.uint8)


def requantizing(graph: ajpq.HwGraph) -> list:
    return [n for n in graph.nodes if n.attrs.get("requant") or n.op == "add"]


@pytest.mark.parametrize("name", list(MODELS))
def test_host_build_in_double_rounding_is_bit_exact(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    need(request, "gcc")
    graph = tflite_graph(name)
    nodes = requantizing(graph)
    assert nodes and all(double_rounding(n) for n in nodes)
    artifact = mcu.compile(graph, "qemu-mps2-an386", tmp_path, firmware=False)
    model_c = (tmp_path / "src" / "ajpq_model.c").read_text()
    # every requantizing layer's params say double rounding: requant's rounding field (before
    # per_tensor, set where one multiplier serves all channels), or the add's
    requants = re.findall(r"\.requant = \{1, \w+, \w+, -?\d+, -?\d+, 1(, 1)?\}", model_c)
    assert len(requants) + model_c.count(".rounding = 1,") == len(nodes)
    assert model_c.count(".left_shift = 20") == sum(n.op == "add" for n in nodes)
    x = images(name, IMAGES, seed=1)
    x[0], x[1] = 0, 255
    expected = graph.run(x)
    assert np.array_equal(artifact.run_host(x), expected)
    # every image's output differs from the first's: the outputs are not just biases
    assert all((expected[i] != expected[0]).any() for i in range(1, len(expected)))


def test_scales_for_the_tflite_exporter_stay_out_of_flash(tmp_path: Path) -> None:
    graph = tflite_graph("resnet_tiny")
    assert all("scale" in n.arrays for n in graph.nodes)
    with_scales = write_sources(graph, plan(graph, 1 << 20), tmp_path / "a")
    for node in graph.nodes:
        node.arrays.pop("scale")
        node.arrays.pop("weight_scale", None)
    without = write_sources(graph, plan(graph, 1 << 20), tmp_path / "b")
    weights_c = (tmp_path / "a" / "ajpq_weights.c").read_text()
    assert "scale" not in weights_c
    assert weights_c == (tmp_path / "b" / "ajpq_weights.c").read_text()
    assert with_scales[1:] == without[1:]  # the flash of the data arrays, their CRC


def test_estimate_counts_double_rounding_on_the_slow_path() -> None:
    graph = tflite_graph("resnet_tiny")
    shapes = {n.name: n.shape for n in graph.nodes}
    conv = next(n for n in graph.nodes if n.op == "conv")
    assert int(conv.arrays["shift"].min()) >= 33  # single rounding would take the fast path
    _, features, _ = node_features(conv, shapes)
    positions_channels = float(np.prod(conv.shape))
    assert features[3:6].tolist() == [0.0, 0.0, positions_channels]
