"""The search bench's final fine-tunes: the same budget for every policy, each on one torch
thread, ``--jobs`` of them at a time in worker processes, each kept in the run cache
(``resume.py``) as it lands.

One thread each because a fine-tune's numbers depend on the thread count (float sums split
differently), so a fine-tune on one thread gives the same result on any machine and at any
``--jobs``; and because this training barely gains from a second thread (256 distilled QAT
images: 60.5 s on two threads, 62.6 s on one), two fine-tunes side by side on 2 cores finish
nearly twice as fast as one after the other.
"""

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import resume
import torch
from skynet_reference import recipe_of, reference_data, reference_model

import ajpq
from ajpq.data import Dataset

THREADS = 1  # per fine-tune, in its settings: see the module's docstring


@dataclass(frozen=True)
class Final:
    """One final fine-tune to run: the policy, how, and what to print when it lands."""

    policy: ajpq.Policy
    distill: float
    corrected: str  # the bias correction before it (ajpq.quantize's bias_correction)
    label: str
    weight_bytes: int


def entry(final: Final, arguments: argparse.Namespace, reference: str) -> Path:
    """The run-cache file of ``final``: named by every setting that makes its result."""
    settings = dict(
        policy=final.policy.to_json(), images=arguments.final_images,
        epochs=arguments.final_epochs, lr=arguments.final_lr, distill=final.distill,
        seed=arguments.seed, bias_correction=final.corrected, threads=THREADS,
    )  # fmt: skip
    return resume.entry(arguments.cache, "final", ".pt", reference=reference, **settings)


def final_score(
    model: torch.nn.Module, final: Final, data: tuple[Dataset, Dataset],
    arguments: argparse.Namespace,
) -> tuple[float, Any]:  # fmt: skip
    """The final fine-tune, then its IoU on all val, read from the fake-quant floats (~3x
    faster than the exact integers they equal up to rare ties); the bias correction, if any,
    on the first 32 training scenes before it."""
    train, val = data
    corrected = final.corrected != "off"
    calibration = torch.from_numpy(train.images[:32]).float() if corrected else None
    qmodel = ajpq.quantize(model, final.policy, calibration, bias_correction=final.corrected)
    images = train.subset(np.arange(min(len(train), arguments.final_images)))
    ajpq.train(
        qmodel, images, val.subset(np.arange(0)),
        epochs=arguments.final_epochs, lr=arguments.final_lr, seed=arguments.seed, progress=False,
        teacher=model if final.distill > 0 else None, distill=final.distill,
    )  # fmt: skip
    qmodel.eval().exact = False
    iou = ajpq.evaluate(qmodel, val)
    qmodel.exact = True
    return iou, qmodel


def scored(
    model: torch.nn.Module, final: Final, data: tuple[Dataset, Dataset],
    arguments: argparse.Namespace, reference: str,
) -> tuple[float, Any, float]:  # fmt: skip
    """``final``'s IoU, fine-tuned model and seconds: read back when a run finished it, else
    run here (on ``THREADS`` threads) and kept."""

    def run() -> tuple[float, Any]:
        threads = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        try:
            return final_score(model, final, data, arguments)
        finally:
            torch.set_num_threads(threads)

    return resume.fine_tuned(entry(final, arguments, reference), model, final.policy, run)


def run_missing(
    finals: list[Final], arguments: argparse.Namespace, reference: str, jobs: int
) -> None:
    """Run the finals the cache lacks, ``jobs`` at a time, each in its own process, in the
    order given; print each one's IoU on stderr as it lands."""
    missing = pending(finals, arguments, reference)
    if not missing:
        return
    print(
        f"{len(missing)} of {len(finals)} final fine-tunes to run, {min(jobs, len(missing))} "
        "at a time", file=sys.stderr, flush=True,
    )  # fmt: skip
    context = get_context("spawn")  # a forked child of a threaded torch can hang
    with ProcessPoolExecutor(min(jobs, len(missing)), mp_context=context) as pool:
        futures = {pool.submit(in_worker, f, arguments, reference): f for f in missing}
        for done, future in enumerate(as_completed(futures), 1):
            final, (iou, seconds) = futures[future], future.result()
            print(
                f"final fine-tune {done}/{len(missing)} {final.label}: IoU {iou:.4f} at "
                f"{final.weight_bytes} B ({seconds / 60:.1f} min)", file=sys.stderr, flush=True,
            )  # fmt: skip


def pending(finals: list[Final], arguments: argparse.Namespace, reference: str) -> list[Final]:
    """Those of ``finals`` the cache lacks."""
    return [f for f in finals if not entry(f, arguments, reference).exists()]


def in_worker(
    final: Final, arguments: argparse.Namespace, reference: str
) -> tuple[float, float]:  # fmt: skip
    """One final in a worker process: the reference model and data read from the cache."""
    recipe = recipe_of(arguments)
    data = reference_data(recipe, arguments.cache)
    model, _ = reference_model(recipe, data, arguments.cache)
    iou, _, seconds = scored(model, final, data, arguments, reference)
    return iou, seconds
