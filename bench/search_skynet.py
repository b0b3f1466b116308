"""AJPQ (learned channel controller and fixed ladder) vs the five baselines, each scored after
the same final fine-tune; prints JSON.

    python bench/search_skynet.py                   # Skynet 0.5, 160x320 (the DAC-SDC size)
    python bench/search_skynet.py --width-mult 0.125 --input-size 32 64 --n-train 96 \
        --n-val 32 --epochs 1 --episodes 2 --train-images 32 --val-images 16 \
        --final-images 32 --final-epochs 1 --finalist-images 16 --tau-policies 3   # smoke run

The fp32 reference comes from ``skynet_reference.py`` (trained until its val IoU plateaus,
cached in ``~/.cache/ajpq/bench``; its training time is reported apart). The baselines' budget
is fp32 bytes / 12 (``--compression``); both AJPQ searches get fp32 / 14
(``--ajpq-compression``), since the goal is an AJPQ model smaller than every baseline that
keeps the accuracy. Both searches (same seed, same episodes, same proxy) score each policy by
the reward proxy: a ``--qat-epochs`` QAT fine-tune on ``--train-images`` distilled from the
fp32 model, mean IoU on ``--val-images`` held-out scenes (another seed, not the final val set).
Each search's ``--finalists`` best distinct proxies then get a longer fine-tune
(``--finalist-images`` x ``--finalist-epochs``, from ``--finalist-bias-correction``), scored
on the same held-out scenes, and the best of them (or the smallest within
``--finalist-tolerance`` of the best) is the search's result (its time counts).
Then every method's policy, the learned search's other finalists and more of its candidates
up to ``--tau-policies`` get the same final fine-tune (``--final-images`` x
``--final-epochs``, distilled) and are scored on all ``--n-val`` val images (fake-quant
floats, equal to the deployed integers up to rare ties); Kendall's tau between proxy and final
IoU says whether the proxy ranks like the real thing. Each method's graph is run once on the
emulated board (QEMU -icount instructions).

At the defaults this is 12 final fine-tunes of ~50 minutes each, on one thread each,
``--jobs`` at a time (``finals.py``; ~5 h on 2 cores). Each search, the baselines and each
final fine-tune are kept in ``~/.cache/ajpq/bench/runs`` (``resume.py``) as they finish, so
the same command run again after a stop starts where it stopped. The final fine-tunes start
AJPQ first, then the other methods from the smallest, then the other policies; each one's IoU
is printed on stderr as it lands; ``--landed-only`` prints the JSON from those already landed
(while a run goes on, say) and lists the others under ``pending``. Each final fine-tune
starts with the output layer's bias corrected (``--bias-correction output``, see
``ajpq.quantize``): uncorrected, a heavily pruned policy can lose the object in it
(docs/quantization.md). The learned search's result is also fine-tuned without
distillation, and without the correction, to compare.

Goals: AJPQ >= 12x smaller than fp32 at <= 1 point IoU below it, smaller than every baseline
within 1 point, search <= 20 minutes, tau >= 0.6. A missed goal is printed in ``missed``.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import finals
import numpy as np
import resume
import torch
from scipy.stats import kendalltau
from skynet_reference import (
    CONVERGED_QAT_LR,
    add_arguments,
    plateau,
    recipe_of,
    reference_data,
    reference_model,
    reference_path,
)

import ajpq
from ajpq.data import Dataset, aerial
from ajpq.quant.bias_correction import MODES
from ajpq.search import Budget, Candidate, SearchConfig, baselines, pareto_plot, search
from ajpq.search.candidates import chosen
from ajpq.search.hardware import HardwareLoop

GOAL_COMPRESSION, GOAL_POINTS, GOAL_SEARCH_SECONDS, GOAL_TAU = 12.0, 1.0, 1200.0, 0.6
AJPQ_COMPRESSION = 14.0  # AJPQ must come out smaller than the baselines at fp32/12
CONTROLLERS = {"ajpq": "learned", "ajpq-ladder": "ladder"}


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--episodes", type=int, default=32, help="per search")
    parser.add_argument("--compression", type=float, default=GOAL_COMPRESSION, help="baselines")
    parser.add_argument("--ajpq-compression", type=float, default=AJPQ_COMPRESSION)
    parser.add_argument("--train-images", type=int, default=256, help="proxy QAT images")
    parser.add_argument("--val-images", type=int, default=200, help="proxy reward images")
    parser.add_argument("--qat-epochs", type=int, default=0, help="proxy; 0: no fine-tune")
    parser.add_argument("--qat-lr", type=float, default=SearchConfig.qat_lr, help="proxy")
    parser.add_argument("--distill", type=float, default=1.0, help="0: no distillation")
    parser.add_argument("--final-images", type=int, default=3000, help="final fine-tune images")
    parser.add_argument("--final-epochs", type=int, default=6)
    parser.add_argument("--final-lr", type=float, default=CONVERGED_QAT_LR, help="final fine-tune")
    parser.add_argument(
        "--bias-correction", choices=MODES, default="output",
        help="final fine-tune: correct these layers' biases first (ajpq.quantize)",
    )  # fmt: skip
    parser.add_argument("--finalists", type=int, default=3, help="0: choose by the proxy")
    parser.add_argument("--finalist-images", type=int, default=500)
    parser.add_argument("--finalist-epochs", type=int, default=1)
    parser.add_argument(
        "--finalist-bias-correction", choices=MODES, default="output",
        help="the finalists' fine-tune: correct these layers' biases first (as the final)",
    )  # fmt: skip
    parser.add_argument(
        "--finalist-tolerance", type=float, default=0.01,
        help="the search picks the fewest bytes among finalists this much IoU below the best",
    )  # fmt: skip
    parser.add_argument("--tau-policies", type=int, default=10)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="final fine-tunes at a time"
    )
    parser.add_argument(
        "--landed-only", action="store_true",
        help="run no final fine-tune: report those in the cache, list the others as pending",
    )  # fmt: skip
    parser.add_argument("--board", default="qemu-mps2-an386-4m")
    parser.add_argument("--out", type=Path, default=Path("build/bench-search"))
    return parser.parse_args(argv)


def proxy_config(arguments: argparse.Namespace, controller: str) -> SearchConfig:
    return SearchConfig(
        warmup_episodes=max(1, arguments.episodes // 2),
        train_images=arguments.train_images,
        val_images=arguments.val_images,
        qat_epochs=arguments.qat_epochs,
        qat_lr=arguments.qat_lr,
        distill=arguments.distill,
        channel_controller=controller,
        finalists=arguments.finalists,
        finalist_images=arguments.finalist_images,
        finalist_epochs=arguments.finalist_epochs,
        finalist_lr=arguments.final_lr,
        finalist_bias_correction=arguments.finalist_bias_correction,
        finalist_tolerance=arguments.finalist_tolerance,
    )


def no_fine_tune_score(model: torch.nn.Module, policy: ajpq.Policy, val: Dataset) -> float:
    """The cheapest proxy, for comparison: the quantized model's IoU without any fine-tune."""
    qmodel = ajpq.quantize(model, policy)
    qmodel.exact = False
    return ajpq.evaluate(qmodel, val)


