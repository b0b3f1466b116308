"""The board farm file: which boards each host has, and the ``ray start`` command that puts
a host's boards into the cluster as custom resources. TOML, like hw/boards::

    head = "lab-1"                 # the host that runs the Ray head
    port = 6379                    # the head's port (default 6379)

    [[host]]
    name = "lab-1"                 # its hostname (ajpq farm start finds its own entry)
    address = "10.0.0.11"          # where the other hosts reach it
    cpus = 4                       # CPUs Ray may use on it (default: all)

    [[host.board]]
    id = "stm32f746g-disco"        # a board file in hw/boards
    serial = "066DFF383"           # the probe's (or USB) serial number: one physical board
    port = "/dev/ttyACM0"          # optional: else found by serial number, then USB VID:PID

    [[host.board]]
    id = "qemu-mps2-an386"
    count = 2                      # emulated boards: interchangeable, no serial
"""

import json
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ajpq.boards import get
from ajpq.errors import AjpqError

DEFAULT_PORT = 6379


@dataclass(frozen=True)
class FarmBoard:
    id: str
    serial: str | None = None  # one physical board
    count: int = 1  # interchangeable boards (emulated) when there is no serial
    port: str | None = None
    probe: str | None = None

    @property
    def resources(self) -> dict[str, int]:
        kind = f"board:{self.id}"
        if self.serial is None:
            return {kind: self.count}
        return {kind: 1, f"{kind}:{self.serial}": 1}


@dataclass(frozen=True)
class FarmHost:
    name: str
    address: str | None
    cpus: int | None
    boards: tuple[FarmBoard, ...]

    def resources(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for board in self.boards:
            for key, count in board.resources.items():
                total[key] = total.get(key, 0) + count
        return total


@dataclass(frozen=True)
class FarmFile:
    head: str
    port: int
    hosts: tuple[FarmHost, ...]

    @classmethod
    def load(cls, path: str | Path) -> "FarmFile":
        try:
            raw = tomllib.loads(Path(path).read_text())
            hosts = tuple(host(h) for h in raw["host"])
            farm = cls(
                str(raw.get("head", hosts[0].name)), int(raw.get("port", DEFAULT_PORT)), hosts
            )
        except (
            OSError,
            tomllib.TOMLDecodeError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
        ) as exc:
            raise AjpqError(
                f"{path} is not a readable board farm file ({type(exc).__name__}: {exc}); "
                "see docs/farm.md for its format"
            ) from None
        farm.host(farm.head)  # the head must be one of the hosts
        return farm

    def host(self, name: str) -> FarmHost:
        for entry in self.hosts:
            if entry.name == name:
                return entry
        names = ", ".join(h.name for h in self.hosts)
        raise AjpqError(f"the farm file has no host '{name}' (it has {names}); pass --host NAME")

    @property
    def address(self) -> str:
        head = self.host(self.head)
        return f"{head.address or head.name}:{self.port}"

    def find(self, board: str, serial: str) -> FarmBoard | None:
        for entry in self.hosts:
            for b in entry.boards:
                if b.id == board and b.serial == serial:
                    return b
        return None

    def ray_start(self, name: str) -> list[str]:
        """The ``ray start`` command for host ``name``, its boards as resources."""
        entry = self.host(name)
        command = ["ray", "start"]
        if name == self.head:
            command += ["--head", f"--port={self.port}"]
        else:
            command += [f"--address={self.address}"]
        if entry.address:
            command += [f"--node-ip-address={entry.address}"]
        if entry.cpus is not None:
            command += [f"--num-cpus={entry.cpus}"]
        command += [f"--resources={json.dumps(entry.resources(), sort_keys=True)}"]
        return command

    def describe(self, name: str) -> str:
        return "RAY_AUTH_MODE=token " + shlex.join(self.ray_start(name))


def host(raw: dict[str, Any]) -> FarmHost:
    boards = tuple(board(b) for b in raw.get("board", []))
    cpus = raw.get("cpus")
    return FarmHost(
        str(raw["name"]), raw.get("address"), None if cpus is None else int(cpus), boards
    )


def board(raw: dict[str, Any]) -> FarmBoard:
    spec = get(str(raw["id"]))  # an unknown board fails here, naming the known ones
    serial = raw.get("serial")
    if serial is None and not spec.is_qemu:
        raise ValueError(f'board {spec.id} needs its serial number (serial = "...")')
    count = int(raw.get("count", 1))
    if count < 1:
        raise ValueError(f"board {spec.id}: count must be at least 1")
    probe = raw.get("probe", serial)
    return FarmBoard(
        spec.id, None if serial is None else str(serial), count, raw.get("port"), probe
    )
