"""The driver's side of the farm: one actor per board, and jobs spread over them with a
``ray.wait`` loop. A worker that dies (its process or its node) or whose board stops
answering is dropped and its job goes back to the queue for another worker; when no worker
is left the search stops with ``BoardLost``.
"""

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from ajpq.errors import AjpqError
from ajpq.search.farm.worker import BoardWorker, Slot
from ajpq.search.hardware import BoardLost

Job = Callable[[Any], Any]  # an actor handle -> the ObjectRef of its call
START_TIMEOUT_S = 600.0  # a worker that is not up by then (its node is gone) is not used


class WorkerPool:
    def __init__(self, workers: dict[str, Any], console: Console) -> None:
        self.workers = dict(workers)  # slot name -> actor handle
        self.console = console
        self.last_error = ""

    @classmethod
    def start(
        cls, slots: Sequence[Slot], args: tuple[Any, ...], threads: int, console: Console
    ) -> "WorkerPool":
        """One worker per slot, placed by its resource; waits until each has its board."""
        import ray

        actor = ray.remote(BoardWorker)
        handles = {
            slot.name: actor.options(
                num_cpus=threads, resources={slot.resource: 1}, max_restarts=0, max_task_retries=0
            ).remote(*args[:3], slot, threads, *args[3:])
            for slot in slots
        }
        pool = cls(handles, console)
        hellos = pool.run([lambda worker: worker.hello.remote()] * len(handles), spread=True)
        if not pool.workers:
            raise AjpqError(
                f"no farm worker started ({pool.last_error}); check that ajpq is installed "
                "the same way on every host of the farm (docs/farm.md)"
            )
        for hello in hellos:
            console.print(f"farm: worker {hello['name']} on {hello['host']} (pid {hello['pid']})")
        return pool

    def run(self, jobs: Sequence[Job], spread: bool = False) -> list[Any]:
        """Every job's result, in the jobs' order, whichever worker ran it. ``spread``: one
        job per worker, each on its own (the start-up hello)."""
        import ray

        queue, idle = deque(range(len(jobs))), list(self.workers)
        running: dict[Any, tuple[int, str]] = {}
        results: list[Any] = [None] * len(jobs)
        while queue or running:
            while queue and idle:
                name, index = idle.pop(0), queue.popleft()
                running[jobs[index](self.workers[name])] = (index, name)
            if not running:
                raise BoardLost(
                    f"every board of the farm is gone ({len(queue)} candidates left); "
                    "restart the Ray nodes with their boards"
                )
            timeout = START_TIMEOUT_S if spread else None
            done, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
            if not done:  # start-up only: workers whose node never came up (killed)
                for _, name in running.values():
                    self.lose(name, "did not start")
                break
            index, name = running.pop(done[0])
            try:
                results[index] = ray.get(done[0])
            except (ray.exceptions.RayActorError, BoardLost) as exc:
                self.last_error = short(exc)
                self.lose(name, self.last_error)
                if not spread:
                    queue.appendleft(index)
                    self.console.print(
                        f"farm: job {index + 1} of {len(jobs)} goes to another board"
                    )
                continue
            if not spread:
                idle.append(name)
        if spread:
            return [r for r in results if r is not None]
        return results

    def lose(self, name: str, why: str) -> None:
        import ray

        handle = self.workers.pop(name, None)
        if handle is not None:
            ray.kill(handle, no_restart=True)
        self.console.print(f"[yellow]farm: lost worker {name} ({why}); {len(self.workers)} left")

    def close(self) -> None:
        import ray

        for handle in self.workers.values():
            try:
                ray.get(handle.close.remote(), timeout=30)
            except (ray.exceptions.RayError, AjpqError):
                pass
            ray.kill(handle)
        self.workers = {}


def short(exc: BaseException) -> str:
    """The last line of a worker's error (its cause, e.g. ``KeyError: 'x'``), without Ray's
    traceback."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if isinstance(exc, BoardLost) and lines:
        return lines[0]
    cause = next((line for line in reversed(lines) if ":" in line and " " in line), "")
    return f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__
