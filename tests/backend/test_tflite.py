"""The tflite backend: graphs quantized with ``target="tflite"`` export to .tflite files that
the real TFLM interpreter runs exactly as the golden executor (and golden exactly as the QAT
model's integer path), on Skynet and on the test classifiers (residual adds, global average
pooling, flatten + linear, strided convs); what TFLite cannot say is refused in one
sentence."""

import copy
import json

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends.tflite.backend import Artifact
from ajpq.backends.tflite.export import export
from ajpq.errors import AjpqError, UnsupportedOp
from ajpq.models.random_init import randomize_batchnorm
from ajpq.quant.policy import Policy
from tests import models

SKYNET_SIZE = (64, 128)
INPUTS = 100


def skynet() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(ajpq.models.skynet(0.25, SKYNET_SIZE))


def classifier(name: str) -> tuple[torch.nn.Module, tuple[int, int]]:
    torch.manual_seed(1)
    size = {"resnet_tiny": (16, 16), "ds_cnn": (49, 10), "mnist_net": (28, 28)}[name]
    return randomize_batchnorm(getattr(models, name)()), size


def depends_on_the_image(outputs: np.ndarray) -> bool:
    """Every image's output differs from the first's (not just biases passed through)."""
    return all((outputs[i] != outputs[0]).any() for i in range(1, len(outputs)))


def policies(model: torch.nn.Module, size: tuple[int, int]) -> dict[str, Policy]:
    return {
        "uniform8": Policy.uniform(model, 8, 8, size),
        "uniform4": Policy.uniform(model, 4, 4, size),
        # pruned layers, 8..3-bit channel quantiles, 4-bit activations (MINIMUM clamps)
        "mixed": Policy.from_sparsity(model, 0.3, (8, 6, 4, 3), act_bits=4, input_size=size),
    }


CASES = [("skynet", name) for name in ("uniform8", "uniform4", "mixed", "random")] + [
    (net, name) for net in ("resnet_tiny", "ds_cnn", "mnist_net") for name in ("uniform8", "mixed")
]


def quantized(net: str, name: str) -> tuple[ajpq.QuantModel, ajpq.HwGraph]:
    model, size = (skynet(), SKYNET_SIZE) if net == "skynet" else classifier(net)
    if name == "random":  # per-layer 4/8-bit activations, channels pruned up to half
        policy = Policy.random(model, seed=1, input_size=size)
    else:
        policy = policies(model, size)[name]
    calibration = torch.randint(0, 256, (8, 3 if net == "skynet" else 1, *size)).float()
    qmodel = ajpq.quantize(model, policy, calibration, size, target="tflite")
    return qmodel, ajpq.lower(qmodel)


@pytest.mark.parametrize(("net", "name"), CASES)
def test_tflm_equals_golden_equals_qat(net: str, name: str, tmp_path) -> None:
    qmodel, hw = quantized(net, name)
    artifact = ajpq.compile(hw, backend="tflite", out_dir=tmp_path)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (INPUTS, *hw.nodes[0].shape)).astype(np.uint8)
    golden = hw.run(x)
    assert np.array_equal(artifact.run_tflm(x), golden)
    if artifact.lut is not None:
        assert np.array_equal(artifact.run_tflm(x, lut=True), golden)
    with torch.no_grad():
        out = qmodel.forward_quant(torch.from_numpy(x).float())
    assert np.array_equal(torch.round(out.value / out.scale).to(torch.int64).numpy(), golden)
    assert depends_on_the_image(golden)
    assert all(n.attrs.get("rounding") == "double" for n in hw.nodes if n.attrs.get("requant"))


