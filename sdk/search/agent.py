"""The layer controller: stable-baselines3's DDPG or TD3, trained as HAQ and AMC train theirs.

- Every step of an episode learns from the episode's reward (``EpisodeRewardBuffer``): the
  reward comes only after the last layer, and with stable-baselines3's one-step targets the
  early layers would learn it only through the critic's own bootstrapped guesses. Each step's
  target is the episode's reward itself, as AMC and HAQ store it.
- Rewards are standardized over the buffer when sampled (AMC/HAQ subtract a moving average):
  accuracy differences of 0.001-0.03 are far below the critic's initial outputs.
- The actor learns 10x slower than the critic (HAQ: 1e-4 and 1e-3), so it follows what the
  critic has learned, not its initial noise.

Without these, the actor after the warm-up ran to a corner of the action box that its initial
critic happened to favour: in a 16-episode search on the bench, every layer at the largest
sparsity and the reward collapsing (docs/search.md).
"""

from typing import Any

import numpy as np
import torch
from stable_baselines3 import DDPG, TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from ajpq.errors import AjpqError
from ajpq.search.budget import SearchConfig
from ajpq.search.start import starting_with


class EpisodeRewardBuffer(ReplayBuffer):
    """A replay buffer that holds an episode's steps until it ends, then stores each of them
    with the episode's reward as a final (done) step; samples standardized rewards. In a
    farm round (a VecEnv) each of the K columns gets its own episode's reward."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]] = []

    def add(
        self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
        done: np.ndarray, infos: list[dict[str, Any]],
    ) -> None:  # fmt: skip
        self.pending.append((np.copy(obs), np.copy(next_obs), np.copy(action), infos))
        if not np.any(done):
            return
        if not np.all(done):
            raise AjpqError("the episodes of a round must end on the same step")
        for step_obs, step_next, step_action, step_infos in self.pending:
            super().add(step_obs, step_next, step_action, reward, done, step_infos)
        self.pending = []

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Any:
        samples: ReplayBufferSamples = super()._get_samples(batch_inds, env)
        stored = self.rewards[: self.buffer_size if self.full else self.pos]
        mean, std = float(stored.mean()), float(stored.std())
        rewards = (samples.rewards - mean) / max(std, 1e-8)
        return samples._replace(rewards=rewards.to(torch.float32))


class ActorRate:
    """Mixin: the actor's optimizer runs at ``actor_rate``, the critic's at the agent's
    ``learning_rate``."""

    actor_rate: float | None = None

    def _update_learning_rate(self, optimizers: Any) -> None:
        super()._update_learning_rate(optimizers)  # type: ignore[misc]
        if self.actor_rate is not None:
            for group in self.actor.optimizer.param_groups:  # type: ignore[attr-defined]
                group["lr"] = self.actor_rate


class LayerDDPG(ActorRate, DDPG):
    pass


class LayerTD3(ActorRate, TD3):
    pass


AGENTS: dict[str, type] = {"ddpg": LayerDDPG, "td3": LayerTD3}


def agent_class(config: SearchConfig) -> type:
    if config.agent not in AGENTS:
        raise AjpqError(f"unknown agent '{config.agent}'; choose one of {sorted(AGENTS)}")
    return AGENTS[config.agent]


def make_agent(
    env: Any, config: SearchConfig, seed: int, start: list[np.ndarray] | None = None
) -> Any:
    """The layer controller for a LayerEnv, or for a farm's RoundEnv (K episodes a round,
    all learnt from: it trains after each round's ``layers`` steps); its first episode plays
    ``start`` when given (``start.precision_start``)."""
    base = agent_class(config)
    rounds = isinstance(env, VecEnv)
    space = env.get_attr("space")[0] if rounds else env.space
    layers = len(space.specs)
    size = env.action_space.shape[0]  # sparsity + precision, or + each quantile's bits
    agent = (base if start is None else starting_with(base, start))(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=100_000,
        replay_buffer_class=EpisodeRewardBuffer,
        learning_starts=config.warmup_episodes * layers,
        batch_size=config.batch_size,
        tau=0.01,
        gamma=1.0,
        train_freq=(layers, "step") if rounds else (1, "episode"),
        gradient_steps=-1,
        action_noise=NormalActionNoise(np.zeros(size), config.noise_sigma * np.ones(size)),
        policy_kwargs={"net_arch": [300, 300]},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    agent.actor_rate = config.actor_learning_rate
    return quiet(agent)


def load_agent(path: Any, env: Any, config: SearchConfig) -> Any:
    """A checkpointed layer controller (its actor rate and buffer class come with it)."""
    return quiet(agent_class(config).load(path, env=env, device="cpu"))


def quiet(agent: Any) -> Any:
    """No stable-baselines3 log output (its default logger also makes a folder in /tmp)."""
    agent.set_logger(Logger(folder=None, output_formats=[]))
    return agent
