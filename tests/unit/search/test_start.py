"""The search's first episode plays HAQ's per-layer precision (start.py); the warm-up episodes
after it are the random ones a search without the start plays."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import Cost
from ajpq.quant.policy import Policy
from ajpq.search import Budget, SearchConfig
from ajpq.search.agent import make_agent
from ajpq.search.baselines import baseline_policies
from ajpq.search.checkpoint import SearchState
from ajpq.search.controllers import LayerAction, build_policy, decode_action
from ajpq.search.cost import policy_cost
from ajpq.search.env import LayerEnv
from ajpq.search.episodes import Episodes
from ajpq.search.space import SearchSpace
from ajpq.search.start import encode_action, precision_start

FREE = Cost(latency_s=0.0, fps=float("inf"), count=0.0, unit="cycles")
LEARNED = SearchConfig(warmup_episodes=4)
LADDER = replace(LEARNED, channel_controller="ladder")


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    return SearchSpace.of(ajpq.models.skynet(0.125, (32, 64)))


def budget_of(space: SearchSpace, share: float) -> Budget:
    """``share`` of the space's 8-bit weight bytes."""
    eight = build_policy(space, {name: LayerAction(0.0, 8) for name in space.names}, LEARNED)
    return Budget(weight_bytes=int(policy_cost(space, eight, None).weight_bytes * share))


@pytest.mark.parametrize(
    ("config", "action"),
    [
        (LEARNED, LayerAction(0.0, (8, 5, 2))),
        (LEARNED, LayerAction(0.4, (6, 6, 3))),
        (LADDER, LayerAction(0.8, 7)),
        (LADDER, LayerAction(0.0, 2)),
    ],
)
def test_encode_action_is_the_inverse_of_decode_action(config, action) -> None:
    decoded = decode_action(encode_action(action, config), config)
    assert decoded.bits == action.bits
    assert decoded.sparsity == pytest.approx(action.sparsity, abs=1e-12)


def test_the_start_decodes_to_the_haq_baseline_policy(space) -> None:
    budget = budget_of(space, 0.4)
    start = precision_start(space, budget, LEARNED, lambda graph: FREE)
    assert start is not None
    actions = {n: decode_action(a, LEARNED) for n, a in zip(space.names, start, strict=True)}
    haq, feasible = baseline_policies(space, budget, LEARNED, lambda graph: FREE)["haq"]
    assert feasible
    assert build_policy(space, actions, LEARNED) == haq
    assert all(sparsity == 0.0 for sparsity in haq.sparsity().values())
    assert len({bits for lp in haq.layers.values() for bits in lp.weight_bits}) > 1


def test_no_start_when_no_precision_only_policy_fits(space) -> None:
    assert precision_start(space, budget_of(space, 0.05), LEARNED, lambda graph: FREE) is None


def first_policies(space: SearchSpace, tmp_path: Path, start: bool, count: int) -> list[Policy]:
    """The policies of a search's first ``count`` (warm-up) episodes, with or without the
    start, on a synthetic objective (no fine-tune)."""
    budget = budget_of(space, 0.4)
    setup = {
        "budget": budget, "config": LEARNED, "cost": lambda graph: FREE, "train": None,
        "val": None, "task": None, "seed": 0, "out_dir": tmp_path,
    }  # fmt: skip
    runner = Episodes(None, space, setup, objective=lambda policy: 0.0)  # type: ignore[arg-type]
    runner.state = SearchState("synthetic", 0.0)
    first = precision_start(space, budget, LEARNED, lambda graph: FREE) if start else None
    agent = make_agent(LayerEnv(space, runner.finish, LEARNED), LEARNED, 0, first)
    agent.learn(count * len(space.names))
    return [candidate.policy for candidate in runner.state.candidates]


def test_the_first_episode_plays_the_start_and_the_rest_of_the_warm_up_is_unchanged(
    space, tmp_path
) -> None:
    started = first_policies(space, tmp_path, True, 3)
    random = first_policies(space, tmp_path, False, 3)
    haq = baseline_policies(space, budget_of(space, 0.4), LEARNED, lambda graph: FREE)["haq"][0]
    first = started[0]
    assert all(sparsity == 0.0 for sparsity in first.sparsity().values())
    for name, layer in haq.layers.items():  # the wall's fill may only add bits
        assert np.all(np.asarray(first.layers[name].weight_bits) >= layer.weight_bits)
    assert started[0] != random[0]
    assert started[1:] == random[1:]
