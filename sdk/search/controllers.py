"""AJPQ's two controllers and the action wall.

The layer controller (the RL agent, see ``ajpq.py``) gives each layer a ``LayerAction``: its
sparsity and its kept channels' bits. The channel controller turns that into per-channel
bit-widths with the one importance criterion: the least important ``sparsity`` share of
channels gets 0 bits (pruned), the kept ones split into importance quantiles, a more important
quantile never getting fewer bits than a less important one (``Policy.from_sparsity`` with
per-layer bits). ``SearchConfig.channel_controller`` says who sets the quantiles' bits:
"learned", the agent (one bit action per quantile, sorted); "ladder", a fixed ladder
``top, top - bit_step, ...`` from one precision action.

The action wall then lowers bits and raises sparsity, last layers first, until the policy
fits the budget, so every evaluated policy fits; with ``fill_budget`` it then raises bits,
first layer to last, wherever the budget is left (HAQ and AMC do both).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ajpq.errors import AjpqError
from ajpq.quant.policy import LayerPolicy, Policy, quantile_bits
from ajpq.search.budget import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.cost import CostModel, PolicyCost, policy_cost
from ajpq.search.space import SearchSpace

CHANNEL_CONTROLLERS = ("learned", "ladder")
Actions = dict[str, "LayerAction"]
Check = Callable[[Actions], tuple[Policy, PolicyCost, bool]]


@dataclass(frozen=True)
class LayerAction:
    """One layer's decision. ``bits`` is the ladder's top bit-width (an int: the quantiles get
    ``ladder(bits)``) or each importance quantile's bits, most important first, never
    increasing (a tuple: the learned channel controller)."""

    sparsity: float  # share of output channels pruned (ignored for depthwise / output layers)
    bits: int | tuple[int, ...]

    @property
    def top_bits(self) -> int:
        """The most important quantile's bit-width."""
        return self.bits if isinstance(self.bits, int) else max(self.bits)

    def quantile_bits(self, config: SearchConfig) -> tuple[int, ...]:
        """The bit-width of each importance quantile, most important first."""
        return ladder(self.bits, config) if isinstance(self.bits, int) else self.bits


def ladder(top_bits: int, config: SearchConfig) -> tuple[int, ...]:
    """Bit-widths of the importance quantiles, most important first: top, top-step, ..."""
    return tuple(
        max(config.min_bits, top_bits - i * config.bit_step) for i in range(config.quantiles)
    )


def channel_bits(importance: np.ndarray, sparsity: float, bits: tuple[int, ...]) -> np.ndarray:
    """The channel controller for one layer: 0 for the pruned, ``bits`` by importance quantile."""
    return quantile_bits(importance, sparsity, bits)


def build_policy(space: SearchSpace, actions: Actions, config: SearchConfig) -> Policy:
    layers = {}
    for spec in space.specs:
        action = actions[spec.name]
        share = action.sparsity if space.prunable(spec.name) else 0.0
        bits = action.quantile_bits(config)
        chosen = channel_bits(space.importance[spec.name], share, bits)
        layers[spec.name] = LayerPolicy(tuple(int(b) for b in chosen), config.act_bits)
    return Policy(layers).validated(space.specs)


def action_size(config: SearchConfig) -> int:
    """The agent's action per layer: sparsity, then one precision (ladder) or one bit-width
    per importance quantile (learned)."""
    if config.channel_controller not in CHANNEL_CONTROLLERS:
        raise AjpqError(
            f"unknown channel_controller '{config.channel_controller}'; choose one of "
            f"{list(CHANNEL_CONTROLLERS)}"
        )
    return 1 + (config.quantiles if config.channel_controller == "learned" else 1)


