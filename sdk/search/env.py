"""The layer controller's environment (gymnasium): one step per quantizable layer.

State: HAQ's per-layer features (index, in/out channels, stride, kernel, depthwise flag,
weights, input feature-map size; each scaled to [0, 1]) and the previous layer's action.
Action in [-1, 1]^n (``controllers.action_size``): sparsity, then the precision (ladder) or
each importance quantile's bits (learned channel controller). The reward, given at the last
layer only, comes from ``finish``: it applies the channel controller and the action wall,
fine-tunes and scores.
"""

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

from ajpq.search.budget import SearchConfig
from ajpq.search.controllers import action_size
from ajpq.search.space import SearchSpace

Finish = Callable[[list[np.ndarray]], float]


class LayerEnv(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, space: SearchSpace, finish: Finish, config: SearchConfig) -> None:
        self.space = space
        self.finish = finish
        size = action_size(config)
        features = space.features.shape[1] + size  # static features + the previous action
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, (features,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (size,), np.float32)
        self.actions: list[np.ndarray] = []

    def _observation(self) -> np.ndarray:
        index = min(len(self.actions), len(self.space.specs) - 1)
        size = self.action_space.shape[0]
        previous = (self.actions[-1] + 1.0) / 2.0 if self.actions else np.zeros(size)
        row = np.concatenate([self.space.features[index], previous])
        return row.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.actions = []
        return self._observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.actions.append(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0))
        if len(self.actions) < len(self.space.specs):
            return self._observation(), 0.0, False, False, {}
        reward = float(self.finish(list(self.actions)))
        return self._observation(), reward, True, False, {}
