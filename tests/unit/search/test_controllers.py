from dataclasses import replace

import numpy as np
import pytest
import torch
from rich.console import Console

import ajpq
from ajpq.backends.mcu.estimate import FEATURES, default_table, estimate, evidence, fit_table
from ajpq.search import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.candidates import Candidate
from ajpq.search.controllers import (
    LayerAction,
    action_size,
    action_wall,
    build_policy,
    decode_action,
    ladder,
    lowered,
    raised,
)
from ajpq.search.cost import cost_model, policy_cost
from ajpq.search.pareto import report_table
from ajpq.search.space import SearchSpace, shadow_graph

SIZE = (32, 64)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ajpq.models.skynet(0.125, SIZE)


@pytest.fixture(scope="module")
def space(model: torch.nn.Module) -> SearchSpace:
    return SearchSpace.of(model)


def test_channel_controller_is_from_sparsity_with_per_layer_bits(model, space) -> None:
    config = SearchConfig()
    sparsity = {name: 0.1 * (i % 5) for i, name in enumerate(space.names)}
    actions = {name: LayerAction(sparsity[name], 8) for name in space.names}
    assert ladder(8, config) == (8, 6, 4)
    expected = ajpq.Policy.from_sparsity(model, sparsity, bits=[8, 6, 4])
    assert build_policy(space, actions, config).layers == expected.layers


def test_shadow_graph_costs_what_the_lowered_graph_costs(model, space) -> None:
    policy = ajpq.Policy.from_sparsity(model, 0.4, bits=[6, 4, 2])
    lowered = ajpq.lower(ajpq.quantize(model, policy)).summary()
    shadow = shadow_graph(space, policy).summary()
    for key in ("weight_bytes", "bops", "macs", "params"):
        assert shadow[key] == lowered[key]


def test_action_wall_fits_a_hand_policy_lowering_the_last_layers_first(space) -> None:
    config = SearchConfig(fill_budget=False)  # the fill would give the head its bit back
    actions = {name: LayerAction(0.0, 8) for name in space.names}
    full = policy_cost(space, build_policy(space, actions, config), None)
    budget = Budget(weight_bytes=int(full.weight_bytes * 0.9))
    walled, policy, cost = action_wall(space, actions, budget, config, None)
    assert cost.weight_bytes <= budget.weight_bytes
    assert cost.weight_bytes == policy_cost(space, policy, None).weight_bytes
    assert walled["head"].top_bits == 7  # one sweep from the last layer back
    assert walled[space.names[0]] == actions[space.names[0]]  # first layer untouched


def test_action_wall_meets_a_latency_budget_and_refuses_an_impossible_one(space) -> None:
    config = SearchConfig()
    latency = cost_model("mcu", "qemu-mps2-an386")
    actions = {name: LayerAction(0.0, 8) for name in space.names}
    full = policy_cost(space, build_policy(space, actions, config), latency)
    budget = Budget(latency=full.latency * 0.8)
    _, _, cost = action_wall(space, actions, budget, config, latency)
    assert cost.latency <= budget.latency
    with pytest.raises(BudgetInfeasible):
        action_wall(space, actions, Budget(weight_bytes=10), config, None)


def test_estimate_counts_are_positive_and_grow_with_macs() -> None:
    counts, macs = [], []
    for width in (0.125, 0.25):
        model = ajpq.models.skynet(width, SIZE)
        policy = ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 6, 4])
        graph = shadow_graph(SearchSpace.of(model), policy)
        cost = estimate(graph, "qemu-mps2-an386")
        assert cost.count > 0 and cost.latency_s > 0 and cost.flash_bytes > 0
        assert all(layer["count"] > 0 for layer in cost.per_layer.values() if layer["work"])
        counts.append(cost.count)
        macs.append(graph.summary()["macs"])
    assert macs[1] > macs[0] and counts[1] > counts[0]


def test_fit_table_recovers_the_table_that_made_the_counts(space, model) -> None:
    truth = default_table()
    truth["pointwise"] = [1.1, 0.9, 13.0, 22.0, 45.0, 55.0, 300.0]
    truth["depthwise3x3"] = [7.2, 0.0, 0.0, 2.0, 12.0, 20.0, 150.0]
    truth["decode"] = [17.0]
    assert len(truth["pointwise"]) == len(FEATURES)
    rows = []
    for sparsity, bits in ((0.0, [8]), (0.2, [2]), (0.5, [4, 3, 2]), (0.7, [8, 2])):
        graph = shadow_graph(space, ajpq.Policy.from_sparsity(model, sparsity, bits=bits))
        layers = list(estimate(graph, "qemu-mps2-an386", truth).per_layer.values())
        counts = np.array([x["count"] for x in layers])
        rows += evidence(graph, counts, np.array([x["decode"] for x in layers]))
    fitted = fit_table(rows)
    held_out = shadow_graph(space, ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 6, 4]))
    expected = estimate(held_out, "qemu-mps2-an386", truth).count
    assert estimate(held_out, "qemu-mps2-an386", fitted).count == pytest.approx(expected)
    assert fitted["decode"] == pytest.approx([17.0])
    assert fitted["maxpool"] == pytest.approx(truth["maxpool"], abs=1e-9)


LEARNED = SearchConfig(channel_controller="learned")
LADDER = SearchConfig(channel_controller="ladder")