def decode_action(raw: np.ndarray, config: SearchConfig) -> LayerAction:
    """An agent action in [-1, 1]^n -> sparsity in [0, max_sparsity] and bits in
    [min_bits, max_bits]: the ladder's top bits, or (learned) the quantiles' bits sorted so
    that the importance ranking decides who gets the most."""
    unit = (np.clip(np.asarray(raw, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
    bits = np.rint(config.min_bits + unit[1:] * (config.max_bits - config.min_bits))
    sparsity = float(unit[0] * config.max_sparsity)
    if config.channel_controller == "ladder":
        return LayerAction(sparsity, int(bits[0]))
    return LayerAction(sparsity, tuple(int(b) for b in sorted(bits, reverse=True)))


def lowered(action: LayerAction, prunable: bool, config: SearchConfig) -> LayerAction | None:
    """One step cheaper, or None at the cheapest: the largest quantile bits minus one (ties:
    the least important; the ladder: its top), else ``sparsity_step`` more sparsity."""
    bits = action.bits
    if isinstance(bits, int) and bits > config.min_bits:
        return replace(action, bits=bits - 1)
    if isinstance(bits, tuple) and max(bits) > config.min_bits:
        index = len(bits) - 1 - bits[::-1].index(max(bits))
        return replace(action, bits=bits[:index] + (bits[index] - 1,) + bits[index + 1 :])
    if prunable and action.sparsity < config.max_sparsity - 1e-9:
        return replace(
            action, sparsity=min(config.max_sparsity, action.sparsity + config.sparsity_step)
        )
    return None


def raised(action: LayerAction, config: SearchConfig) -> LayerAction | None:
    """One bit more, or None at ``max_bits``: the smallest quantile bits plus one (ties: the
    most important, so the bits stay sorted; the ladder: its top)."""
    bits = action.bits
    if isinstance(bits, int):
        return replace(action, bits=bits + 1) if bits < config.max_bits else None
    index = bits.index(min(bits))
    if bits[index] >= config.max_bits:
        return None
    return replace(action, bits=bits[:index] + (bits[index] + 1,) + bits[index + 1 :])


def limited(budget: Budget) -> bool:
    """Whether ``budget`` limits anything (filling a free budget would put every bit at max)."""
    limits = (budget.weight_bytes, budget.latency, budget.bops, budget.fps)
    return budget.board_fit or any(limit is not None for limit in limits)


def action_wall(
    space: SearchSpace,
    actions: Actions,
    budget: Budget,
    config: SearchConfig,
    cost: CostModel | None,
) -> tuple[Actions, Policy, PolicyCost]:
    """Make ``actions`` fit ``budget``: sweep from the last layer to the first, making each
    layer one step cheaper (``lowered``: bits first, then sparsity), until the policy fits.
    With ``config.fill_budget`` (and a budget that limits something), then give the budget
    left back as bits (``fill``). Returns the walled actions, their policy and its cost."""
    model = cost if budget.needs_estimate else None

    def check(chosen: Actions) -> tuple[Policy, PolicyCost, bool]:
        policy = build_policy(space, chosen, config)
        found = policy_cost(space, policy, model)
        return policy, found, budget.fits(found)

    actions, policy, found = lower_until_fit(space, dict(actions), budget, config, check)
    if config.fill_budget and limited(budget):
        actions, policy, found = fill(space, actions, config, check, (policy, found))
    return actions, policy, found


def walk_from_top(
    space: SearchSpace, budget: Budget, config: SearchConfig, cost: CostModel | None
) -> tuple[Actions, Policy]:
    """The action wall from every layer at ``max_bits``, nothing pruned: the walk of the
    HAQ-like and AMC-like baselines and of the search's precision start. Raises
    BudgetInfeasible when even its cheapest step does not fit."""
    top = {name: LayerAction(0.0, config.max_bits) for name in space.names}
    walked, policy, _ = action_wall(space, top, budget, config, cost)
    return walked, policy


def lower_until_fit(
    space: SearchSpace, actions: Actions, budget: Budget, config: SearchConfig, check: Check
) -> tuple[Actions, Policy, PolicyCost]:
    """The wall proper: passes from the last layer to the first, one step cheaper per layer,
    until the policy fits. The steps do not depend on the cost, so the first fitting one is
    found by bisection: ~10 cost checks instead of one per step, the same policy wherever the
    cost falls with every step (bytes and BOPs always; the latency estimate almost always)."""
    policy, found, fits = check(actions)
    if fits:
        return actions, policy, found
    steps = cheaper_steps(space, actions, config)
    policy, found, fits = check(steps[-1])
    if not fits:
        raise BudgetInfeasible(infeasible_message(found, budget, config))
    over, under = 0, len(steps) - 1  # steps[over] does not fit, steps[under] does
    while under - over > 1:
        middle = (over + under) // 2
        trial_policy, trial_cost, fits = check(steps[middle])
        if fits:
            under, policy, found = middle, trial_policy, trial_cost
        else:
            over = middle
    return steps[under], policy, found


def cheaper_steps(space: SearchSpace, actions: Actions, config: SearchConfig) -> list[Actions]:
    """``actions``, then every state the wall passes through, one ``lowered`` layer at a time
    (last layer first, pass after pass), down to the cheapest."""
    steps = [dict(actions)]
    changed = True
    while changed:
        changed = False
        for name in reversed(space.names):
            cheaper = lowered(steps[-1][name], space.prunable(name), config)
            if cheaper is not None:
                steps.append({**steps[-1], name: cheaper})
                changed = True
    return steps


def fill(
    space: SearchSpace,
    actions: Actions,
    config: SearchConfig,
    check: Check,
    fitted: tuple[Policy, PolicyCost],
) -> tuple[Actions, Policy, PolicyCost]:
    """Spend the budget left: passes from the first layer to the last, one bit more
    (``raised``) for each layer where the policy still fits, until a pass changes nothing.
    A layer whose raise does not fit is not tried again (the others only gain bits)."""
    full: set[str] = set()
    state = (actions, *fitted)
    while True:
        queue = [name for name in space.names if name not in full]
        full.update(name for name in queue if raised(state[0][name], config) is None)
        queue = [name for name in queue if name not in full]
        before = state[0]
        while queue:
            state, failed = raise_pass(queue, state, config, check)
            if failed is not None:
                full.add(queue[failed])
            queue = [] if failed is None else queue[failed + 1 :]
        if state[0] == before:
            return state


def raise_pass(
    queue: list[str],
    state: tuple[Actions, Policy, PolicyCost],
    config: SearchConfig,
    check: Check,
) -> tuple[tuple[Actions, Policy, PolicyCost], int | None]:
    """Raise ``queue``'s layers in order, each where it still fits: the state after the longest
    prefix that fits (bisected: a few cost checks, not one per layer) and the index of the
    first raise that does not fit (None: all fit)."""

    def prefix(count: int) -> Actions:
        chosen = dict(state[0])
        for name in queue[:count]:
            chosen[name] = raised(chosen[name], config)  # type: ignore[assignment]
        return chosen

    policy, found, fits = check(prefix(len(queue)))
    if fits:
        return (prefix(len(queue)), policy, found), None
    fitting, over = 0, len(queue)  # prefix(fitting) fits, prefix(over) does not
    best = state
    while over - fitting > 1:
        middle = (fitting + over) // 2
        policy, found, fits = check(prefix(middle))
        if fits:
            fitting, best = middle, (prefix(middle), policy, found)
        else:
            over = middle
    return best, fitting


def check_feasible(
    space: SearchSpace, budget: Budget, config: SearchConfig, cost: CostModel | None
) -> None:
    """Raise ``BudgetInfeasible`` unless the cheapest policy of the space fits ``budget``."""
    cheapest = {name: LayerAction(config.max_sparsity, config.min_bits) for name in space.names}
    action_wall(space, cheapest, budget, replace(config, fill_budget=False), cost)


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
