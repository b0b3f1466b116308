"""Users' own CNNs (tests/models.py) go through quantize -> lower bit-exact.

An MLPerf-Tiny ResNet-8-like net (Identity and strided 1x1 shortcuts, ``+=``, F.relu,
``x.mean((2, 3))``, Linear) and a DS-CNN-like keyword spotter (1 channel, 49x10 input, 10x4
first kernel, depthwise-separable blocks, dropout, AdaptiveAvgPool2d, torch.flatten): the
golden integer executor equals the Brevitas QAT model's integers on random uint8 inputs.
"""

import numpy as np
import pytest
import torch
from torch import nn

import ajpq
from ajpq.errors import InvalidPolicy
from ajpq.models.random_init import randomize_batchnorm
from ajpq.quant.capture import capture
from ajpq.quant.policy import LayerPolicy, Policy
from tests.models import ds_cnn, mnist_net, resnet_tiny

COUNT = 20

MODELS = {
    # name: (factory, input size) -- raw pixels straight into conv1, or Normalize(1/255) first
    "resnet gray 16x16": (lambda: resnet_tiny(channels=1), (16, 16)),
    "resnet rgb 12x20 normalize": (lambda: resnet_tiny(channels=3, normalize=True), (12, 20)),
    "ds-cnn 49x10": (lambda: ds_cnn(width=8), (49, 10)),
    "ds-cnn 49x10 normalize": (lambda: ds_cnn(width=8, normalize=True), (49, 10)),
    "mnist example 28x28": (mnist_net, (28, 28)),
}


def user_model(name: str) -> tuple[nn.Module, tuple[int, int]]:
    """The untrained model with BatchNorm statistics of its own activations (as training
    leaves them) and random affine parameters, so no layer is dead on random pixels."""
    factory, size = MODELS[name]
    torch.manual_seed(0)
    model = randomize_batchnorm(factory(), seed=1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the batches seen
    channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    model.train()
    with torch.no_grad():
        model(pixels(channels, size, seed=11, count=64))
    return model.eval(), size


def policy_for(model: nn.Module, kind: str, size: tuple[int, int]) -> ajpq.Policy:
    if kind == "uniform 8/8":
        return ajpq.Policy.uniform(model, 8, 8, input_size=size)
    if kind == "uniform 4/4":
        return ajpq.Policy.uniform(model, 4, 4, input_size=size)
    return ajpq.Policy.from_sparsity(model, 0.5, bits=(8, 4), act_bits=6, input_size=size)


def pixels(channels: int, size: tuple[int, int], seed: int = 7, count: int = COUNT) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, channels, *size), generator=generator).float()


POLICIES = ["uniform 8/8", "uniform 4/4", "sparsity 0.5"]
CASES = [(name, policy) for name in MODELS for policy in POLICIES]


@pytest.mark.parametrize(("name", "policy_kind"), CASES)
def test_golden_equals_brevitas(name: str, policy_kind: str) -> None:
    model, size = user_model(name)
    qmodel = ajpq.quantize(model, policy_for(model, policy_kind, size), input_size=size)
    graph = ajpq.lower(qmodel)
    images = pixels(graph.nodes[0].shape[0], size)
    golden = graph.run(images.numpy().astype(np.uint8))
    with torch.no_grad():
        out = qmodel.forward_quant(images)
    expected = torch.round(out.value / out.scale).to(torch.int64).numpy()
    assert golden.shape == (COUNT, 10)
    assert int((golden != expected).sum()) == 0
    assert int(np.abs(golden).max()) > 0  # the comparison is not between two zero outputs


def test_sparsity_prunes_the_users_channels() -> None:
    model, size = user_model("resnet gray 16x16")
    full = ajpq.lower(ajpq.quantize(model, policy_for(model, "uniform 8/8", size), input_size=size))
    pruned = ajpq.lower(
        ajpq.quantize(model, policy_for(model, "sparsity 0.5", size), input_size=size)
    )
    channels = {node.name: node.channels for node in pruned.nodes}
    assert channels["stack1.conv1"] == 4 and channels["stack3.conv1"] == 16  # half of 8, 32
    # the layers whose outputs meet at residual adds stay whole (LayerSpec.prunable)
    assert channels["conv1"] == 8 and channels["stack3.conv2"] == channels["stack3.shortcut.0"]
    assert channels["fc"] == 10  # the classifier's outputs are never pruned
    assert pruned.summary()["params"] < full.summary()["params"]


def test_user_models_capture_as_written() -> None:
    resnet = [(op.name, op.kind, op.inputs, op.act) for op in capture(resnet_tiny(), (16, 16))]
    assert resnet[4:6] + resnet[-3:] == [
        ("add", "add", ["stack1.conv2", "conv1"], "relu"),  # nn.Identity shortcut
        ("stack2.conv1", "conv", ["add"], "relu"),
        ("mean", "avgpool", ["add_2"], None),
        ("mean_flatten", "flatten", ["mean"], None),
        ("fc", "linear", ["mean_flatten"], None),
    ]
    ds = capture(ds_cnn(width=8), (49, 10))
    assert [(op.kind, op.shape) for op in ds[:3]] == [
        ("input", (1, 49, 10)),
        ("conv", (8, 25, 5)),
        ("conv", (8, 25, 5)),
    ]
    assert ds[1].attrs == {"stride": (2, 2), "padding": (5, 1), "groups": 1, "kernel": (10, 4)}
    assert ds[2].attrs["groups"] == 8
    assert [(op.kind, op.shape) for op in ds[-3:]] == [
        ("avgpool", (8, 1, 1)),
        ("flatten", (8,)),
        ("linear", (10,)),
    ]
    assert ds[-3].attrs["kernel"] == (25, 5)


def test_a_residual_add_left_without_channels_is_refused() -> None:
    """Hand-written bits whose pruned sets cover all of an add's channels between them."""
    model, size = user_model("resnet gray 16x16")
    layers = dict(policy_for(model, "uniform 8/8", size).layers)
    layers["conv1"] = LayerPolicy((8, 8, 0, 0, 0, 0, 0, 0), 8)
    layers["stack1.conv2"] = LayerPolicy((0, 0, 8, 8, 0, 0, 0, 0), 8)
    with pytest.raises(InvalidPolicy, match="'add' .add. keeps no channel .its inputs keep disj"):
        ajpq.quantize(model, Policy(layers), input_size=size)
