"""Checkpoint the search after every episode: the agent, its replay buffer and the records.

Files in ``out_dir``: ``agent-<episode>.zip`` and ``replay-<episode>.pkl`` (stable-
baselines3), then ``state.json`` (written last, atomically) naming them. A crash loses at
most the episode in flight; ``search(..., resume=True)`` continues from ``state.json``.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ajpq.errors import AjpqError
from ajpq.search.candidates import Candidate
from ajpq.search.hardware import HardwareRecord

STATE = "state.json"


@dataclass
class SearchState:
    fingerprint: str  # settings that must not change across a resume
    base_accuracy: float
    candidates: list[Candidate] = field(default_factory=list)
    hardware: list[HardwareRecord] = field(default_factory=list)  # candidates measured on board

    @property
    def episodes_done(self) -> int:
        return len(self.candidates)


def save(out_dir: Path, agent: Any, state: SearchState) -> None:
    episode = state.episodes_done
    agent_path = out_dir / f"agent-{episode}.zip"
    replay_path = out_dir / f"replay-{episode}.pkl"
    agent.save(agent_path)
    agent.save_replay_buffer(replay_path)
    body = {
        "format": "ajpq-search-1",
        "fingerprint": state.fingerprint,
        "base_accuracy": state.base_accuracy,
        "agent": agent_path.name,
        "replay": replay_path.name,
        "candidates": [c.to_dict() for c in state.candidates],
        "hardware": [r.to_dict() for r in state.hardware],
    }
    temporary = out_dir / (STATE + ".tmp")
    temporary.write_text(json.dumps(body, indent=1))
    os.replace(temporary, out_dir / STATE)
    for old in [*out_dir.glob("agent-*.zip"), *out_dir.glob("replay-*.pkl")]:
        if old not in (agent_path, replay_path):
            old.unlink()


def load(out_dir: Path) -> tuple[SearchState, Path, Path] | None:
    """(state, agent file, replay file) of the last checkpoint in ``out_dir``, or None."""
    path = out_dir / STATE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        state = SearchState(
            raw["fingerprint"],
            float(raw["base_accuracy"]),
            [Candidate.from_dict(c) for c in raw["candidates"]],
            [HardwareRecord.from_dict(r) for r in raw.get("hardware", [])],
        )
        return state, out_dir / raw["agent"], out_dir / raw["replay"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AjpqError(
            f"{path} is not a readable search checkpoint ({type(exc).__name__}: {exc}); "
            "delete it to start the search afresh"
        ) from None
