"""measure_best: the best search candidates compiled with the mcu backend and measured on
the emulated board (QEMU -icount: instruction counts)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import ajpq
from ajpq.search import Budget, SearchConfig, search
from ajpq.search.measure import measure_best
from tests.backend.tools import need

SIZE = (32, 64)
CONFIG = SearchConfig(warmup_episodes=1, qat_seconds=30.0)
K = 2


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ajpq.models.skynet(0.125, SIZE)


def test_measure_best_fills_deterministic_latencies(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    need(request)
    train, val = ajpq.data.aerial(64, 32, input_size=SIZE)
    result = search(
        tiny_model(), train, val, budget=Budget(weight_bytes=1200), episodes=K,
        out_dir=tmp_path / "search", seed=0, config=CONFIG, progress=False,
    )  # fmt: skip
    images = np.random.default_rng(1).integers(0, 256, (2, 3, *SIZE), dtype=np.uint8)
    first = measure_best(result, k=K, images=images, model=tiny_model(), out_dir=tmp_path / "a")
    second = measure_best(result, k=K, images=images, model=tiny_model(), out_dir=tmp_path / "b")
    assert len(first) == K
    assert all(m.unit == "instructions" for m in first)
    for one, two in zip(first, second, strict=True):
        assert one.counts.shape == (2,) and (one.counts > 0).all()
        np.testing.assert_array_equal(one.counts, two.counts)
        assert one.candidate.measured_latency == two.candidate.measured_latency > 0
    measured = [c for c in result.candidates if c.measured_latency is not None]
    assert len(measured) == K