def test_learned_decode_sorts_the_quantile_bits_within_the_range() -> None:
    assert action_size(LEARNED) == 4 and action_size(LADDER) == 2
    assert decode_action(np.array([-1.0, 1.0, -1.0, 0.0]), LEARNED) == LayerAction(0.0, (8, 5, 2))
    clipped = decode_action(np.array([2.0, -3.0, 0.2, 0.9]), LEARNED)
    assert clipped == LayerAction(0.8, (8, 6, 2))
    assert decode_action(np.array([0.0, 0.0]), LADDER) == LayerAction(0.4, 5)
    with pytest.raises(ajpq.AjpqError, match="channel_controller"):
        action_size(SearchConfig(channel_controller="fixed"))


def test_learned_bits_go_to_the_importance_quantiles_most_important_first(model, space) -> None:
    sparsity = {name: 0.1 * (i % 5) for i, name in enumerate(space.names)}
    actions = {name: LayerAction(sparsity[name], (8, 3, 2)) for name in space.names}
    expected = ajpq.Policy.from_sparsity(model, sparsity, bits=[8, 3, 2])
    assert build_policy(space, actions, LEARNED).layers == expected.layers


def test_one_step_cheaper_and_one_bit_richer() -> None:
    assert lowered(LayerAction(0.0, (8, 8, 4)), True, LEARNED) == LayerAction(0.0, (8, 7, 4))
    assert lowered(LayerAction(0.75, (2, 2, 2)), True, LEARNED) == LayerAction(0.8, (2, 2, 2))
    assert lowered(LayerAction(0.0, (2, 2, 2)), False, LEARNED) is None
    assert lowered(LayerAction(0.0, 3), True, LADDER) == LayerAction(0.0, 2)
    assert raised(LayerAction(0.3, (8, 3, 3)), LEARNED) == LayerAction(0.3, (8, 4, 3))
    assert raised(LayerAction(0.3, (8, 8, 8)), LEARNED) is None
    assert raised(LayerAction(0.3, 7), LADDER) == LayerAction(0.3, 8)
    assert raised(LayerAction(0.3, 8), LADDER) is None


def one_step_wall(space, actions, budget, config) -> dict:
    """The wall as specified, one cost check per step: the bisected one must equal it."""
    actions = dict(actions)

    def fits(chosen: dict) -> bool:
        return budget.fits(policy_cost(space, build_policy(space, chosen, config), None))

    while not fits(actions):
        for name in reversed(space.names):
            actions[name] = lowered(actions[name], space.prunable(name), config) or actions[name]
            if fits(actions):
                break
    changed = config.fill_budget
    while changed:
        changed = False
        for name in space.names:
            richer = raised(actions[name], config)
            if richer is not None and fits({**actions, name: richer}):
                actions[name], changed = richer, True
    return actions


@pytest.mark.parametrize("config", [LEARNED, LADDER, replace(LEARNED, fill_budget=False)])
def test_bisected_wall_equals_the_one_step_wall(space, config) -> None:
    generator = np.random.default_rng(0)
    full = policy_cost(space, build_policy(space, {n: LayerAction(0.0, 8) for n in space.names},
                                           config), None).weight_bytes  # fmt: skip
    for share in (0.3, 0.6, 0.9):
        budget = Budget(weight_bytes=int(full * share))
        actions = {
            name: decode_action(generator.uniform(-1, 1, action_size(config)), config)
            for name in space.names
        }
        walled, _, cost = action_wall(space, actions, budget, config, None)
        assert walled == one_step_wall(space, actions, budget, config)
        assert cost.weight_bytes <= budget.weight_bytes


@pytest.mark.parametrize(("config", "filled"), [(LEARNED, 2012), (LADDER, 1979)])
def test_fill_leaves_no_layer_that_one_more_bit_would_still_fit(space, config, filled) -> None:
    cheapest = decode_action(-np.ones(action_size(config)), config)  # 2 bits, nothing pruned
    start = {name: replace(cheapest, sparsity=0.5) for name in space.names}
    full = policy_cost(space, build_policy(space, {n: LayerAction(0.0, 8) for n in space.names},
                                           config), None).weight_bytes  # fmt: skip
    budget = Budget(weight_bytes=int(full * 0.3))
    unfilled = action_wall(space, start, budget, replace(config, fill_budget=False), None)
    walled, policy, cost = action_wall(space, start, budget, config, None)
    assert unfilled[0] == start  # it fitted already: only the fill changes it
    assert cost.weight_bytes > unfilled[2].weight_bytes
    assert budget.weight_bytes == 2012 and cost.weight_bytes == filled  # learned: to the byte
    for name in space.names:
        richer = raised(walled[name], config)
        if richer is not None:
            trial = build_policy(space, {**walled, name: richer}, config)
            assert not budget.fits(policy_cost(space, trial, None)), name
    assert all(all(b <= config.max_bits for b in lp.weight_bits) for lp in policy.layers.values())


def test_a_free_budget_is_not_filled(space) -> None:
    start = {name: LayerAction(0.2, (5, 4, 2)) for name in space.names}
    walled, _, _ = action_wall(space, start, Budget(), LEARNED, None)
    assert walled == start


def test_budget_use_is_saved_shown_and_optional(model) -> None:
    policy = ajpq.Policy.uniform(model)
    use = {"weight_bytes": 0.95, "latency": 0.5}
    candidate = Candidate(policy, 0.5, 100, 10, 0.001, budget_use=use)
    assert Candidate.from_dict(candidate.to_dict()) == candidate
    old = {k: v for k, v in candidate.to_dict().items() if k != "budget_use"}
    assert Candidate.from_dict(old).budget_use == {}
    console = Console(width=200, record=True)
    console.print(report_table([candidate], []))
    assert "95% weight_bytes" in console.export_text()
