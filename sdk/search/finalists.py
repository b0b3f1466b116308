"""The finalists: the reward is a cheap proxy (docs/search.md) that cannot tell apart policies
a fraction of a point apart, so the best ``SearchConfig.finalists`` distinct candidates by
reward get a longer fine-tune (``finalist_images`` x ``finalist_epochs`` at ``finalist_lr``,
distilled like every QAT fine-tune, from the output layer's bias correction unless
``finalist_bias_correction`` is ``"off"``) and are scored on the reward's val images. The
search's result is the best of them, or with ``finalist_tolerance`` the one with the fewest
weight bytes among those at most that far below the best. Deterministic for a seed, like the
episodes.
"""

import json
from dataclasses import replace

from rich.console import Console

from ajpq.data.samples import calibration_batch
from ajpq.errors import AjpqError
from ajpq.quant.bias_correction import MODES
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import QuantModel, quantize
from ajpq.search.budget import SearchConfig
from ajpq.search.candidates import Candidate, smallest_within
from ajpq.search.episodes import Episodes


def check_finalists(config: SearchConfig) -> None:
    """Raise AjpqError for finalist settings that cannot run."""
    if config.finalists < 0 or (config.finalists and config.finalist_epochs < 1):
        raise AjpqError(
            f"finalists={config.finalists} and finalist_epochs={config.finalist_epochs}: give "
            "finalists >= 0 (0 turns them off) and finalist_epochs >= 1."
        )
    if config.finalist_bias_correction not in MODES or config.finalist_tolerance < 0:
        raise AjpqError(
            f"finalist_bias_correction={config.finalist_bias_correction!r} and "
            f"finalist_tolerance={config.finalist_tolerance}: give one of {MODES} and a "
            "tolerance >= 0 (in the task's metric, e.g. 0.005 IoU)."
        )


def distinct_best(candidates: list[Candidate], count: int) -> list[int]:
    """Indices of the ``count`` best candidates by reward, one per distinct policy (the first
    to play it), best first."""
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i].accuracy)
    seen: set[str] = set()
    picked = []
    for index in order:
        key = candidates[index].policy.to_json()
        if key not in seen:
            seen.add(key)
            picked.append(index)
        if len(picked) == count:
            break
    return picked


def finalists(
    runner: Episodes, candidates: list[Candidate], console: Console
) -> tuple[list[Candidate], QuantModel]:
    """The candidates with ``finalist_accuracy`` set on the finalists, and the winner's
    fine-tuned model (``search`` checked the settings with ``check_finalists``)."""
    scored = list(candidates)
    models: dict[int, QuantModel] = {}
    picked = distinct_best(scored, runner.config.finalists)
    for rank, index in enumerate(picked, 1):
        candidate = scored[index]
        qmodel = finalist_model(runner, candidate.policy)
        accuracy = runner.finalist_tune(qmodel)
        scored[index] = replace(candidate, finalist_accuracy=accuracy)
        models[index] = qmodel
        console.print(
            f"finalist {rank}/{len(picked)}: episode {candidate.episode}, reward metric "
            f"{candidate.accuracy:.4f}, after the finalists' fine-tune {accuracy:.4f}"
        )
    best = smallest_within([scored[i] for i in picked], runner.config.finalist_tolerance)
    winner = next(i for i in picked if scored[i] is best)
    scored[winner] = replace(measured(runner, best, models[winner]), picked=True)
    runner.out_dir.joinpath("finalists.json").write_text(
        json.dumps([scored[i].to_dict() for i in picked], indent=1)
    )
    return scored, models[winner]


def finalist_model(runner: Episodes, policy: Policy) -> QuantModel:
    """``policy`` quantized for the finalists' fine-tune: with ``finalist_bias_correction``,
    on (and with activation scales from) the first 32 of its training images."""
    mode = runner.config.finalist_bias_correction
    calibration = calibration_batch(runner.finalist_data) if mode != "off" else None
    return quantize(runner.model, policy, calibration, bias_correction=mode)


def measured(runner: Episodes, winner: Candidate, qmodel: QuantModel) -> Candidate:
    """The winner with its latency on the board in the loop (which measured the reward's new
    bests only); as it was without a board or when already measured."""
    if winner.measured_latency is not None:
        return winner
    record = runner.measure(qmodel, winner.episode)
    return winner if record is None else replace(winner, measured_latency=record.measured_latency)
