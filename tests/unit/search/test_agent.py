"""The layer controller learns as HAQ/AMC train theirs (search/agent.py): each step of an
episode stores the episode's reward as a final step, rewards are standardized when sampled,
the actor runs at its own rate; and after the warm-up the actor moves the way the rewards
point for every seed, instead of to whichever corner its initial critic favoured."""

import numpy as np
import pytest
import torch

import ajpq
from ajpq.search import SearchConfig
from ajpq.search.agent import EpisodeRewardBuffer, make_agent
from ajpq.search.env import LayerEnv
from ajpq.search.space import SearchSpace

CONFIG = SearchConfig(warmup_episodes=8)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    return SearchSpace.of(ajpq.models.skynet(0.125, (32, 64)))


def buffer(space: SearchSpace, columns: int = 1) -> EpisodeRewardBuffer:
    env = LayerEnv(space, lambda actions: 0.0, CONFIG)
    return EpisodeRewardBuffer(100, env.observation_space, env.action_space, n_envs=columns)


def add_episode(
    store: EpisodeRewardBuffer, rewards: list[float], steps: int = 3, ends: bool = True
) -> None:
    """``steps`` steps whose observations count them; the last ends the episode."""
    columns = len(rewards)
    for step in range(steps):
        last = ends and step == steps - 1
        store.add(
            np.full((columns, store.obs_shape[0]), step, np.float32),
            np.full((columns, store.obs_shape[0]), step + 1, np.float32),
            np.zeros((columns, store.action_dim), np.float32),
            np.array(rewards if last else [0.0] * columns, np.float32),
            np.array([last] * columns),
            [{} for _ in range(columns)],
        )


def test_an_episode_is_stored_when_it_ends_every_step_with_its_reward_as_a_final_step(
    space,
) -> None:
    store = buffer(space)
    add_episode(store, [0.5], steps=2)
    add_episode(store, [0.0], steps=1, ends=False)
    assert store.pos == 2  # the open episode's step waits
    assert store.rewards[:2, 0].tolist() == [0.5, 0.5]
    assert store.dones[:2, 0].tolist() == [1.0, 1.0]
    assert store.observations[:2, 0, 0].tolist() == [0.0, 1.0]


def test_each_round_column_gets_its_own_episode_reward(space) -> None:
    store = buffer(space, columns=2)
    add_episode(store, [0.25, -0.75])
    assert store.rewards[:3].tolist() == [[0.25, -0.75]] * 3


def test_sampled_rewards_are_standardized_over_the_buffer(space) -> None:
    store = buffer(space)
    for reward in (-0.03, -0.01, -0.02, -0.02):
        add_episode(store, [reward])
    rewards = store._get_samples(np.arange(store.pos)).rewards.numpy().ravel()
    assert rewards.mean() == pytest.approx(0.0, abs=1e-6)
    assert rewards.std() == pytest.approx(1.0, abs=1e-5)
    assert rewards[0] < rewards[6] < rewards[3]  # the episodes keep their order


def test_the_actor_learns_at_its_own_rate(space) -> None:
    agent = make_agent(LayerEnv(space, lambda actions: 0.0, CONFIG), CONFIG, 0)
    agent.learn((CONFIG.warmup_episodes + 1) * len(space.names))
    assert agent.actor.optimizer.param_groups[0]["lr"] == CONFIG.actor_learning_rate
    assert agent.critic.optimizer.param_groups[0]["lr"] == CONFIG.learning_rate


def sparsity_reward(actions: list[np.ndarray]) -> float:
    """IoU-like small rewards that fall as the layers are pruned more."""
    return -0.01 - 0.01 * float(np.mean([a[0] for a in actions]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_after_the_warmup_the_actor_moves_the_way_the_rewards_point(space, seed) -> None:
    env = LayerEnv(space, sparsity_reward, CONFIG)
    agent = make_agent(env, CONFIG, seed)
    agent.learn((CONFIG.warmup_episodes + 4) * len(space.names))
    observation, _ = env.reset()
    sparsity = []
    for _ in space.names:
        action, _ = agent.predict(observation, deterministic=True)
        sparsity.append(float(action[0]))
        observation, *_ = env.step(action)
    assert np.mean(sparsity) < -0.2
