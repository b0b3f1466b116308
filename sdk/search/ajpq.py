"""AJPQ search: a layer controller (DDPG/TD3 from stable-baselines3) picks each layer's
sparsity and precision, the channel controller turns them into per-channel bit-widths by
importance, the action wall makes the policy fit the budget, and a short QAT fine-tune scores
it on the task's metric (reward = 0.1 x (metric - float metric), HAQ: mean IoU for detection,
top-1 for classification). Checkpointed after every episode.
"""

import copy
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from ajpq.data.samples import Normalization, Samples, as_samples
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.lower import lower
from ajpq.quant.fold_input import fold_input
from ajpq.quant.quantize import QuantModel, quantize
from ajpq.search import checkpoint
from ajpq.search.agent import load_agent, make_agent
from ajpq.search.budget import Budget, SearchConfig
from ajpq.search.candidates import Candidate, SearchResult, chosen
from ajpq.search.controllers import check_feasible
from ajpq.search.cost import CostModel, cost_model
from ajpq.search.env import LayerEnv
from ajpq.search.episodes import BEST_QMODEL, Episodes
from ajpq.search.finalists import check_finalists, finalists
from ajpq.search.hardware import (
    BoardLost,
    HardwareLoop,
    HardwareRecord,
    hardware_table,
    sweep_graphs,
)
from ajpq.search.pareto import budget_share
from ajpq.search.space import SearchSpace
from ajpq.search.start import precision_start
from ajpq.tasks import Task, default_task
from ajpq.train import evaluate


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
    """What ``Episodes`` needs: the budget, config and cost, the QAT and reward subsets (and
    the finalists' fine-tune subset), the task whose metric is the reward."""
    setup = {
        "task": task,
        "budget": budget,
        "config": config,
        "cost": cost,
        "train": first(train, config.train_images),
        "val": first(val, config.val_images),
        "seed": seed,
        "out_dir": out,
    }
    if config.finalists > 0:
        setup["finalist_train"] = first(train, config.finalist_images)
    return setup


def first(data: Samples, count: int) -> Samples:
    """The first ``count`` samples (all when there are fewer)."""
    return data.subset(np.arange(min(len(data), count)))


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


def episode_settings(config: SearchConfig) -> dict[str, Any]:
    """The settings the episodes depend on: all but the finalists', which run after the last
    episode, so a finished search can be resumed to score other finalists."""
    return {k: v for k, v in asdict(config).items() if not k.startswith("finalist")}