def fine_tune_order(found: dict[str, Candidate]) -> list[Candidate]:
    """AJPQ first, then the other methods from the smallest: the rows that decide the goals
    finish first in a run that stops early (the order changes no result)."""
    others = sorted(
        (c for name, c in found.items() if name != "ajpq"), key=lambda c: c.weight_bytes
    )
    return [found["ajpq"], *others]


def tau_policies(found: list[Candidate], chosen: list[Candidate], count: int) -> list[Candidate]:
    """``chosen`` plus search candidates spread evenly over the proxy's range, ``count`` in
    all (distinct policies)."""
    seen = {c.policy.to_json() for c in chosen}
    pool = []
    for candidate in sorted(found, key=lambda c: c.accuracy):
        key = candidate.policy.to_json()
        if key not in seen:
            seen.add(key)
            pool.append(candidate)
    extra = max(0, count - len(chosen))
    picks = np.unique(np.linspace(0, len(pool) - 1, extra).round().astype(int)) if pool else []
    return chosen + [pool[i] for i in picks]


def other_correction(corrected: str) -> str:
    """The bias correction the learned search's result is also fine-tuned with, to compare."""
    return "off" if corrected != "off" else "output"


def final_plan(
    scored: list[Candidate], arguments: argparse.Namespace
) -> tuple[list[finals.Final], finals.Final, finals.Final]:  # fmt: skip
    """The final fine-tune of each of ``scored`` (AJPQ's first), and AJPQ's without
    distillation and with the other bias correction."""
    plan = [
        finals.Final(
            c.policy,
            arguments.distill,
            arguments.bias_correction,
            c.name or f"episode {c.episode}",
            c.weight_bytes,
        )
        for c in scored
    ]
    undistilled = replace(plan[0], distill=0.0, label="ajpq undistilled")
    other = other_correction(arguments.bias_correction)
    return plan, undistilled, replace(plan[0], corrected=other, label=f"ajpq correction {other}")


