"""The agent learns: on cheap synthetic objectives (no fine-tune) the real env and DDPG agent,
as SearchConfig configures them, find better policies than random search does with the same
number of episodes; and the learned channel controller finds a per-quantile bit shape that the
fixed ladder cannot express."""

from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import Cost
from ajpq.quant.policy import Policy
from ajpq.search import Budget, SearchConfig
from ajpq.search.agent import make_agent
from ajpq.search.checkpoint import SearchState
from ajpq.search.controllers import action_size
from ajpq.search.env import LayerEnv
from ajpq.search.episodes import Episodes, Objective
from ajpq.search.space import SearchSpace

SIZE = (32, 64)
EPISODES = 60
SEEDS = (0, 1, 2, 3, 4)
CONFIG = SearchConfig(warmup_episodes=10, channel_controller="ladder")
LEARNED = SearchConfig(warmup_episodes=10, channel_controller="learned")
TARGET_SPARSITY = 0.6  # 0.75 of the way up the sparsity axis (0 to max_sparsity 0.8)
TARGET_BITS = 7  # 0.83 of the way up the precision axis (min_bits 2 to max_bits 8)
TARGET_SHAPE = (8, 3, 2)  # the quantiles' bits, most important first: no ladder top, top-2, top-4
SHAPE_EPISODES = 60
SHAPE_SEEDS = (0, 1, 2, 3, 4)


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


def objective(space: SearchSpace) -> Objective:
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


def shape_objective(space: SearchSpace) -> Objective:
    """Best when every layer's importance quantiles get ``TARGET_SHAPE`` bits and its sparsity
    is ``TARGET_SPARSITY``. The quantiles' mean bits are read back from the policy: its kept
    channels, in decreasing bits, split as the channel controller splits them."""
    span = CONFIG.max_bits - CONFIG.min_bits

    def score(policy: Policy) -> float:
        misses = []
        for name in space.names:
            bits = np.asarray(policy.layers[name].weight_bits)
            kept = np.sort(bits[bits > 0])[::-1]
            groups = np.array_split(kept, len(TARGET_SHAPE))
            for group, target in zip(groups, TARGET_SHAPE, strict=True):
                if len(group):
                    misses.append(((group.mean() - target) / span) ** 2)
            if space.prunable(name):
                sparsity = float(np.mean(bits == 0))
                misses.append(((sparsity - TARGET_SPARSITY) / CONFIG.max_sparsity) ** 2)
        return 1.0 - float(np.mean(misses))

    return score


FREE = Cost(latency_s=0.0, fps=float("inf"), count=0.0, unit="cycles")


def episodes(
    space: SearchSpace, seed: int, out_dir: Path, config: SearchConfig, score: Objective
) -> Episodes:
    setup = {
        "budget": Budget(), "config": config, "cost": lambda graph: FREE,
        "train": None, "val": None, "task": None,
        "seed": seed, "out_dir": out_dir,
    }  # fmt: skip
    runner = Episodes(None, space, setup, objective=score)  # type: ignore[arg-type]
    runner.state = SearchState("synthetic", 0.0)
    return runner


def agent_best(
    space: SearchSpace, seed: int, out_dir: Path, config: SearchConfig = CONFIG,
    score: Objective | None = None, count: int = EPISODES,
) -> float:  # fmt: skip
    runner = episodes(space, seed, out_dir, config, score or objective(space))
    agent = make_agent(LayerEnv(space, runner.finish, config), config, seed)
    agent.learn(count * len(space.names))
    assert runner.state is not None and runner.state.episodes_done == count
    return max(c.accuracy for c in runner.state.candidates)


def random_best(
    space: SearchSpace, seed: int, out_dir: Path, config: SearchConfig = CONFIG,
    score: Objective | None = None, count: int = EPISODES,
) -> float:  # fmt: skip
    runner = episodes(space, seed, out_dir, config, score or objective(space))
    generator = np.random.default_rng(seed)
    for _ in range(count):
        runner.finish([generator.uniform(-1.0, 1.0, action_size(config)) for _ in space.names])
    assert runner.state is not None
    return max(c.accuracy for c in runner.state.candidates)


def report(title: str, found: dict[str, list[float]]) -> None:
    print(title)
    for name, bests in found.items():
        print(f"  {name:8}", " ".join(f"{x:.4f}" for x in bests), f"mean {np.mean(bests):.4f}")


def test_ddpg_beats_random_search_at_the_same_number_of_episodes(space, tmp_path) -> None:
    agent = [agent_best(space, seed, tmp_path) for seed in SEEDS]
    random = [random_best(space, seed, tmp_path) for seed in SEEDS]
    report(
        f"best objective after {EPISODES} episodes, seeds {SEEDS}:",
        {"ddpg": agent, "random": random},
    )
    wins = sum(a > r for a, r in zip(agent, random, strict=True))
    assert wins >= 4
    assert np.mean(agent) > np.mean(random)


def test_learned_channel_controller_finds_a_shape_the_ladder_cannot(space, tmp_path) -> None:
    score = shape_objective(space)
    run = {"space": space, "out_dir": tmp_path, "score": score, "count": SHAPE_EPISODES}
    found = {
        "learned": [agent_best(seed=seed, config=LEARNED, **run) for seed in SHAPE_SEEDS],
        "ladder": [agent_best(seed=seed, config=CONFIG, **run) for seed in SHAPE_SEEDS],
        "random": [random_best(seed=seed, config=LEARNED, **run) for seed in SHAPE_SEEDS],
    }
    report(f"best shape objective after {SHAPE_EPISODES} episodes, seeds {SHAPE_SEEDS}:", found)
    learned = found["learned"]
    for other in ("ladder", "random"):
        assert sum(a > b for a, b in zip(learned, found[other], strict=True)) == len(SHAPE_SEEDS)
        assert np.mean(learned) > np.mean(found[other])
