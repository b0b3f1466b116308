"""The demo's FINN worker: lowest priority, and gone with the demo even when it is killed."""

import os
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

# /proc and the parent-death signal are Linux's; elsewhere `alive` could not see a process
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc (Linux)")

PARENT = """
import os, time
from ajpq.demo_finn import finn_worker
worker = finn_worker()
print(worker.submit(os.getpid).result(), flush=True)  # the worker is up and set up
worker.submit(time.sleep, 60)
time.sleep(60)
"""


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from its state field on, None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def read_line(parent: subprocess.Popen, seconds: float) -> str:
    assert parent.stdout is not None
    ready, _, _ = select.select([parent.stdout], [], [], seconds)
    assert ready, f"the demo process printed no worker pid within {seconds:g} s"
    return parent.stdout.readline()


def test_the_worker_runs_at_the_lowest_priority_and_ends_with_a_killed_demo() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        worker = 0
        try:
            worker = int(read_line(parent, 60))
            fields = stat_fields(worker)
            assert fields is not None and int(fields[16]) == 19  # nice, whatever pytest's
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
            assert gone_within(worker, 10)
        finally:
            parent.kill()
            if worker and alive(worker):
                os.kill(worker, signal.SIGKILL)


def test_stop_now_ends_the_running_estimate_and_drops_the_queued_ones() -> None:
    from ajpq.demo_finn import finn_worker, stop_now

    worker = finn_worker()
    pid = worker.submit(os.getpid).result()
    running, queued = worker.submit(time.sleep, 60), worker.submit(time.sleep, 60)
    deadline = time.monotonic() + 60
    while not running.running() and not running.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.running(), running
    time.sleep(0.5)  # the worker has taken it up
    stop_now(worker)
    assert gone_within(pid, 10)
    wait([running, queued], timeout=10)  # both failed with the pool (or cancelled): never run
    assert running.done() and queued.done()
    for future in (running, queued):
        assert future.cancelled() or isinstance(future.exception(timeout=0), BrokenProcessPool)
