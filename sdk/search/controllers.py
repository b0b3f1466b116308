"""AJPQ's two controllers and the action wall.

Layer controller (the RL agent, see ``ajpq.py``) gives each layer a ``LayerAction``: its
sparsity and a precision level. The channel controller turns that into per-channel bit-widths
with the same importance criterion: the least important ``sparsity`` share of channels gets
0 bits (pruned), the kept ones split into importance quantiles, the most important getting
the most bits (``ladder``). This is exactly ``Policy.from_sparsity`` with per-layer bits.
The action wall then lowers bits and raises sparsity, last layers first, until the policy
fits the budget, so every evaluated policy fits.
"""

from dataclasses import dataclass, replace

import numpy as np

from ajpq.quant.policy import LayerPolicy, Policy, quantile_bits
from ajpq.search.budget import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.cost import CostModel, PolicyCost, policy_cost
from ajpq.search.space import SearchSpace


@dataclass(frozen=True)
class LayerAction:
    sparsity: float  # share of output channels pruned (ignored for depthwise / output layers)
    top_bits: int  # bit-width of the most important quantile


def ladder(top_bits: int, config: SearchConfig) -> tuple[int, ...]:
    """Bit-widths of the importance quantiles, most important first: top, top-step, ..."""
    return tuple(
        max(config.min_bits, top_bits - i * config.bit_step) for i in range(config.quantiles)
    )


def channel_bits(importance: np.ndarray, sparsity: float, bits: tuple[int, ...]) -> np.ndarray:
    """The channel controller for one layer: 0 for the pruned, ``bits`` by importance quantile."""
    return quantile_bits(importance, sparsity, bits)


def build_policy(
    space: SearchSpace, actions: dict[str, LayerAction], config: SearchConfig
) -> Policy:
    layers = {}
    for spec in space.specs:
        action = actions[spec.name]
        share = action.sparsity if space.prunable(spec.name) else 0.0
        chosen = channel_bits(space.importance[spec.name], share, ladder(action.top_bits, config))
        layers[spec.name] = LayerPolicy(tuple(int(b) for b in chosen), config.act_bits)
    return Policy(layers).validated(space.specs)


def decode_action(raw: np.ndarray, config: SearchConfig) -> LayerAction:
    """An agent action in [-1, 1]^2 -> (sparsity in [0, max_sparsity], top bits)."""
    unit = (np.clip(np.asarray(raw, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
    top = config.min_bits + unit[1] * (config.max_bits - config.min_bits)
    return LayerAction(float(unit[0] * config.max_sparsity), int(round(top)))


def action_wall(
    space: SearchSpace,
    actions: dict[str, LayerAction],
    budget: Budget,
    config: SearchConfig,
    cost: CostModel | None,
) -> tuple[dict[str, LayerAction], Policy, PolicyCost]:
    """Make ``actions`` fit ``budget``: sweep from the last layer to the first, lowering a
    layer's bits by one (down to ``min_bits``), then raising its sparsity by
    ``sparsity_step`` (up to ``max_sparsity``); re-check after every change."""
    actions = dict(actions)
    model = cost if budget.needs_estimate else None

    def check() -> tuple[Policy, PolicyCost, bool]:
        policy = build_policy(space, actions, config)
        found = policy_cost(space, policy, model)
        return policy, found, budget.fits(found)

    policy, found, fits = check()
    while not fits:
        changed = False
        for name in reversed(space.names):
            action = actions[name]
            if action.top_bits > config.min_bits:
                actions[name] = replace(action, top_bits=action.top_bits - 1)
            elif space.prunable(name) and action.sparsity < config.max_sparsity - 1e-9:
                sparsity = min(config.max_sparsity, action.sparsity + config.sparsity_step)
                actions[name] = replace(action, sparsity=sparsity)
            else:
                continue
            changed = True
            policy, found, fits = check()
            if fits:
                break
        if not changed:
            raise BudgetInfeasible(infeasible_message(found, budget, config))
    return actions, policy, found


def check_feasible(
    space: SearchSpace, budget: Budget, config: SearchConfig, cost: CostModel | None
) -> None:
    """Raise ``BudgetInfeasible`` unless the cheapest policy of the space fits ``budget``."""
    cheapest = {name: LayerAction(config.max_sparsity, config.min_bits) for name in space.names}
    action_wall(space, cheapest, budget, config, cost)


def infeasible_message(smallest: PolicyCost, budget: Budget, config: SearchConfig) -> str:
    needs = {
        "weight bytes": (smallest.weight_bytes, budget.weight_bytes, "{:,}", 1),
        "seconds of latency": (smallest.latency, budget.latency, "{:.4g}", 1),
        "BOPs": (smallest.bops, budget.bops, "{:,}", 1),
        "fps": (smallest.fps, budget.fps, "{:,.1f}", -1),  # a floor, not a ceiling
    }
    over = [
        (f"{form.format(value)} {unit}", form.format(limit))
        for unit, (value, limit, form, sign) in needs.items()
        if limit is not None and sign * value > sign * limit
    ]
    if budget.board_fit and not smallest.board_fit:
        over.append((f"more {', '.join(smallest.over)} than the board has", "the board's"))
    return (
        f"the smallest policy in the search space ({config.min_bits} bits, sparsity "
        f"{config.max_sparsity}) needs {' and '.join(value for value, _ in over)} but the "
        f"budget is {' and '.join(limit for _, limit in over)}; raise the budget or widen "
        "the search space (SearchConfig.min_bits, max_sparsity)"
    )
