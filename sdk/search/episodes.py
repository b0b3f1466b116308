"""One search episode, end to end: the agent's raw actions become a policy that fits the
budget (``plan``), the policy is quantized, fine-tuned and scored (``score``), and the
scored candidate is recorded (``keep``). ``finish`` does all three in this process; a board
farm (``ajpq.search.farm``) plans and keeps on the driver and scores on its workers.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ajpq.data.samples import Samples
from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import QuantModel, quantize
from ajpq.search import checkpoint
from ajpq.search.budget import Budget, SearchConfig
from ajpq.search.candidates import Candidate
from ajpq.search.controllers import action_wall, decode_action
from ajpq.search.cost import CostModel
from ajpq.search.hardware import HardwareLoop, HardwareRecord
from ajpq.search.space import SearchSpace, shadow_graph
from ajpq.tasks import Task
from ajpq.train import evaluate, train

BEST_QMODEL = "best_qmodel.pt"
Objective = Callable[[Policy], float]  # a policy's accuracy, in place of the QAT fine-tune
Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Plan:
    """A policy after the channel controller and the action wall, with its estimated cost."""

    policy: Policy
    cost: Any  # controllers.PolicyCost
    latency: float
    fps: float | None


class Episodes:
    """Turns an episode's raw actions into a scored Candidate and keeps the records.

    ``objective`` (tests only) scores a policy instead of quantizing and fine-tuning it.
    """

    def __init__(
        self,
        model: nn.Module,
        space: SearchSpace,
        setup: dict[str, Any],
        objective: Objective | None = None,
    ) -> None:
        self.model, self.space = model, space
        self.budget: Budget = setup["budget"]
        self.config: SearchConfig = setup["config"]
        self.cost: CostModel = setup["cost"]
        self.train_data, self.val_data = setup["train"], setup["val"]
        self.finalist_data: Samples = setup.get("finalist_train", self.train_data)
        self.task: Task = setup["task"]
        self.seed, self.out_dir = setup["seed"], setup["out_dir"]
        self.hardware: HardwareLoop | None = setup.get("hardware")
        self.state: checkpoint.SearchState | None = None
        self.on_candidate = lambda candidate: None
        self.objective = objective

    def finish(self, raw_actions: list[np.ndarray]) -> float:
        """Plan, score and keep one episode here; its reward."""
        plan = self.plan(raw_actions)
        if self.objective is not None:
            return self.keep(plan, self.objective(plan.policy), None)
        qmodel = quantize(self.model, plan.policy)
        accuracy = self.fine_tune(qmodel)
        return self.keep(plan, accuracy, qmodel)

    def plan(self, raw_actions: list[np.ndarray]) -> Plan:
        """The channel controller and the action wall: a policy within the budget."""
        names = self.space.names
        decoded = {
            n: decode_action(a, self.config) for n, a in zip(names, raw_actions, strict=True)
        }
        _, policy, cost = action_wall(self.space, decoded, self.budget, self.config, self.cost)
        latency, fps = cost.latency, cost.fps
        if math.isnan(latency):
            estimate = self.cost(shadow_graph(self.space, policy))
            latency, fps = estimate.latency_s, estimate.fps
        return Plan(policy, cost, latency, fps)

    def score(self, policy: Policy) -> tuple[float, QuantModel]:
        """The policy quantized and fine-tuned: (the task's metric, the fine-tuned model)."""
        qmodel = quantize(self.model, policy)
        return self.fine_tune(qmodel), qmodel

    def keep(
        self,
        plan: Plan,
        accuracy: float,
        qmodel: QuantModel | None,
        record: HardwareRecord | None = None,
        weights: Weights | None = None,
    ) -> float:
        """Record the scored episode; its reward. A new best's weights are saved and, when
        no ``record`` came with it and the board is in the loop, measured here."""
        assert self.state is not None
        reward = self.config.reward_scale * (accuracy - self.state.base_accuracy)
        best = max((c.accuracy for c in self.state.candidates), default=-math.inf)
        episode = self.state.episodes_done
        if weights is None and qmodel is not None:
            weights = qmodel.state_dict()
        if accuracy > best and weights is not None:
            save_best(weights, episode, self.out_dir)
            if record is None and qmodel is not None:
                record = self.measure(qmodel, episode)
        if record is not None:
            self.state.hardware.append(record)
        candidate = Candidate(
            plan.policy,
            accuracy,
            plan.cost.weight_bytes,
            plan.cost.bops,
            plan.latency,
            None if record is None else record.measured_latency,
            episode,
            reward,
            estimated_fps=plan.fps,
            budget_use=self.budget.use(plan.cost),
        )
        self.state.candidates.append(candidate)
        self.on_candidate(candidate)
        return reward

    def measure(self, qmodel: QuantModel, episode: int) -> HardwareRecord | None:
        """A new best candidate on the backend's reference (when it is in the loop): seconds
        (under QEMU an instruction-count proxy); the calibration is re-fitted with it."""
        if self.hardware is None:
            return None
        return self.hardware.measure(
            lower(qmodel.eval()), "candidate", f"episode-{episode}", episode
        )  # None: the reference could not build it (over the board's budget)

    def fine_tune(self, qmodel: QuantModel) -> float:
        """The reward's metric: the QAT fine-tune (distilled from the fp32 model when
        ``config.distill``), scored on the fake-quant floats (``QuantModel.exact``)."""
        config = self.config
        return self._tuned(qmodel, self.train_data, config.qat_epochs, config.qat_lr)

    def finalist_tune(self, qmodel: QuantModel) -> float:
        """A finalist's metric (finalists.py): the longer fine-tune of ``finalist_images`` x
        ``finalist_epochs``, scored like the reward on the reward's val images."""
        config = self.config
        lr = config.finalist_lr if config.finalist_lr is not None else config.qat_lr
        return self._tuned(qmodel, self.finalist_data, config.finalist_epochs, lr)

    def _tuned(self, qmodel: QuantModel, data: Samples, epochs: int, lr: float) -> float:
        qmodel.exact = False
        try:
            if epochs == 0:  # the quantized model as it is: ranks like the
                return evaluate(qmodel, self.val_data, self.task)  # fine-tuned (docs/search.md)
            result = train(
                qmodel, data, self.val_data, epochs=epochs, lr=lr, seed=self.seed,
                progress=False, task=self.task,
                teacher=self.model if self.config.distill > 0 else None,
                distill=self.config.distill,
            )  # fmt: skip
            return float(result.metric)
        finally:
            qmodel.exact = True


def save_best(weights: Weights, episode: int, out_dir: Path) -> None:
    """Atomically, and tagged with its episode: a kill mid-save leaves the old file whole, and
    a resumed search ignores the weights of an episode the kill lost."""
    temporary = out_dir / (BEST_QMODEL + ".tmp")
    torch.save({"episode": episode, "state_dict": weights}, temporary)
    os.replace(temporary, out_dir / BEST_QMODEL)