def test_artifact_files_and_report(tmp_path) -> None:
    _, hw = quantized("skynet", "uniform4")
    artifact = ajpq.compile(hw, backend="tflite", out_dir=tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    model = (tmp_path / "model.tflite").read_bytes()
    assert model[4:8] == b"TFL3"
    assert report["file_bytes"]["tflite"] == len(model)
    assert report["weight_bytes_int8"] == sum(
        n.arrays["weight"].size for n in hw.nodes if "weight" in n.arrays
    )
    assert report["arena_bytes"]["tflm"] > 2 * 12 * 64 * 128 // 4  # two activations at least
    assert report["output"]["zero_point"] == 0 and report["input"]["zero_point"] == -128
    loaded = ajpq.deploy.load_artifact(tmp_path)
    assert isinstance(loaded, Artifact) and loaded.model_hash == artifact.model_hash
    assert (artifact.lut is not None) == report["lut_kept"]
    side = report["side_by_side"]
    assert side["weight_bytes"]["tflite_int8"] == report["weight_bytes_int8"]
    # 4-bit weights Huffman-packed: under 0.6 of their int8 bytes, tables included
    assert (
        side["weight_bytes"]["ajpq_huffman_streams_and_tables"] < 0.6 * report["weight_bytes_int8"]
    )
    assert report["operators"] == [
        "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "QUANTIZE",
        "SPACE_TO_DEPTH",
    ]  # fmt: skip


def test_lut_variant_is_exact_on_4_bit_weights(tmp_path) -> None:
    """TFLM's per-channel LUT on 3-bit weights of a 16-channel conv stack."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 4, 1),
    )  # fmt: skip
    policy = Policy.uniform(model, 3, 8, (8, 8))
    hw = ajpq.lower(ajpq.quantize(model, policy, input_size=(8, 8), target="tflite"))
    artifact = ajpq.compile(hw, backend="tflite", out_dir=tmp_path)
    assert artifact.lut is not None
    assert artifact.lut.stat().st_size < artifact.tflite.stat().st_size
    x = np.random.default_rng(3).integers(0, 256, (50, 1, 8, 8)).astype(np.uint8)
    assert np.array_equal(artifact.run_tflm(x, lut=True), hw.run(x))


def test_an_ajpq_target_graph_is_refused_in_one_sentence() -> None:
    model, size = classifier("mnist_net")
    hw = ajpq.lower(ajpq.quantize(model, Policy.uniform(model, 8, 8, size), input_size=size))
    with pytest.raises(UnsupportedOp, match=r'target="tflite"') as info:
        export(hw)
    assert "\n" not in str(info.value)


def test_an_add_of_pruned_channels_is_refused_naming_the_node() -> None:
    model, size = classifier("resnet_tiny")
    policy = Policy.random(model, seed=2, input_size=size)  # prunes layers feeding adds
    hw = ajpq.lower(ajpq.quantize(model, policy, input_size=size, target="tflite"))
    with pytest.raises(UnsupportedOp, match=r"node 'add\w*' adds a subset"):
        export(hw)


def test_a_per_channel_input_zero_point_is_refused() -> None:
    model, size = classifier("mnist_net")
    normalization = ((0.1,), (0.3,))
    policy = Policy.uniform(model, 8, 8, size)
    qmodel = ajpq.quantize(
        model, policy, input_size=size, input_normalization=normalization, target="tflite"
    )
    hw = ajpq.lower(qmodel)
    if not hw.nodes[0].attrs.get("zero_point"):
        pytest.fail("the fold gave no zero point; pick a mean that is not 0")
    with pytest.raises(UnsupportedOp, match="zero point"):
        export(hw)


def test_an_unknown_target_is_refused() -> None:
    model, size = classifier("mnist_net")
    with pytest.raises(AjpqError, match="'tfl' is not one of"):
        ajpq.quantize(model, Policy.uniform(model, 8, 8, size), input_size=size, target="tfl")


def test_the_tflite_backend_has_no_cost_model() -> None:
    from ajpq.backends import get

    _, hw = quantized("mnist_net", "uniform8")
    with pytest.raises(AjpqError, match="search with backend='mcu'"):
        get("tflite").estimate(hw, "qemu-mps2-an386")


def test_what_a_tflite_tensor_cannot_hold_is_refused_naming_the_node() -> None:
    """Graphs damaged by hand: a 16-bit activation, a depthwise conv that gathers its input's
    channels, a signed max pool padded unlike SAME."""
    _, graph = quantized("mnist_net", "uniform8")
    wide = copy.deepcopy(graph)
    wide.nodes[1].bits = 16
    with pytest.raises(UnsupportedOp, match=rf"node '{wide.nodes[1].name}' outputs 16-bit"):
        export(wide)
    _, graph = quantized("ds_cnn", "uniform8")
    gather = copy.deepcopy(graph)
    depthwise = next(n for n in gather.nodes if n.op == "conv" and n.attrs["groups"] > 1)
    depthwise.arrays["in_index"] = np.arange(depthwise.channels, dtype=np.int32)[::-1].copy()
    with pytest.raises(UnsupportedOp, match=rf"node '{depthwise.name}' is a depthwise conv"):
        export(gather)
    _, graph = quantized("mnist_net", "uniform8")
    padded = copy.deepcopy(graph)
    pool = next(n for n in padded.nodes if n.op == "maxpool")
    pool.signed, pool.attrs["padding"] = True, (1, 0)
    with pytest.raises(UnsupportedOp, match=rf"node '{pool.name}' pads a signed max pool"):
        export(padded)