def fingerprint(**settings: Any) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    workers: int | str | None = None,
    farm: str | Path | None = None,
) -> SearchResult:
    """Search a joint pruning + mixed-precision policy for ``model`` within ``budget``.

    ``train``/``val``: anything ``ajpq.data.as_samples`` reads (a torch Dataset or DataLoader,
    numpy (images, targets), ``ajpq.data.Dataset``). ``task`` (default: Detection for a model
    with anchors) gives the loss and the metric the reward is scored on.
    ``input_normalization=(mean, std)``: the model was trained on normalized inputs; it is
    folded (``ajpq.quant.fold_input``) so that the search and the deployed graph take pixels.

    ``workers``: None searches in this process. A number starts Ray here with that many
    emulated boards; a Ray address (``"head:6379"``, ``"ray://head:10001"``) joins a board
    farm (``farm``: its farm file, for each board's serial port). The agent then proposes one
    policy per board each round and every candidate is measured on a board (docs/farm.md).

    Every candidate fits the budget (the action wall); all are kept in ``result.candidates``
    and in ``out_dir/state.json``. ``resume=True`` continues the search checkpointed in
    ``out_dir`` (same settings) up to ``episodes`` in total.
    """
    check_finalists(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, train, val = pixel_inputs(model, train, val, input_normalization)
    task = task if task is not None else default_task(model)
    space = SearchSpace.of(model)
    if not budget.needs_estimate:  # bytes and BOPs need no board: fail before calibrating
        check_feasible(space, budget, config, None)
    setup = episode_setup(budget, config, None, train, val, seed, out, task)  # type: ignore[arg-type]
    key = {
        "budget": asdict(budget), "config": episode_settings(config), "backend": backend,
        "board": board, "seed": seed, "task": type(task).__name__,
        "normalization": input_normalization,
    }  # fmt: skip
    job = Search(model, space, setup, backend, board, val.image(0), progress)
    if workers is None:
        return job.here(key, episodes, resume)
    return job.on_farm(key, episodes, resume, workers, farm)


class Search:
    """One search's pieces; ``here`` runs it in this process, ``on_farm`` over a board farm."""

    def __init__(
        self, model: nn.Module, space: SearchSpace, setup: dict[str, Any], backend: str,
        board: str, image: np.ndarray, shown: bool,
    ) -> None:  # fmt: skip
        self.model, self.space, self.setup = model, space, setup
        self.backend, self.board, self.image, self.shown = backend, board, image, shown
        self.config: SearchConfig = setup["config"]
        self.budget: Budget = setup["budget"]
        self.out: Path = setup["out_dir"]

    def here(self, key: dict[str, Any], episodes: int, resume: bool) -> SearchResult:
        hardware = None
        if self.config.calibrate:
            hardware = hardware_loop(
                self.model, self.backend, self.board, self.out, self.image, self.shown,
                self.config, self.budget.fps,
            )  # fmt: skip
        fps = self.budget.fps
        cost = hardware.cost if hardware else cost_model(self.backend, self.board, fps=fps)
        runner = self.runner(cost, hardware)
        env = LayerEnv(self.space, runner.finish, self.config)
        return self.drive(runner, env, fingerprint(**key), episodes, resume)

    def on_farm(
        self, key: dict[str, Any], episodes: int, resume: bool, workers: int | str,
        farm_file: str | Path | None,
    ) -> SearchResult:  # fmt: skip
        from ajpq.search.farm import Farm
        from ajpq.search.farm.rounds import Round, RoundEnv

        console = Console(stderr=True, quiet=not self.shown)
        farm = Farm.start(
            workers, self.board, farm_file, self.model, self.setup, self.backend, self.image,
            self.budget.fps, console,
        )  # fmt: skip
        try:
            hardware = HardwareLoop(
                self.backend, self.board, self.out, self.image, console=console,
                fps=self.budget.fps,
            )  # fmt: skip
            if self.config.calibrate:
                measure = lambda graphs: farm.measure_all(graphs, hardware.calibration)  # noqa: E731
                hardware.calibrate(sweep_graphs(self.model, self.config.act_bits), measure)
            runner = self.runner(hardware.cost, hardware)
            env = RoundEnv(
                self.space, self.config, farm.size, Round(runner, farm.pool, hardware).finish
            )
            rounds = -(-episodes // farm.size)
            return self.drive(
                runner, env, fingerprint(**key, batch=farm.size), rounds * farm.size, resume
            )
        finally:
            farm.close()

    def runner(self, cost: CostModel, hardware: HardwareLoop | None) -> Episodes:
        check_feasible(self.space, self.budget, self.config, cost)
        return Episodes(self.model, self.space, {**self.setup, "cost": cost, "hardware": hardware})

    def drive(
        self, runner: Episodes, env: Any, key: str, episodes: int, resume: bool
    ) -> SearchResult:
        """The agent, fresh or resumed, for the episodes left; checkpointed; the result."""
        agent = start(runner, env, key, resume, runner.seed)
        assert runner.state is not None
        remaining = episodes - runner.state.episodes_done
        callback = CheckpointAfterEpisode(runner)
        if remaining > 0:
            try:
                run_episodes(runner, agent, callback, episodes, remaining, self.shown)
            except BoardLost as exc:
                raise BoardLost(
                    f"{exc}; the checkpoint in {self.out} keeps the "
                    f"{runner.state.episodes_done} finished episodes: reconnect the board and "
                    "run the search again with resume=True (ajpq search --resume)"
                ) from None
        callback.model = agent
        callback.save()
        return result(self.model, runner, self.out, self.shown)


def start(runner: Episodes, env: LayerEnv, key: str, resume: bool, seed: int) -> Any:
    """A fresh agent, or the one checkpointed in out_dir when resuming."""
    found = checkpoint.load(runner.out_dir) if resume else None
    if found is None:
        base = evaluate(runner.model, runner.val_data, runner.task)
        runner.state = checkpoint.SearchState(key, base)
        first = None
        if runner.config.precision_start:
            first = precision_start(runner.space, runner.budget, runner.config, runner.cost)
        return make_agent(env, runner.config, seed, first)
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
    agent = load_agent(agent_path, env, runner.config)
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


def best_qmodel(model: nn.Module, runner: Episodes, best: Candidate, out: Path) -> QuantModel:
    """The best episode's fine-tuned model: saved by the episode, or fine-tuned again."""
    qmodel = quantize(model, best.policy)
    saved = out / BEST_QMODEL
    found = torch.load(saved, weights_only=True) if saved.exists() else None
    if found is not None and found.get("episode") == best.episode:
        qmodel.load_state_dict(found["state_dict"])
    else:
        runner.fine_tune(qmodel)
    return qmodel


def result(model: nn.Module, runner: Episodes, out: Path, shown: bool) -> SearchResult:
    assert runner.state is not None
    candidates = list(runner.state.candidates)
    if not candidates:
        raise AjpqError("the search ran no episode; give episodes >= 1")
    console = Console(stderr=True, quiet=not shown)
    if runner.config.finalists:
        candidates, qmodel = finalists(runner, candidates, console)
        best = chosen(candidates)
    else:
        best = chosen(candidates)
        qmodel = best_qmodel(model, runner, best, out)
    best.policy.save(out / "best_policy.json")
    (out / "candidates.json").write_text(json.dumps([c.to_dict() for c in candidates], indent=1))
    records: list[HardwareRecord] = runner.hardware.records if runner.hardware else []
    if records:
        (out / "hardware.json").write_text(json.dumps([r.to_dict() for r in records], indent=1))
        console.print(hardware_table(records))
    graph: HwGraph = lower(qmodel.eval())
    calibration = runner.hardware.calibration if runner.hardware else None
    return SearchResult(
        candidates, best.policy, qmodel, graph, records, calibration, runner.task.metric
    )
