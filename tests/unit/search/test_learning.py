"""The layer controller learns: on a cheap synthetic objective (no fine-tune) the real env and
DDPG agent, as SearchConfig configures them, find a better policy than random search does
with the same number of episodes."""

from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import Cost
from ajpq.quant.policy import Policy
from ajpq.search import Budget, SearchConfig
from ajpq.search.ajpq import Episodes, make_agent
from ajpq.search.checkpoint import SearchState
from ajpq.search.env import LayerEnv
from ajpq.search.space import SearchSpace

SIZE = (32, 64)
EPISODES = 60
SEEDS = (0, 1, 2, 3, 4)
CONFIG = SearchConfig(warmup_episodes=10)
TARGET_SPARSITY = 0.6  # 0.75 of the way up the sparsity axis (0 to max_sparsity 0.8)
TARGET_BITS = 7  # 0.83 of the way up the precision axis (min_bits 2 to max_bits 8)


@pytest.fixture(autouse=True)
def one_thread():
    """The agent's small MLP updates run ~10x faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    torch.manual_seed(0)
    return SearchSpace.of(ajpq.models.skynet(0.125, SIZE))


def objective(space: SearchSpace):
    """A smooth function of every layer's (sparsity, top bits), best at the targets."""

    def score(policy: Policy) -> float:
        misses = []
        for name in space.names:
            bits = np.asarray(policy.layers[name].weight_bits)
            top = bits.max() / (CONFIG.max_bits - CONFIG.min_bits)
            misses.append((top - TARGET_BITS / (CONFIG.max_bits - CONFIG.min_bits)) ** 2)
            if space.prunable(name):
                sparsity = float(np.mean(bits == 0))
                misses.append(((sparsity - TARGET_SPARSITY) / CONFIG.max_sparsity) ** 2)
        return 1.0 - float(np.mean(misses))

    return score


FREE = Cost(latency_s=0.0, fps=float("inf"), count=0.0, unit="cycles")


def episodes(space: SearchSpace, seed: int, out_dir: Path) -> Episodes:
    setup = {
        "budget": Budget(), "config": CONFIG, "cost": lambda graph: FREE,
        "train": None, "val": None, "task": None,
        "seed": seed, "out_dir": out_dir,
    }  # fmt: skip
    runner = Episodes(None, space, setup, objective=objective(space))  # type: ignore[arg-type]
    runner.state = SearchState("synthetic", 0.0)
    return runner


def agent_best(space: SearchSpace, seed: int, out_dir: Path) -> float:
    runner = episodes(space, seed, out_dir)
    agent = make_agent(LayerEnv(space, runner.finish), CONFIG, seed)
    agent.learn(EPISODES * len(space.names))
    assert runner.state is not None and runner.state.episodes_done == EPISODES
    return max(c.accuracy for c in runner.state.candidates)


def random_best(space: SearchSpace, seed: int, out_dir: Path) -> float:
    runner = episodes(space, seed, out_dir)
    generator = np.random.default_rng(seed)
    for _ in range(EPISODES):
        runner.finish([generator.uniform(-1.0, 1.0, 2) for _ in space.names])
    assert runner.state is not None
    return max(c.accuracy for c in runner.state.candidates)


def test_ddpg_beats_random_search_at_the_same_number_of_episodes(space, tmp_path) -> None:
    agent = [agent_best(space, seed, tmp_path) for seed in SEEDS]
    random = [random_best(space, seed, tmp_path) for seed in SEEDS]
    print(f"best objective after {EPISODES} episodes, seeds {SEEDS}:")
    print("  ddpg  ", " ".join(f"{x:.4f}" for x in agent), f"mean {np.mean(agent):.4f}")
    print("  random", " ".join(f"{x:.4f}" for x in random), f"mean {np.mean(random):.4f}")
    wins = sum(a > r for a, r in zip(agent, random, strict=True))
    assert wins >= 4
    assert np.mean(agent) > np.mean(random)
