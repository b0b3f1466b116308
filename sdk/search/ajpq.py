"""AJPQ search: a layer controller (DDPG/TD3 from stable-baselines3) picks each layer's
sparsity and precision, the channel controller turns them into per-channel bit-widths by
importance, the action wall makes the policy fit the budget, and a short QAT fine-tune scores
it on the task's metric (reward = 0.1 x (metric - float metric), HAQ: mean IoU for detection,
top-1 for classification). Checkpointed after every episode.
"""

import copy
import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from stable_baselines3 import DDPG, TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from torch import nn

from ajpq.data.samples import Normalization, Samples, as_samples
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.quant.fold_input import fold_input
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import QuantModel, quantize
from ajpq.search import checkpoint
from ajpq.search.budget import Budget, SearchConfig
from ajpq.search.candidates import Candidate, SearchResult
from ajpq.search.controllers import action_wall, check_feasible, decode_action
from ajpq.search.cost import CostModel, cost_model
from ajpq.search.env import LayerEnv
from ajpq.search.hardware import (
    BoardLost,
    HardwareLoop,
    HardwareRecord,
    hardware_table,
    sweep_graphs,
)
from ajpq.search.pareto import budget_share
from ajpq.search.space import SearchSpace, shadow_graph
from ajpq.tasks import Task, default_task
from ajpq.train import evaluate, train

AGENTS = {"ddpg": DDPG, "td3": TD3}
BEST_QMODEL = "best_qmodel.pt"
Objective = Callable[[Policy], float]  # a policy's accuracy, in place of the QAT fine-tune


def hardware_loop(
    model: nn.Module, backend: str, board: str, out: Path, image: np.ndarray, shown: bool,
    config: SearchConfig, fps: float | None,
) -> HardwareLoop:  # fmt: skip
    """The backend's reference in the loop, calibrated (SearchConfig.calibrate)."""
    console = Console(stderr=True, quiet=not shown)
    loop = HardwareLoop(backend, board, out, image, console=console, fps=fps)
    try:
        loop.calibrate(sweep_graphs(model, config.act_bits))
    except BoardLost as exc:
        raise BoardLost(
            f"{exc}; the calibration sweep did not finish and no episode ran: reconnect the "
            "board and run the search again"
        ) from None
    return loop


def episode_setup(
    budget: Budget, config: SearchConfig, cost: CostModel, train: Samples, val: Samples,
    seed: int, out: Path, task: Task,
) -> dict[str, Any]:  # fmt: skip
    """What ``Episodes`` needs: the budget, config and cost, the QAT and reward subsets, the
    task whose metric is the reward."""
    return {
        "task": task,
        "budget": budget,
        "config": config,
        "cost": cost,
        "train": train.subset(np.arange(min(len(train), config.train_images))),
        "val": val.subset(np.arange(min(len(val), config.val_images))),
        "seed": seed,
        "out_dir": out,
    }


def pixel_inputs(
    model: nn.Module, train: Any, val: Any, normalization: Normalization | None
) -> tuple[nn.Module, Samples, Samples]:
    """The model and data in the deployed graph's domain (raw pixels): a model trained on
    normalized inputs gets its normalization folded in, and its data is mapped back. A model
    without an ``input_size`` attribute takes its size from the data's first image."""
    train_samples, val_samples = as_samples(train, normalization), as_samples(val, normalization)
    if normalization is not None:
        model = fold_input(model, *normalization)
    if getattr(model, "input_size", None) is None and len(val_samples):
        model = copy.copy(model)  # shares the weights; the user's model is left as it was
        model.input_size = tuple(int(d) for d in val_samples.image(0).shape[1:])
    return model, train_samples, val_samples


