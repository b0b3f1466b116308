import numpy as np
import pytest
import torch

from ajpq.errors import InvalidPolicy
from ajpq.models import skynet, tiny_cnn
from ajpq.quant.importance import channel_importance
from ajpq.quant.policy import LayerPolicy, Policy, layer_specs

SIZE = (32, 64)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return skynet(width_mult=0.125, input_size=SIZE).eval()


def test_uniform_policy_covers_every_conv(model: torch.nn.Module) -> None:
    policy = Policy.uniform(model, 4, 6)
    specs = layer_specs(model)
    assert len(specs) == 13  # 6 bundles x (dw, pw) + head
    assert [s.name for s in specs][-1] == "head"
    assert all(set(lp.weight_bits) == {4} and lp.act_bits == 6 for lp in policy.layers.values())
    assert sum(s.depthwise for s in specs) == 6


def test_from_sparsity_prunes_least_important_channels(model: torch.nn.Module) -> None:
    policy = Policy.from_sparsity(model, 0.5, bits=[8, 4])
    importance = channel_importance(model)
    for spec in layer_specs(model):
        bits = np.array(policy.layers[spec.name].weight_bits)
        if spec.is_output or spec.depthwise:
            assert (bits > 0).all()
            continue
        kept = bits > 0
        assert kept.sum() == spec.out_channels - round(0.5 * spec.out_channels)
        assert importance[spec.name][kept].min() >= importance[spec.name][~kept].max()
        # the more important half of the kept channels gets 8 bits
        assert importance[spec.name][bits == 8].min() >= importance[spec.name][bits == 4].max()


def test_json_round_trip(tmp_path, model: torch.nn.Module) -> None:
    policy = Policy.random(model, seed=3)
    policy.save(tmp_path / "p.json")
    assert Policy.load(tmp_path / "p.json", model) == policy


def test_policy_for_another_model_is_refused(tmp_path, model: torch.nn.Module) -> None:
    Policy.uniform(tiny_cnn(), 8, 8, input_size=(16, 16)).save(tmp_path / "tiny.json")
    with pytest.raises(InvalidPolicy, match="does not match this model"):
        Policy.load(tmp_path / "tiny.json", model)


def test_policy_with_other_channel_count_is_refused(tmp_path, model: torch.nn.Module) -> None:
    Policy.uniform(skynet(width_mult=0.25, input_size=SIZE), 8, 8).save(tmp_path / "p.json")
    with pytest.raises(InvalidPolicy, match="output channels"):
        Policy.load(tmp_path / "p.json", model)


@pytest.mark.parametrize("bad", [1, 9])
def test_illegal_bit_width_is_refused(model: torch.nn.Module, bad: int) -> None:
    policy = Policy.uniform(model, 8, 8)
    name = "bundle2.pw" if "bundle2.pw" in policy.layers else next(iter(policy.layers))
    layers = dict(policy.layers)
    layers[name] = LayerPolicy((bad,) * len(layers[name].weight_bits), 8)
    with pytest.raises(InvalidPolicy, match=f"weight bit-width {bad}"):
        Policy(layers).validated(layer_specs(model))


def test_pruning_the_head_is_refused(model: torch.nn.Module) -> None:
    policy = Policy.uniform(model, 8, 8)
    layers = dict(policy.layers)
    layers["head"] = LayerPolicy((0,) + layers["head"].weight_bits[1:], 8)
    with pytest.raises(InvalidPolicy, match="cannot be pruned"):
        Policy(layers).validated(layer_specs(model))


def test_malformed_policy_file(tmp_path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidPolicy, match="not an ajpq policy JSON"):
        Policy.load(tmp_path / "bad.json")
