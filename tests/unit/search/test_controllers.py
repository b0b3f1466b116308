import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends.mcu.estimate import FEATURES, default_table, estimate, evidence, fit_table
from ajpq.search import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.controllers import LayerAction, action_wall, build_policy, ladder
from ajpq.search.cost import cost_model, policy_cost
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
    config = SearchConfig()
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