def fingerprint(**settings: Any) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        self.task: Task = setup["task"]
        self.seed, self.out_dir = setup["seed"], setup["out_dir"]
        self.hardware: HardwareLoop | None = setup.get("hardware")
        self.state: checkpoint.SearchState | None = None
        self.on_candidate = lambda candidate: None
        self.objective = objective

    def finish(self, raw_actions: list[np.ndarray]) -> float:
        assert self.state is not None
        names = self.space.names
        decoded = {
            n: decode_action(a, self.config) for n, a in zip(names, raw_actions, strict=True)
        }
        _, policy, cost = action_wall(self.space, decoded, self.budget, self.config, self.cost)
        latency, fps = cost.latency, cost.fps
        if math.isnan(latency):
            estimate = self.cost(shadow_graph(self.space, policy))
            latency, fps = estimate.latency_s, estimate.fps
        qmodel = None if self.objective is not None else quantize(self.model, policy)
        accuracy = self.fine_tune(qmodel) if qmodel is not None else self.objective(policy)
        reward = self.config.reward_scale * (accuracy - self.state.base_accuracy)
        best = max((c.accuracy for c in self.state.candidates), default=-math.inf)
        episode = self.state.episodes_done
        measured = None
        if accuracy > best and qmodel is not None:
            save_best(qmodel, episode, self.out_dir)
            measured = self.measure(qmodel, episode)
        candidate = Candidate(
            policy,
            accuracy,
            cost.weight_bytes,
            cost.bops,
            latency,
            measured,
            episode,
            reward,
            estimated_fps=fps,
            budget_use=self.budget.use(cost),
        )
        self.state.candidates.append(candidate)
        self.on_candidate(candidate)
        return reward

    def measure(self, qmodel: QuantModel, episode: int) -> float | None:
        """A new best candidate on the backend's reference (when it is in the loop): seconds
        (under QEMU an instruction-count proxy); the calibration is re-fitted with it."""
        if self.hardware is None:
            return None
        assert self.state is not None
        record = self.hardware.measure(
            lower(qmodel.eval()), "candidate", f"episode-{episode}", episode
        )
        if record is None:  # the reference could not build it (over the board's budget)
            return None
        self.state.hardware.append(record)
        return record.measured_latency

    def fine_tune(self, qmodel: QuantModel) -> float:
        """The reward's metric: the QAT fine-tune (distilled from the fp32 model when
        ``config.distill``), scored on the fake-quant floats (``QuantModel.exact``)."""
        qmodel.exact = False
        try:
            return self._fine_tune(qmodel)
        finally:
            qmodel.exact = True

    def _fine_tune(self, qmodel: QuantModel) -> float:
        if self.config.qat_epochs == 0:  # the quantized model as it is: ranks like the
            return evaluate(qmodel, self.val_data, self.task)  # fine-tuned (docs/search.md)
        result = train(
            qmodel,
            self.train_data,
            self.val_data,
            epochs=self.config.qat_epochs,
            lr=self.config.qat_lr,
            seed=self.seed,
            progress=False,
            task=self.task,
            teacher=self.model if self.config.distill > 0 else None,
            distill=self.config.distill,
        )
        return float(result.metric)


def save_best(qmodel: QuantModel, episode: int, out_dir: Path) -> None:
    """Atomically, and tagged with its episode: a kill mid-save leaves the old file whole, and
    a resumed search ignores the weights of an episode the kill lost."""
    temporary = out_dir / (BEST_QMODEL + ".tmp")
    torch.save({"episode": episode, "state_dict": qmodel.state_dict()}, temporary)
    os.replace(temporary, out_dir / BEST_QMODEL)


class CheckpointAfterEpisode(BaseCallback):
    """Saves at the start of each rollout (= after the previous episode and its training)."""

    def __init__(self, episodes: Episodes) -> None:
        super().__init__()
        self.episodes = episodes
        self.saved = -1

    def save(self) -> None:
        state = self.episodes.state
        assert state is not None
        if state.episodes_done != self.saved:
            checkpoint.save(self.episodes.out_dir, self.model, state)
            self.saved = state.episodes_done

    def _on_rollout_start(self) -> None:
        self.save()

    def _on_step(self) -> bool:
        return True


