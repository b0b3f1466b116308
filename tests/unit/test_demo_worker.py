"""The demo's FINN worker: lowest priority, and gone with the demo even when it is killed."""

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import time
from ajpq.demo import finn_worker
with finn_worker() as worker:
    worker.submit(time.sleep, 0).result()  # the worker is up
    print(*worker._processes, flush=True)
    worker.submit(time.sleep, 60)
    time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def niceness(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_the_worker_runs_at_the_lowest_priority_and_ends_with_a_killed_demo() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    (worker,) = (int(pid) for pid in parent.stdout.readline().split())
    assert alive(worker) and niceness(worker) == 19
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker)
