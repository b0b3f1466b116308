import pytest
import torch

import ajpq
from ajpq.search import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.controllers import LayerAction, build_policy, check_feasible
from ajpq.search.cost import policy_cost
from ajpq.search.space import SearchSpace

SIZE = (32, 64)


def test_an_impossible_budget_names_the_smallest_achievable_cost() -> None:
    torch.manual_seed(0)
    space = SearchSpace.of(ajpq.models.skynet(0.125, SIZE))
    config = SearchConfig()
    cheapest = {n: LayerAction(config.max_sparsity, config.min_bits) for n in space.names}
    smallest = policy_cost(space, build_policy(space, cheapest, config), None).weight_bytes
    with pytest.raises(BudgetInfeasible) as caught:
        check_feasible(space, Budget(weight_bytes=10), config, None)
    assert str(caught.value) == (
        f"the smallest policy in the search space (2 bits, sparsity 0.8) needs {smallest:,} "
        "weight bytes but the budget is 10; raise the budget or widen the search space "
        "(SearchConfig.min_bits, max_sparsity)"
    )
    check_feasible(space, Budget(weight_bytes=smallest), config, None)  # exactly fits
