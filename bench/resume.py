"""What a long bench run keeps on disk, so that a run stopped part way (a closed session, a
reboot) starts again where it stopped: each search's candidates and seconds, each baseline
set, and each final fine-tune's IoU, seconds and weights. Every entry is named by a hash of
all the settings that made it, so a changed setting makes a new entry; the code is not in the
hash, so delete ``runs`` after changing the search or the fine-tune."""

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import ajpq
from ajpq.search import Candidate


def entry(cache: Path, kind: str, suffix: str, **settings: Any) -> Path:
    """The file for one result of ``kind``: a short hash of ``settings`` (JSON, sorted keys)
    names it, in ``cache/runs``."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return cache / "runs" / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}{suffix}"


def file_hash(path: Path) -> str:
    """The file's content hash: a retrained reference makes new entries."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def candidates(path: Path, run: Callable[[], list[Candidate]]) -> tuple[list[Candidate], float]:
    """``run()``'s candidates and seconds, read from ``path`` when an earlier run wrote it."""
    if path.exists():
        saved = json.loads(path.read_text())
        return [Candidate.from_dict(c) for c in saved["candidates"]], saved["seconds"]
    started = time.monotonic()
    found = run()
    seconds = time.monotonic() - started
    record = {"seconds": seconds, "candidates": [c.to_dict() for c in found]}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(record)))
    return found, seconds


def fine_tuned(
    path: Path, model: torch.nn.Module, policy: ajpq.Policy,
    run: Callable[[], tuple[float, Any]],
) -> tuple[float, Any, float]:  # fmt: skip
    """``run()``'s (IoU, fine-tuned model) and its seconds, or the ones saved at ``path``
    (the weights loaded into a fresh ``ajpq.quantize(model, policy)``)."""
    if path.exists():
        saved = torch.load(path, weights_only=True)
        qmodel = ajpq.quantize(model, policy)
        qmodel.load_state_dict(saved["state"])
        return saved["iou"], qmodel.eval(), saved["seconds"]
    started = time.monotonic()
    iou, qmodel = run()
    seconds = time.monotonic() - started
    record = {"iou": iou, "seconds": seconds, "state": qmodel.state_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: torch.save(record, tmp))
    return iou, qmodel, seconds


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """A run killed while writing leaves no half-written entry."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)
