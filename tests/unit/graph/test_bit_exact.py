"""Golden integer executor == Brevitas fake-quant, exactly (the contract between layers)."""

import numpy as np
import pytest
import torch

from ajpq.errors import InvalidGraph, UnsupportedOp
from ajpq.graph import golden
from ajpq.graph.lower import lower
from ajpq.models import tiny_cnn
from ajpq.models.layers import Normalize
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.models import ds_cnn
from tests.unit.graph.conftest import random_images, randomize_batchnorm

POLICIES = ["uniform8", "uniform4", "mixed0", "mixed1", "mixed2", "mixed3", "mixed4"]


def make_policy(model: torch.nn.Module, name: str, **kw: object) -> Policy:
    if name == "uniform8":
        return Policy.uniform(model, 8, 8, **kw)
    if name == "uniform4":
        return Policy.uniform(model, 4, 4, **kw)
    return Policy.random(model, seed=int(name[-1]), prune_max=0.6, **kw)


def brevitas_integers(qmodel: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = qmodel.forward_quant(images)
    return torch.round(out.value / out.scale).to(torch.int64).numpy()


@pytest.mark.parametrize("policy_name", POLICIES)
def test_skynet_golden_equals_brevitas(small_skynet: torch.nn.Module, policy_name: str) -> None:
    policy = make_policy(small_skynet, policy_name)
    qmodel = quantize(small_skynet, policy)
    graph = lower(qmodel)
    images = random_images(100)
    golden = graph.run(images.numpy().astype(np.uint8))
    expected = brevitas_integers(qmodel, images)
    mismatches = int((golden != expected).sum())
    print(f"{policy_name}: {mismatches} mismatches in {golden.size} outputs")
    assert golden.shape == (100, 10, 8, 16)
    assert mismatches == 0
    if policy_name.startswith("mixed"):
        assert (
            graph.summary()["macs"]
            < lower(quantize(small_skynet, make_policy(small_skynet, "uniform8"))).summary()["macs"]
        )


def per_node_mismatches(
    graph: object, qmodel: torch.nn.Module, images: torch.Tensor
) -> tuple[int, int, int]:
    """Feed every golden node Brevitas' own inputs; count outputs that differ, and by how much."""
    record: dict = {}
    with torch.no_grad():
        qmodel.forward_quant(images, record)
    as_int = {
        name: torch.round(q.value / q.scale).to(torch.int64).numpy() for name, q in record.items()
    }
    as_int[graph.nodes[0].name] = images.numpy().astype(np.int64)
    differing = total = worst = 0
    for node in graph.nodes[1:]:
        out = golden.KERNELS[node.op](node, [as_int[name] for name in node.inputs])
        diff = np.abs(out - as_int[node.name])
        differing, total = differing + int((diff > 0).sum()), total + diff.size
        worst = max(worst, int(diff.max()))
    return differing, total, worst


@pytest.mark.parametrize("policy_name", ["uniform8", "mixed1", "mixed2"])
def test_generic_cnn_golden_vs_brevitas(policy_name: str) -> None:
    """Residual add, learned ReLU scales, global average pool, flatten and Linear: every
    node equals golden, fed Brevitas' own inputs (the eval forward requantizes the add and
    the average pool in integers, as the hardware does), and so does the whole graph."""
    torch.manual_seed(3)
    model = randomize_batchnorm(tiny_cnn(), seed=3)
    policy = make_policy(model, policy_name, input_size=(16, 16))
    calibration = random_images(16, (16, 16), seed=7)
    qmodel = quantize(model, policy, calibration=calibration, input_size=(16, 16))
    graph = lower(qmodel, prune=False)
    images = random_images(100, (16, 16), seed=5)
    assert graph.run(images.numpy().astype(np.uint8)).shape == (100, 4)
    differing, total, worst = per_node_mismatches(graph, qmodel, images)
    print(
        f"{policy_name}: {differing} of {total} node outputs differ (rate "
        f"{differing / total:.2e}), at most {worst} LSB"
    )
    assert (differing, worst) == (0, 0)
    expected = qmodel.forward_quant(images)
    integers = torch.round(expected.value / expected.scale).to(torch.int64).numpy()
    assert np.array_equal(graph.run(images.numpy().astype(np.uint8)), integers)


def test_removing_pruned_channels_changes_no_number(small_skynet: torch.nn.Module) -> None:
    qmodel = quantize(small_skynet, make_policy(small_skynet, "mixed2"))
    full, pruned = lower(qmodel, prune=False), lower(qmodel)
    images = random_images(8).numpy().astype(np.uint8)
    assert np.array_equal(full.run(images), pruned.run(images))
    assert pruned.summary()["params"] < full.summary()["params"]


class TwoBranches(torch.nn.Module):
    """Two conv branches with their own learned ReLU scales, concatenated before a dense conv
    (the concat requantizes each branch's channels at its own scale)."""

    def __init__(self) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.left = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.right = torch.nn.Conv2d(1, 4, 5, padding=2)
        self.mix = torch.nn.Conv2d(8, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        y = torch.cat([torch.relu(self.left(x)), torch.relu(self.right(x))], 1)
        return self.fc(torch.relu(self.mix(y)).mean((2, 3)))


def test_requantizing_concat_of_differently_scaled_branches_is_exact() -> None:
    torch.manual_seed(0)
    model = TwoBranches()
    images = torch.randint(0, 256, (50, 1, 12, 12), generator=torch.Generator().manual_seed(1))
    policy = Policy.uniform(model, 8, 8, input_size=(12, 12))
    qmodel = quantize(model, policy, calibration=images.float(), input_size=(12, 12))
    graph = lower(qmodel)
    assert [n.attrs.get("requant") for n in graph.nodes if n.op == "concat"] == [True]
    expected = qmodel.forward_quant(images.float())
    integers = torch.round(expected.value / expected.scale).to(torch.int64).numpy()
    assert np.array_equal(graph.run(images.numpy().astype(np.uint8)), integers)


def test_a_collapsed_activation_scale_is_refused_not_wrapped() -> None:
    """A layer silent on the calibration batch learns a 1e-10 scale; the head's int32 bias
    would wrap silently (golden 2104590336 where Brevitas says -2.8e10)."""
    torch.manual_seed(0)
    model = randomize_batchnorm(ds_cnn(width=8), seed=1)
    with torch.no_grad():  # BN scales of 0.5..1.5: activations die out, one layer goes silent
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.div_(3.0)
    policy = Policy.from_sparsity(model, 0.5, bits=(8, 4), act_bits=6, input_size=(49, 10))
    qmodel = quantize(model, policy, input_size=(49, 10))
    with pytest.raises(InvalidGraph, match="node 'fc' has a bias of .* outside int32"):
        lower(qmodel)


def weight_errors(qmodel: torch.nn.Module) -> dict[str, float]:
    """Each layer's squared weight quantization error (its unmasked channels)."""
    errors = {}
    for name, block in qmodel.blocks.items():
        weight = block.layer.weight.detach()
        quantized = block.layer.quant_weight().value.detach()
        keep = block.mask.view((-1,) + (1,) * (weight.dim() - 1)) > 0
        errors[name] = float((((quantized - weight) * keep) ** 2).sum())
    return errors


@pytest.mark.parametrize("policy_name", ["uniform4", "mixed1"])
def test_mse_weight_scales_are_bit_exact_and_closer(
    small_skynet: torch.nn.Module, policy_name: str
) -> None:
    """``weight_scale="mse"`` picks other scales than max-abs, with no larger squared weight
    error in any layer and less in total, and its graph is still golden == Brevitas."""
    policy = make_policy(small_skynet, policy_name)
    by_max = weight_errors(quantize(small_skynet, policy))
    qmodel = quantize(small_skynet, policy, weight_scale="mse")
    by_mse = weight_errors(qmodel)
    assert all(by_mse[name] <= by_max[name] * (1 + 1e-6) for name in by_max)
    assert sum(by_mse.values()) < 0.9 * sum(by_max.values())
    images = random_images(100, seed=5)
    golden = lower(qmodel).run(images.numpy().astype(np.uint8))
    assert int((golden != brevitas_integers(qmodel, images)).sum()) == 0


def test_unknown_weight_scale_is_one_sentence(small_skynet: torch.nn.Module) -> None:
    with pytest.raises(UnsupportedOp, match="weight_scale 'minmax' is not one of"):
        quantize(small_skynet, make_policy(small_skynet, "uniform8"), weight_scale="minmax")
