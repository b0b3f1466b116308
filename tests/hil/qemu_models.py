"""The small models the QEMU protocol tests flash: a Skynet 0.125 with a random pruned policy
(seeded), lowered and compiled for the board under test."""

from pathlib import Path

import pytest
import torch

import ajpq
from ajpq.backends.mcu.artifact import Artifact


def random_skynet(
    board_id: str, out_dir: Path, size: tuple[int, int], seed: int
) -> tuple[ajpq.HwGraph, Artifact]:
    """(graph, artifact) of Skynet 0.125 at ``size`` under ``Policy.random(seed)``; skips on a
    board that is not emulated."""
    if not board_id.startswith("qemu-"):
        pytest.skip(f"these tests start QEMU; board {board_id} is not emulated")
    torch.manual_seed(0)
    model = ajpq.models.skynet(0.125, size)
    policy = ajpq.Policy.random(model, seed=seed, prune_max=0.5)
    graph = ajpq.lower(ajpq.quantize(model, policy))
    return graph, ajpq.compile(graph, "mcu", board_id, out_dir)
