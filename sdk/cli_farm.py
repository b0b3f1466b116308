"""``ajpq farm``: the board farm file's hosts, and the ``ray start`` that joins each host's
boards to the cluster a search spreads over (docs/farm.md)."""

import os
import socket
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ajpq.errors import AjpqError, ToolchainMissing

farm_app = typer.Typer(no_args_is_help=True, help="A board farm on Ray: show and start nodes.")
FarmFileArgument = Annotated[Path, typer.Argument(help="the board farm file (TOML)")]
HostOption = Annotated[
    str | None, typer.Option(help="which host of the farm file (default: this hostname)")
]


@farm_app.command("show")
def show(farm_file: FarmFileArgument) -> None:
    """Each host's boards and the command that starts its Ray node."""
    from ajpq.search.farm import FarmFile

    farm = FarmFile.load(farm_file)
    console = Console()
    console.print(f"head: {farm.head} ({farm.address}); on each host, in this order:")
    for host in sorted(farm.hosts, key=lambda h: h.name != farm.head):
        boards = ", ".join(
            f"{b.id}:{b.serial}" if b.serial else f"{b.count} x {b.id}" for b in host.boards
        )
        console.print(f"[bold]{host.name}[/bold]: {boards or 'no boards'}")
        console.print(f"  {farm.describe(host.name)}", highlight=False, soft_wrap=True)
    console.print(
        f"then: ajpq search ... --ray-address {farm.address} --farm {farm_file}", highlight=False
    )


@farm_app.command("start")
def start(farm_file: FarmFileArgument, host: HostOption = None) -> None:
    """Start this host's Ray node with its boards as resources (token auth on)."""
    from ajpq.search.farm import FarmFile

    farm = FarmFile.load(farm_file)
    name = host or socket.gethostname()
    command = farm.ray_start(name)
    Console().print(f"starting {name}: {farm.describe(name)}", highlight=False, soft_wrap=True)
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    try:
        done = subprocess.run(command, env=env, check=False)
    except FileNotFoundError:
        raise ToolchainMissing(
            "the ray command is missing: pip install -c constraints.txt '.[ray]'"
        ) from None
    if done.returncode != 0:
        raise AjpqError(
            f"ray start failed on {name} (exit {done.returncode}); on a joining host check "
            f"that the head ({farm.address}) is up and ~/.ray/auth_token is the head's"
        )
