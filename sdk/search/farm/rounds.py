"""Rounds of K episodes: the agent proposes K policies at once, the farm scores them in
parallel, and the agent learns from all K.

``RoundEnv`` is a stable-baselines3 VecEnv of K layer environments stepped in lockstep: the
K episodes end on the same step, and that step scores them together (``Round.finish``).
The driver plans each policy (channel controller, action wall), keeps the scored candidates
in episode order, and re-fits the cost table once per round, so a round's results depend on
the seed and K only, never on which worker was faster or which one died.
"""

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from ajpq.search.budget import SearchConfig
from ajpq.search.env import LayerEnv
from ajpq.search.episodes import Episodes
from ajpq.search.farm.pool import WorkerPool
from ajpq.search.hardware import HardwareLoop
from ajpq.search.space import SearchSpace

Actions = list[np.ndarray]
FARM_LOG = "farm.json"


class RoundEnv(DummyVecEnv):
    def __init__(
        self, space: SearchSpace, config: SearchConfig, size: int,
        finish: Callable[[list[Actions]], list[float]],
    ) -> None:  # fmt: skip
        self.finished: list[Actions | None] = [None] * size
        self.finish_round = finish
        super().__init__([self._env(space, config, i) for i in range(size)])

    def _env(self, space: SearchSpace, config: SearchConfig, index: int) -> Callable[[], Any]:
        def collect(actions: Actions) -> float:
            self.finished[index] = actions
            return 0.0  # the real reward comes once the whole round is scored

        return lambda: LayerEnv(space, collect, config)

    def step_wait(self) -> Any:
        observations, rewards, dones, infos = super().step_wait()
        if dones.any():
            finished = self.finished
            if not dones.all() or any(a is None for a in finished):
                raise AssertionError("the round's episodes must end together")
            rewards = np.asarray(self.finish_round(finished), dtype=np.float32)  # type: ignore[arg-type]
            self.finished = [None] * self.num_envs
        return observations, rewards, dones, infos


class Round:
    """The driver's side of one round: plan K policies, score them on the farm, keep them."""

    def __init__(self, episodes: Episodes, pool: WorkerPool, hardware: HardwareLoop) -> None:
        self.episodes, self.pool, self.hardware = episodes, pool, hardware
        self.log: list[dict[str, Any]] = []  # per candidate: worker, seconds (farm.json)
        self.started = time.perf_counter()

    def finish(self, actions: Sequence[Actions]) -> list[float]:
        state = self.episodes.state
        assert state is not None
        first = state.episodes_done
        plans = [self.episodes.plan(a) for a in actions]
        calibration = self.hardware.calibration
        jobs = [
            (lambda w, e=first + i, p=plan.policy: w.evaluate.remote(e, p, calibration))
            for i, plan in enumerate(plans)
        ]
        scored = self.pool.run(jobs)
        rewards = []
        for episode, (plan, result) in enumerate(zip(plans, scored, strict=True), first):
            record = result.record
            if record is not None:
                self.hardware.records.append(record)
            rewards.append(self.episodes.keep(plan, result.accuracy, None, record, result.weights))
            self.log.append({
                "episode": episode, "worker": result.worker, "score_s": result.score_s,
                "measure_s": result.measure_s, "round_end_s": time.perf_counter() - self.started,
            })  # fmt: skip
        self.hardware.refit()
        self.save_log()
        return rewards

    def save_log(self) -> None:
        """Where this run's time went, per candidate: ``out_dir/farm.json``."""
        body = {"workers": list(self.pool.workers), "candidates": self.log}
        (self.episodes.out_dir / FARM_LOG).write_text(json.dumps(body, indent=1))
