"""A search on a board farm (issue 14): a local Ray cluster of 2 worker nodes, each with its
own QEMU board, runs 4 rounds of K=2 candidates of Skynet 0.125 32x64, each measured on a
board; killing a worker mid-candidate re-queues its candidate and changes no result."""

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch

import ajpq
from ajpq.search import Budget, SearchConfig, search
from ajpq.search.hardware import BoardLost
from tests.backend.tools import need, need_ray

BOARD = "qemu-mps2-an386"
BUDGET = Budget(weight_bytes=3_000)  # the dense 8-bit model needs 4,752 B
CONFIG = SearchConfig(warmup_episodes=2, train_images=64, val_images=32, calibrate=True)
NODES = ("q1", "q2")


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Any:
    need(request)
    need_ray(request)
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")  # a cluster on this machine only
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for node in NODES:
            resources = {f"board:{BOARD}": 1, f"board:{BOARD}:{node}": 1}
            cluster.add_node(num_cpus=1, resources=resources)
        cluster.wait_for_nodes()
        yield cluster
        cluster.shutdown()


@pytest.fixture(scope="module")
def data() -> Any:
    torch.manual_seed(0)
    model = ajpq.models.skynet(0.125, (32, 64))
    train, val = ajpq.data.aerial(128, 32, input_size=(32, 64))
    ajpq.train(model, train, val, epochs=4, seed=0, progress=False)
    return model, train, val


def farm_search(cluster: Any, data: Any, out: Path, episodes: int = 8, **options: Any) -> Any:
    model, train, val = data
    return search(
        model, train, val, board=BOARD, budget=BUDGET, episodes=episodes, out_dir=out,
        config=CONFIG, progress=False, workers=cluster.address, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def searched(cluster: Any, data: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("farm")
    return farm_search(cluster, data, out), out


def test_eight_candidates_within_budget_each_measured_on_a_board(searched) -> None:
    result, _ = searched
    assert [c.episode for c in result.candidates] == list(range(8))
    assert all(c.weight_bytes <= BUDGET.weight_bytes for c in result.candidates)
    assert all(c.measured_latency is not None for c in result.candidates)
    assert max(c.accuracy for c in result.candidates) > 0  # a trained model: a real reward
    records = [r for r in result.hardware if r.kind == "candidate"]
    assert [r.episode for r in records] == list(range(8))
    assert {r.board for r in records} == {f"{BOARD}:{node}" for node in NODES}
    spec = ajpq.boards.get(BOARD)
    for candidate, record in zip(result.candidates, records, strict=True):
        assert candidate.measured_latency == record.measured / spec.clock_hz


def evaluating_worker() -> psutil.Process | None:
    for process in psutil.process_iter(["cmdline"]):
        if any("BoardWorker.evaluate" in part for part in process.info["cmdline"] or []):
            return process
    return None


def kill_mid_candidate(out: Path, killed: list[int], every: bool = False) -> None:
    """Once the first round is checkpointed, kill -9 a worker busy with a candidate (``every``:
    each one seen busy, until none is left)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(killed) < (len(NODES) if every else 1):
        state = out / "state.json"
        if state.exists() and '"episode": 1' in state.read_text():
            worker = evaluating_worker()
            if worker is not None and worker.pid not in killed:
                killed.append(worker.pid)
                os.kill(worker.pid, signal.SIGKILL)
        time.sleep(0.2)


def test_a_killed_worker_changes_no_result(cluster, data, searched, tmp_path: Path) -> None:
    reference, reference_out = searched
    for cached in reference_out.glob("calibration-*.json"):  # the sweep, measured once
        shutil.copy(cached, tmp_path)
    killed: list[int] = []
    killer = threading.Thread(target=kill_mid_candidate, args=(tmp_path, killed), daemon=True)
    killer.start()
    result = farm_search(cluster, data, tmp_path)
    killer.join(timeout=1)
    assert killed, "no worker was seen mid-candidate"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == "zombie"
    assert [c.to_dict() for c in result.candidates] == [c.to_dict() for c in reference.candidates]
    measured = [(r.label, r.measured) for r in result.hardware]
    assert measured == [(r.label, r.measured) for r in reference.hardware]


def test_a_farm_search_resumes_from_its_checkpoint(cluster, data, searched, tmp_path) -> None:
    reference, reference_out = searched
    shutil.copytree(reference_out, tmp_path / "search")
    resumed = farm_search(cluster, data, tmp_path / "search", episodes=9, resume=True)
    assert [c.episode for c in resumed.candidates] == list(range(10))  # one more round of 2
    assert [c.to_dict() for c in resumed.candidates[:8]] == [
        c.to_dict() for c in reference.candidates
    ]
    assert all(c.measured_latency is not None for c in resumed.candidates[8:])


def test_losing_every_board_stops_with_the_checkpoint(cluster, data, searched, tmp_path) -> None:
    _, reference_out = searched
    for cached in reference_out.glob("calibration-*.json"):
        shutil.copy(cached, tmp_path)
    killed: list[int] = []
    killer = threading.Thread(target=kill_mid_candidate, args=(tmp_path, killed, True))
    killer.start()
    with pytest.raises(BoardLost) as raised:
        farm_search(cluster, data, tmp_path)
    killer.join(timeout=10)
    message = str(raised.value)
    assert len(killed) == 2 and "\n" not in message
    assert message.startswith("every board of the farm is gone")
    assert f"the checkpoint in {tmp_path} keeps the 2 finished episodes" in message
    state = json.loads((tmp_path / "state.json").read_text())
    assert [c["episode"] for c in state["candidates"]] == [0, 1]