def make_agent(env: LayerEnv, config: SearchConfig, seed: int) -> Any:
    if config.agent not in AGENTS:
        raise AjpqError(f"unknown agent '{config.agent}'; choose one of {sorted(AGENTS)}")
    layers = len(env.space.specs)
    size = env.action_space.shape[0]  # sparsity + precision, or + each quantile's bits
    agent = AGENTS[config.agent](
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=100_000,
        learning_starts=config.warmup_episodes * layers,
        batch_size=config.batch_size,
        tau=0.01,
        gamma=1.0,
        train_freq=(1, "episode"),
        gradient_steps=-1,
        action_noise=NormalActionNoise(np.zeros(size), config.noise_sigma * np.ones(size)),
        policy_kwargs={"net_arch": [300, 300]},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    return quiet(agent)


def quiet(agent: Any) -> Any:
    """No stable-baselines3 log output (its default logger also makes a folder in /tmp)."""
    agent.set_logger(Logger(folder=None, output_formats=[]))
    return agent


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        TextColumn("episode {task.completed}/{task.total}"),
        TextColumn("reward {task.fields[reward]}  best {task.fields[best]}"),
        TextColumn("budget {task.fields[use]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def search(
    model: nn.Module,
    train: Any,
    val: Any,
    backend: str = "mcu",
    board: str = "qemu-mps2-an386",
    budget: Budget = Budget(),  # noqa: B008 (frozen)
    episodes: int = 100,
    out_dir: str | Path = "build/ajpq-search",
    seed: int = 0,
    resume: bool = False,
    config: SearchConfig = SearchConfig(),  # noqa: B008 (frozen)
    progress: bool = True,
    task: Task | None = None,
    input_normalization: Normalization | None = None,
) -> SearchResult:
    """Search a joint pruning + mixed-precision policy for ``model`` within ``budget``.

    ``train``/``val``: anything ``ajpq.data.as_samples`` reads (a torch Dataset or DataLoader,
    numpy (images, targets), ``ajpq.data.Dataset``). ``task`` (default: Detection for a model
    with anchors) gives the loss and the metric the reward is scored on.
    ``input_normalization=(mean, std)``: the model was trained on normalized inputs; it is
    folded (``ajpq.quant.fold_input``) so that the search and the deployed graph take pixels.

    Every candidate fits the budget (the action wall); all are kept in ``result.candidates``
    and in ``out_dir/state.json``. ``resume=True`` continues the search checkpointed in
    ``out_dir`` (same settings) up to ``episodes`` in total.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, train, val = pixel_inputs(model, train, val, input_normalization)
    task = task if task is not None else default_task(model)
    space = SearchSpace.of(model)
    hardware = None
    if not budget.needs_estimate:  # bytes and BOPs need no board: fail before calibrating
        check_feasible(space, budget, config, None)
    if config.calibrate:
        image = val.image(0)
        hardware = hardware_loop(model, backend, board, out, image, progress, config, budget.fps)
    cost = hardware.cost if hardware is not None else cost_model(backend, board, fps=budget.fps)
    check_feasible(space, budget, config, cost)
    setup = episode_setup(budget, config, cost, train, val, seed, out, task)
    setup["hardware"] = hardware
    runner = Episodes(model, space, setup)
    env = LayerEnv(space, runner.finish, config)
    key = fingerprint(
        budget=asdict(budget), config=asdict(config), backend=backend, board=board, seed=seed,
        task=type(task).__name__, normalization=input_normalization,
    )  # fmt: skip
    agent = start(runner, env, key, resume, seed)
    assert runner.state is not None
    remaining = episodes - runner.state.episodes_done
    callback = CheckpointAfterEpisode(runner)
    if remaining > 0:
        try:
            run_episodes(runner, agent, callback, episodes, remaining, progress)
        except BoardLost as exc:
            raise BoardLost(
                f"{exc}; the checkpoint in {out} keeps the {runner.state.episodes_done} "
                "finished episodes: reconnect the board and run the search again with "
                "resume=True (ajpq search --resume)"
            ) from None
    callback.model = agent
    callback.save()
    return result(model, runner, out, progress)


def start(runner: Episodes, env: LayerEnv, key: str, resume: bool, seed: int) -> Any:
    """A fresh agent, or the one checkpointed in out_dir when resuming."""
    found = checkpoint.load(runner.out_dir) if resume else None
    if found is None:
        base = evaluate(runner.model, runner.val_data, runner.task)
        runner.state = checkpoint.SearchState(key, base)
        return make_agent(env, runner.config, seed)
    state, agent_path, replay_path = found
    if state.fingerprint != key:
        raise AjpqError(
            f"the checkpoint in {runner.out_dir} was made with other settings (budget, "
            "config, backend, board, seed, task or input normalization); resume with the "
            "same ones or use a new out_dir"
        )
    runner.state = state
    if runner.hardware is not None:
        runner.hardware.restore(list(state.hardware))
    agent = quiet(AGENTS[runner.config.agent].load(agent_path, env=env, device="cpu"))
    agent.load_replay_buffer(replay_path)
    return agent


def run_episodes(
    runner: Episodes, agent: Any, callback: BaseCallback, total: int, remaining: int, shown: bool
) -> None:
    layers = len(runner.space.specs)
    with progress_bar(shown) as bar:
        done = total - remaining
        task = bar.add_task("search", total=total, completed=done, reward="-", best="-", use="-")

        def update(candidate: Candidate) -> None:
            assert runner.state is not None
            best = max(c.accuracy for c in runner.state.candidates)
            use = budget_share(candidate) if candidate.budget_use else "free"
            bar.update(task, advance=1, reward=f"{candidate.reward:+.4f}", best=f"{best:.4f}")
            bar.update(task, use=use)

        runner.on_candidate = update
        agent.learn(
            remaining * layers,
            callback=callback,
            reset_num_timesteps=done == 0,
            progress_bar=False,
        )


def result(model: nn.Module, runner: Episodes, out: Path, shown: bool) -> SearchResult:
    assert runner.state is not None
    candidates = list(runner.state.candidates)
    if not candidates:
        raise AjpqError("the search ran no episode; give episodes >= 1")
    best = max(candidates, key=lambda c: c.accuracy)
    qmodel = quantize(model, best.policy)
    saved = out / BEST_QMODEL
    found = torch.load(saved, weights_only=True) if saved.exists() else None
    if found is not None and found.get("episode") == best.episode:
        qmodel.load_state_dict(found["state_dict"])
    else:
        runner.fine_tune(qmodel)
    best.policy.save(out / "best_policy.json")
    (out / "candidates.json").write_text(json.dumps([c.to_dict() for c in candidates], indent=1))
    records: list[HardwareRecord] = runner.hardware.records if runner.hardware else []
    if records:
        (out / "hardware.json").write_text(json.dumps([r.to_dict() for r in records], indent=1))
        Console(stderr=True, quiet=not shown).print(hardware_table(records))
    graph: HwGraph = lower(qmodel.eval())
    calibration = runner.hardware.calibration if runner.hardware else None
    return SearchResult(
        candidates, best.policy, qmodel, graph, records, calibration, runner.task.metric
    )
