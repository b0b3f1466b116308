"""The search's first episode (``SearchConfig.precision_start``): instead of a random warm-up
action, the agent plays HAQ's per-layer precision, the action wall walked down from
``max_bits`` with nothing pruned and one bit-width per layer, encoded in the search's own
action space. The search so starts from the policy a precision-only search reaches and
explores pruning and per-channel bits from there; with short fine-tunes, random pruning
policies rarely come close to it (docs/search.md). The replay buffer stores the action as
played, and the random draws are still made, so every later warm-up episode is the same as
without the start.
"""

from dataclasses import replace
from typing import Any

import numpy as np

from ajpq.search.budget import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.controllers import LayerAction, walk_from_top
from ajpq.search.cost import CostModel
from ajpq.search.space import SearchSpace


def encode_action(action: LayerAction, config: SearchConfig) -> np.ndarray:
    """The raw agent action in [-1, 1]^n that ``controllers.decode_action`` turns back into
    ``action`` (an int ``bits`` gives every learned quantile that bit-width)."""
    span = config.max_bits - config.min_bits
    count = config.quantiles if config.channel_controller == "learned" else 1
    bits = [action.bits] * count if isinstance(action.bits, int) else list(action.bits)
    sparsity = action.sparsity / config.max_sparsity if config.max_sparsity > 0 else 0.0
    unit = np.array([sparsity, *[(b - config.min_bits) / span for b in bits]])
    return np.clip(2.0 * unit - 1.0, -1.0, 1.0)


def precision_start(
    space: SearchSpace, budget: Budget, config: SearchConfig, cost: CostModel
) -> list[np.ndarray] | None:
    """The first episode's raw actions, one per layer; None when no precision-only policy
    meets the budget (the first episode is then random like the rest of the warm-up)."""
    precision_only = replace(config, max_sparsity=0.0, quantiles=1)
    try:
        walked, _ = walk_from_top(space, budget, precision_only, cost)
    except BudgetInfeasible:
        return None
    return [encode_action(walked[name], config) for name in space.names]


def starting_with(agent_class: type, start: list[np.ndarray]) -> type:
    """``agent_class`` (an stable-baselines3 off-policy agent) whose first episode plays
    ``start`` (one action per layer; in a farm round, the round's first episode)."""

    class Starting(agent_class):  # type: ignore[misc, valid-type]
        def _sample_action(
            self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
        ) -> tuple[np.ndarray, np.ndarray]:
            action, stored = super()._sample_action(learning_starts, action_noise, n_envs)
            step = self.num_timesteps // n_envs
            if step < len(start):
                action, stored = action.copy(), stored.copy()
                action[0] = stored[0] = start[step]  # bounds are [-1, 1]: the same values
            return action, stored

    Starting.__name__ = Starting.__qualname__ = f"Starting{agent_class.__name__}"
    return Starting
