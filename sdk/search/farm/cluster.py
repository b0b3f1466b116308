"""Joining the Ray cluster and finding its boards.

``workers=N`` starts a new Ray instance on this machine with N emulated boards, whatever
``RAY_ADDRESS`` says or a ``ray start`` on this machine left behind; an address
(``"host:6379"``, ``"ray://host:10001"`` or ``"auto"``) joins a running cluster whose nodes
were started with their boards as custom resources (see ``farm_file`` and docs/farm.md):

- ``board:<id>`` with a count: that many interchangeable boards of that kind on the node
  (QEMU: the worker starts the emulator);
- ``board:<id>:<serial>``: one physical board, named by its probe's or USB serial number.
"""

import socket
from typing import Any

from ajpq.errors import AjpqError, ToolchainMissing
from ajpq.search.farm.farm_file import FarmFile
from ajpq.search.farm.worker import Slot

INSTALL = "pip install -c constraints.txt '.[ray]' (in a checkout of ajpq) or 'ajpq[ray]'"


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ToolchainMissing(f"a search on several workers needs Ray: {INSTALL}") from None
    return ray


def connect(workers: int | str, board: str, farm: FarmFile | None = None) -> list[Slot]:
    """Start or join Ray; the slots of the cluster's ``board`` boards."""
    ray = require_ray()
    if isinstance(workers, bool) or not isinstance(workers, int | str):
        raise AjpqError(f"workers={workers!r}: give a number of local boards or a Ray address")
    if isinstance(workers, int) and workers < 1:
        raise AjpqError(f"workers={workers}: give at least 1 (or None for no Ray at all)")
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False,
        }  # fmt: skip
        if isinstance(workers, int):  # a new local cluster: CPUs for the workers, QEMU boards
            resources = {f"board:{board}": workers}  # "local": not RAY_ADDRESS, not `ray start`'s
            options |= {"address": "local", "num_cpus": workers, "resources": resources}
        else:
            check_reachable(workers)
            options["address"] = workers
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AjpqError(
                f"cannot join the Ray cluster at {workers} ({first_line(exc)}); start it with "
                "`ray start --head` on one host (docs/farm.md) or check the address"
            ) from None
    return slots(ray.cluster_resources(), board, farm)


def slots(resources: dict[str, float], board: str, farm: FarmFile | None = None) -> list[Slot]:
    """One slot per physical board (``board:<id>:<serial>``), else as many as the count of
    ``board:<id>``. ``farm`` gives each physical board's serial device and probe."""
    kind = f"board:{board}"
    single = sorted(k for k in resources if k.startswith(kind + ":"))
    if single:
        found = []
        for resource in single:
            serial = resource[len(kind) + 1 :]
            where = farm.find(board, serial) if farm is not None else None
            port = where.port if where is not None else None
            probe = where.probe if where is not None else None
            found.append(Slot(board, resource, f"{board}:{serial}", port, probe))
        return found
    count = int(resources.get(kind, 0))
    if count == 0:
        raise AjpqError(
            f"the Ray cluster has no {board} board (no resource '{kind}'); start each node "
            f"with its boards: ray start ... --resources '{{\"{kind}\": 1}}' (docs/farm.md)"
        )
    return [Slot(board, kind, f"{board}#{i}") for i in range(count)]


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A Ray head's GCS address (host:port) answers on TCP: fail in seconds, not minutes."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise AjpqError(
            f"no Ray head answers at {address} ({exc}); start it with `ajpq farm start "
            "FARM.toml` on the head host (docs/farm.md) or check the address and port"
        ) from None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
