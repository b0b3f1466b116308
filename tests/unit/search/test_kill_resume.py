"""Issue 5, acceptance 2: a search killed with SIGKILL in the middle of episode 3 resumes and
finishes with episodes 1-2 exactly as the killed run checkpointed them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import ajpq
from ajpq.search import Budget, SearchConfig, search

SIZE = (32, 64)
CONFIG = SearchConfig(warmup_episodes=1, qat_epochs=3)
BUDGET = Budget(weight_bytes=1200)
RUN = """
import sys, torch, ajpq
from ajpq.search import Budget, SearchConfig, search
torch.manual_seed(0)
train, val = ajpq.data.aerial(320, 32, input_size={size})
search(ajpq.models.skynet(0.125, {size}), train, val, budget={budget!r}, episodes=4,
       out_dir=sys.argv[1], seed=0, config={config!r}, progress=False)
"""


def checkpointed(out: Path) -> list[dict]:
    try:
        return json.loads((out / "state.json").read_text())["candidates"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


def test_kill_9_in_episode_3_then_resume_keeps_episodes_1_and_2(tmp_path: Path) -> None:
    script = RUN.format(size=SIZE, budget=BUDGET, config=CONFIG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env)
    deadline = time.monotonic() + 300
    while len(checkpointed(tmp_path)) < 2:  # saved when episode 3 starts
        assert process.poll() is None, "the search ended before episode 3"
        assert time.monotonic() < deadline, "no checkpoint of 2 episodes within 300 s"
        time.sleep(0.05)
    time.sleep(0.2)  # into episode 3's fine-tune (3 epochs of 320 images: seconds)
    assert process.poll() is None, "the search ended before the kill"
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    before = checkpointed(tmp_path)
    assert [c["episode"] for c in before] == [0, 1]
    torch.manual_seed(0)
    train, val = ajpq.data.aerial(320, 32, input_size=SIZE)
    result = search(
        ajpq.models.skynet(0.125, SIZE), train, val, budget=BUDGET, episodes=4,
        out_dir=tmp_path, seed=0, resume=True, config=CONFIG, progress=False,
    )  # fmt: skip
    after = [c.to_dict() for c in result.candidates]
    assert [c["episode"] for c in after] == [0, 1, 2, 3]
    assert after[:2] == before
    assert all(c["weight_bytes"] <= BUDGET.weight_bytes for c in after)
