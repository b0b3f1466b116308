"""The mcu estimate's flash is never less than what compile emits: weight streams and one code
table per bit-width group are bounded from the bit-widths alone (the search's shadow graphs
have no weights). Counting fixed-width weights without the tables was 35% under for a mixed
policy."""

import tempfile
from pathlib import Path

import pytest
import torch

import ajpq
from ajpq.backends.mcu import budget
from ajpq.backends.mcu.estimate import estimate
from ajpq.backends.mcu.plan import plan
from ajpq.backends.mcu.sources import write_sources
from ajpq.boards import get
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.sort_channels_by_bits import sort_channels_by_bits
from ajpq.models.random_init import randomize_batchnorm

BOARD = "qemu-mps2-an386"


def emitted_flash(hw: HwGraph) -> int:
    """Flash of the arrays compile writes for ``hw`` (the same sources, no compiler)."""
    graph = sort_channels_by_bits(hw)
    steps = plan(graph, budget.kernel_scratch_cap(get(BOARD).ram_bytes))
    with tempfile.TemporaryDirectory() as out:
        _, data_bytes, _ = write_sources(graph, steps, Path(out))
    return budget.flash_bytes(data_bytes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_flash_estimate_bounds_a_mixed_policy(seed: int) -> None:
    torch.manual_seed(0)
    model = randomize_batchnorm(ajpq.models.skynet(0.25, (64, 128)))
    policy = ajpq.Policy.random(model, seed=seed, prune_max=0.6)
    hw = ajpq.lower(ajpq.quantize(model, policy))
    emitted = emitted_flash(hw)
    assert emitted <= estimate(hw, BOARD).flash_bytes <= 1.4 * emitted