def landed(
    scored: list[Candidate], plan: list[finals.Final], pending: list[finals.Final]
) -> tuple[list[Candidate], list[finals.Final]]:  # fmt: skip
    """The policies of ``scored`` and their finals, less those ``pending``."""
    kept = [(c, f) for c, f in zip(scored, plan, strict=True) if f not in pending]
    if not kept or kept[0][1] != plan[0]:
        raise SystemExit("AJPQ's final fine-tune has not landed yet: run without --landed-only.")
    return [c for c, _ in kept], [f for _, f in kept]


def method_row(
    candidate: Candidate, iou: float, qmodel: Any, fp32_bytes: int, loop: HardwareLoop
) -> dict[str, Any]:
    graph = ajpq.lower(qmodel)
    record = loop.measure(graph, "benchmark", candidate.name, None, refit=False)
    return {
        "mean_iou": round(iou, 4),
        "proxy_mean_iou": round(candidate.accuracy, 4),
        "weight_bytes": candidate.weight_bytes,
        "compression_vs_fp32": round(fp32_bytes / candidate.weight_bytes, 2),
        "budget_use": round(max(candidate.budget_use.values(), default=0.0), 4),
        "bops": candidate.bops,
        "qemu_instructions": None if record is None else record.measured,
        "feasible": candidate.feasible,
    }


def finalist_rows(scored: list[Candidate], final: list[float]) -> list[dict[str, Any]]:
    """The learned search's finalists: proxy, finalists' fine-tune (on the proxy's held-out
    images) and the final IoU on all val, with the weight bytes and the search's pick."""
    return [
        {
            "episode": c.episode,
            "proxy_mean_iou": round(c.accuracy, 4),
            "finalist_mean_iou": round(c.finalist_accuracy, 4),
            "final_mean_iou": round(iou, 4),
            "weight_bytes": c.weight_bytes,
            "chosen": c.name == "ajpq",
        }
        for c, iou in zip(scored, final, strict=True)
        if c.finalist_accuracy is not None and c.name in ("", "ajpq")
    ]


def goals(
    fp32_iou: float, rows: dict[str, dict], seconds: float, tau: float, pending: list[str]
) -> dict[str, Any]:  # fmt: skip
    """Each goal and whether it is met; with final fine-tunes ``pending`` (``--landed-only``),
    a missed entry saying the rows and the tau leave them out."""
    best = rows["ajpq"]
    below = 100 * (fp32_iou - best["mean_iou"])
    side = "below" if below >= 0 else "above"
    close = [
        name for name, row in rows.items()
        if not name.startswith("ajpq") and 100 * (fp32_iou - row["mean_iou"]) <= GOAL_POINTS
        and row["weight_bytes"] <= best["weight_bytes"]
    ]  # fmt: skip
    checks = {
        f"AJPQ >= {GOAL_COMPRESSION:g}x smaller than fp32 (is {best['compression_vs_fp32']}x)": (
            best["compression_vs_fp32"] >= GOAL_COMPRESSION
        ),
        f"AJPQ <= 1 point IoU below fp32 (is {abs(below):.2f} {side})": below <= GOAL_POINTS,
        f"no baseline within 1 point is as small as AJPQ (these are: {close})": not close,
        f"search <= 20 minutes (took {seconds / 60:.1f})": seconds <= GOAL_SEARCH_SECONDS,
        f"Kendall tau >= {GOAL_TAU} (is {tau:.3f})": tau >= GOAL_TAU,
    }
    missed = [goal for goal, met in checks.items() if not met]
    if pending:
        missed.append(f"not yet run, so left out above: the final fine-tunes of {pending}")
    return {"goals": checks, "missed": missed, "pending": pending}


