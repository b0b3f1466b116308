"""The reward proxy (Episodes.fine_tune: a distilled QAT fine-tune scored on fake-quant floats)
is a function of the policy and the seed only: not of the clock, nor of the machine's load."""

import time
from pathlib import Path

import pytest
import torch

import ajpq
from ajpq.search import Budget, SearchConfig
from ajpq.search.ajpq import episode_setup
from ajpq.search.cost import cost_model
from ajpq.search.episodes import Episodes
from ajpq.search.space import SearchSpace

SIZE = (32, 64)
CONFIG = SearchConfig(train_images=48, val_images=16, qat_lr=2e-3)  # lr: weights must move


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ajpq.models.skynet(0.125, SIZE).eval()


def reward(
    model: torch.nn.Module, seed: int, out: Path, config: SearchConfig = CONFIG
) -> tuple[float, dict]:
    train, val = ajpq.data.aerial(48, 16, input_size=SIZE)
    cost = cost_model("mcu", "qemu-mps2-an386")
    task = ajpq.tasks.Detection(model.anchors)
    setup = episode_setup(Budget(), config, cost, train, val, seed, out, task)
    runner = Episodes(model, SearchSpace.of(model), setup)
    qmodel = ajpq.quantize(model, ajpq.Policy.from_sparsity(model, 0.3, bits=[6, 4]))
    metric = runner.fine_tune(qmodel)
    assert qmodel.exact  # the fast float scoring is switched back off
    return metric, {k: v.clone() for k, v in qmodel.state_dict().items()}


def test_same_seed_same_reward_and_weights_even_when_the_clock_races(
    model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric, weights = reward(model, 0, tmp_path)
    now = [time.monotonic()]

    def racing() -> float:  # a machine so loaded that every call is 1,000 s later
        now[0] += 1000.0
        return now[0]

    monkeypatch.setattr(time, "monotonic", racing)
    again, weights_again = reward(model, 0, tmp_path)
    assert again == metric
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)


def test_another_seed_gives_other_weights(model, tmp_path: Path) -> None:
    _, weights = reward(model, 0, tmp_path)
    _, other = reward(model, 1, tmp_path)
    assert not all(torch.equal(weights[k], other[k]) for k in weights)


def test_zero_qat_epochs_scores_the_quantized_model_untouched(model, tmp_path: Path) -> None:
    config = SearchConfig(train_images=48, val_images=16, qat_epochs=0)
    metric, weights = reward(model, 0, tmp_path, config)
    qmodel = ajpq.quantize(model, ajpq.Policy.from_sparsity(model, 0.3, bits=[6, 4]))
    assert all(torch.equal(weights[k], v) for k, v in qmodel.state_dict().items())
    qmodel.exact = False
    val = ajpq.data.aerial(48, 16, input_size=SIZE)[1]
    assert metric == ajpq.evaluate(qmodel, val)
