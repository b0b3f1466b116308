"""Baselines at the search's budget, scored exactly like a search episode (the same short QAT
fine-tune and the task's metric, ``Episodes.fine_tune``; the same cost, ``policy_cost``):

- ``uniform-8``, ``uniform-4``: every channel at 8 (4) bits, nothing pruned.
- ``deep-compression``: step-wise as in Han et al.: magnitude-prune every layer by the same
  share (the one L1 importance criterion) until the budget is met, then quantize at 8 bits
  (lower, 6 then 4, only if no sparsity up to ``max_sparsity`` fits at 8), then store as the
  backend does (``stored_bytes``: Huffman-coded on mcu).
- ``haq``: per-layer bit-widths, no pruning: the action wall applied to a uniform-8 policy
  with pruning disabled.
- ``amc``: per-layer pruning at 8 bits: the action wall raising sparsity layer by layer.

A baseline that cannot meet the budget is evaluated at its cheapest setting and returned with
``feasible=False``, never dropped.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from ajpq.backends import get as get_backend
from ajpq.data.samples import Normalization
from ajpq.graph.lower import lower
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from ajpq.search.ajpq import episode_setup, pixel_inputs
from ajpq.search.budget import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.candidates import Candidate
from ajpq.search.controllers import LayerAction, build_policy, walk_from_top
from ajpq.search.cost import CostModel, cost_model, policy_cost
from ajpq.search.episodes import Episodes
from ajpq.search.space import SearchSpace
from ajpq.tasks import Task, default_task
from ajpq.train import evaluate

BASELINES = ("uniform-8", "uniform-4", "deep-compression", "haq", "amc")
FitCheck = Callable[[Policy], bool]


def _uniform(space: SearchSpace, bits: int, config: SearchConfig) -> Policy:
    layers = {name: LayerAction(0.0, bits) for name in space.names}
    return build_policy(space, layers, replace(config, quantiles=1))


def _deep_compression(
    space: SearchSpace, config: SearchConfig, fits: FitCheck
) -> tuple[Policy, bool]:
    """The smallest uniform sparsity (steps of ``sparsity_step``) that fits at 8 bits, else at
    6, 4, ``min_bits``; the cheapest setting when none does."""
    flat = replace(config, quantiles=1)
    steps = int(round(config.max_sparsity / config.sparsity_step))
    sparsities = [min(config.max_sparsity, i * config.sparsity_step) for i in range(steps + 1)]
    policy = None
    for bits in sorted({8, 6, 4, config.min_bits}, reverse=True):
        for sparsity in sparsities:
            actions = {name: LayerAction(sparsity, bits) for name in space.names}
            policy = build_policy(space, actions, flat)
            if fits(policy):
                return policy, True
    assert policy is not None
    return policy, False


def _walled(
    space: SearchSpace, budget: Budget, config: SearchConfig, cost: CostModel
) -> tuple[Policy, bool]:
    """The action wall from uniform 8 bits, unpruned, under ``config``'s limits."""
    try:
        return walk_from_top(space, budget, config, cost)[1], True
    except BudgetInfeasible:
        cheapest = {name: LayerAction(config.max_sparsity, config.min_bits) for name in space.names}
        return build_policy(space, cheapest, config), False


def baseline_policies(
    space: SearchSpace, budget: Budget, config: SearchConfig, cost: CostModel
) -> dict[str, tuple[Policy, bool]]:
    """Each baseline's policy and whether it meets ``budget``."""

    def fits(policy: Policy) -> bool:
        return budget.fits(policy_cost(space, policy, cost if budget.needs_estimate else None))

    chosen = {}
    for name, bits in (("uniform-8", 8), ("uniform-4", 4)):
        policy = _uniform(space, bits, config)
        chosen[name] = (policy, fits(policy))
    chosen["deep-compression"] = _deep_compression(space, config, fits)
    haq = replace(config, max_sparsity=0.0, quantiles=1, max_bits=8)
    chosen["haq"] = _walled(space, budget, haq, cost)
    amc = replace(config, min_bits=8, max_bits=8, quantiles=1)
    chosen["amc"] = _walled(space, budget, amc, cost)
    return chosen


def baselines(
    model: nn.Module,
    train: Any,
    val: Any,
    budget: Budget,
    backend: str = "mcu",
    board: str = "qemu-mps2-an386",
    config: SearchConfig = SearchConfig(),  # noqa: B008 (frozen)
    out_dir: str | Path = "build/ajpq-baselines",
    seed: int = 0,
    names: Sequence[str] | None = None,
    calibration: Any = None,
    task: Task | None = None,
    input_normalization: Normalization | None = None,
) -> list[Candidate]:
    """Evaluate the baselines (``BASELINES``) at ``budget`` with the search's own fine-tune and
    cost (pass the search's ``result.calibration`` for its board-calibrated estimate); writes
    ``out_dir/baselines.json``. Each Candidate has ``name`` and ``feasible``. ``task`` and
    ``input_normalization`` as for ``search``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, train, val = pixel_inputs(model, train, val, input_normalization)
    task = task if task is not None else default_task(model)
    space = SearchSpace.of(model)
    chosen = get_backend(backend)
    estimate = cost_model(backend, board, calibration, budget.fps)
    setup = episode_setup(budget, config, estimate, train, val, seed, out, task)
    runner = Episodes(model, space, setup)
    base_accuracy = evaluate(model, setup["val"], task)
    found = []
    for name, (policy, feasible) in baseline_policies(space, budget, config, estimate).items():
        if names is not None and name not in names:
            continue
        cost = policy_cost(space, policy, estimate)
        qmodel = quantize(model, policy)
        accuracy = runner.fine_tune(qmodel)
        stored = chosen.stored_weight_bytes(lower(qmodel))
        found.append(
            Candidate(
                policy,
                accuracy,
                cost.weight_bytes,
                cost.bops,
                cost.latency,
                None,
                -1,
                config.reward_scale * (accuracy - base_accuracy),
                name,
                feasible,
                stored,
                cost.fps,
                budget.use(cost),
            )  # fmt: skip
        )
    (out / "baselines.json").write_text(json.dumps([c.to_dict() for c in found], indent=1))
    return found