def one_search(
    model: torch.nn.Module, data: tuple[Dataset, Dataset], arguments: argparse.Namespace,
    budget: Budget, config: SearchConfig,
) -> list[Candidate]:  # fmt: skip
    out_dir = arguments.out / f"search-{config.channel_controller}"
    return search(
        model, *data, budget=budget, episodes=arguments.episodes, out_dir=out_dir,
        seed=arguments.seed, config=config,
    ).candidates  # fmt: skip


def run_searches(
    model: torch.nn.Module, data: tuple[Dataset, Dataset], arguments: argparse.Namespace,
    budgets: dict[str, Budget], reference: str,
) -> tuple[dict[str, Candidate], list[Candidate], list[Candidate], dict[str, float]]:  # fmt: skip
    """Both AJPQ searches and the baselines (each read back when a stopped run finished it):
    each method's candidate, the learned search's candidates, the baselines, the seconds."""
    found: dict[str, Candidate] = {}
    searched: list[Candidate] = []
    seconds: dict[str, float] = {}
    for name, controller in CONTROLLERS.items():
        config = proxy_config(arguments, controller)
        settings = dict(config=asdict(config), budget=budgets["ajpq"], episodes=arguments.episodes)
        entry = resume.entry(arguments.cache, "search", ".json", reference=reference, **settings)
        run = partial(one_search, model, data, arguments, budgets["ajpq"], config)
        candidates, seconds[name] = resume.candidates(entry, run)
        found[name] = replace(chosen(candidates), name=name)
        searched += candidates if controller == "learned" else []
    config = proxy_config(arguments, "learned")
    settings = dict(config=asdict(config), budget=budgets["baselines"], board=arguments.board)
    entry = resume.entry(arguments.cache, "baselines", ".json", reference=reference, **settings)
    others, _ = resume.candidates(entry, lambda: baselines(
        model, *data, budgets["baselines"], board=arguments.board, config=config,
        out_dir=arguments.out / "baselines", seed=arguments.seed,
    ))  # fmt: skip
    found.update({c.name: c for c in others})
    return found, searched, others, seconds


def main(argv: list[str]) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    began = time.monotonic()
    recipe = recipe_of(arguments)
    arguments.cache = arguments.cache.expanduser()
    data = reference_data(recipe, arguments.cache)
    model, trained = reference_model(recipe, data, arguments.cache)
    reference = resume.file_hash(reference_path(recipe, arguments.cache))
    held_out = aerial(0, arguments.val_images, recipe.input_size, recipe.seed + 1)[1]
    proxy_data = (data[0], held_out)  # the reward never sees the final val images
    fp32_bytes = (
        4 * ajpq.lower(ajpq.quantize(model, ajpq.Policy.uniform(model))).summary()["params"]
    )
    budgets = {
        "ajpq": Budget(weight_bytes=int(fp32_bytes / arguments.ajpq_compression)),
        "baselines": Budget(weight_bytes=int(fp32_bytes / arguments.compression)),
    }
    found, searched, others, seconds = run_searches(
        model, proxy_data, arguments, budgets, reference
    )
    finalists = [
        c for c in searched
        if c.finalist_accuracy is not None and c.policy != found["ajpq"].policy
    ]  # fmt: skip
    loop = HardwareLoop("mcu", arguments.board, arguments.out / "measure", data[1].images[0])
    scored = tau_policies(searched, [*fine_tune_order(found), *finalists], arguments.tau_policies)
    corrected, other = arguments.bias_correction, other_correction(arguments.bias_correction)
    plan, undistilled, compared = final_plan(scored, arguments)
    every = [*plan, undistilled, compared]
    if not arguments.landed_only:
        finals.run_missing(every, arguments, reference, arguments.jobs)
    pending = finals.pending(every, arguments, reference)
    scored, plan = landed(scored, plan, pending)
    rows, proxy, final, untuned, spent = {}, [], [], [], []
    for candidate, planned in zip(scored, plan, strict=True):
        untuned.append(no_fine_tune_score(model, candidate.policy, held_out))
        iou, qmodel, took = finals.scored(model, planned, data, arguments, reference)
        proxy.append(candidate.accuracy)
        final.append(iou)
        spent.append(took)
        if candidate.name:
            rows[candidate.name] = method_row(candidate, iou, qmodel, fp32_bytes, loop)
    undistilled_iou, compared_iou = (
        None if f in pending else round(finals.scored(model, f, data, arguments, reference)[0], 4)
        for f in (undistilled, compared)
    )
    tau = float(kendalltau(proxy, final).statistic)
    pareto_plot(searched, others, arguments.out / "pareto.png")
    fp32_iou = float(trained["mean_iou"])
    episode_seconds = seconds["ajpq"] / max(1, arguments.episodes)
    return {
        "model": {"width_mult": recipe.width_mult, "input_size": list(recipe.input_size)},
        "fp32": {
            "mean_iou": round(fp32_iou, 4),
            "val_images": len(data[1]),
            "weight_bytes": fp32_bytes,
            "val_curve": trained["val_curve"],
            "loss_curve": trained["loss_curve"],
            "plateaued": plateau(trained["val_curve"]),
            "train_seconds": trained["train_seconds"],
        },
        "budget_weight_bytes": {name: b.weight_bytes for name, b in budgets.items()},
        "episodes": arguments.episodes,
        "proxy": {
            "qat_epochs": arguments.qat_epochs,
            "train_images": arguments.train_images,
            "qat_lr": arguments.qat_lr,
            "val_images": arguments.val_images,
        },
        "finalists_fine_tune": {
            "finalists": arguments.finalists,
            "images": arguments.finalist_images,
            "epochs": arguments.finalist_epochs,
            "bias_correction": arguments.finalist_bias_correction,
            "tolerance": arguments.finalist_tolerance,
        },
        "final_fine_tune": {
            "images": arguments.final_images,
            "epochs": arguments.final_epochs,
            "lr": arguments.final_lr,
            "distill": arguments.distill,
            "bias_correction": arguments.bias_correction,
        },
        "rows": rows,
        "finalists": finalist_rows(scored, final),
        "distillation": {
            "ajpq_final_mean_iou_with": rows["ajpq"]["mean_iou"],
            "ajpq_final_mean_iou_without": undistilled_iou,
        },
        "bias_correction": {
            f"ajpq_final_mean_iou_{corrected}": rows["ajpq"]["mean_iou"],
            f"ajpq_final_mean_iou_{other}": compared_iou,
        },
        "reward_proxy": {
            "kendall_tau": round(tau, 3),
            "policies": len(proxy),
            "proxy_mean_iou": [round(p, 4) for p in proxy],
            "final_mean_iou": [round(f, 4) for f in final],
            "seconds_per_episode": round(episode_seconds, 1),
            "no_fine_tune": {
                "kendall_tau": round(float(kendalltau(untuned, final).statistic), 3),
                "proxy_mean_iou": [round(u, 4) for u in untuned],
            },
        },
        "final_seconds_per_policy": round(float(np.mean(spent)), 1),
        "search_seconds": {name: round(s, 1) for name, s in seconds.items()},
        **goals(fp32_iou, rows, seconds["ajpq"], tau, [f.label for f in pending]),
        "wall_seconds": round(time.monotonic() - began, 1),
        "pareto_png": str(arguments.out / "pareto.png"),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
