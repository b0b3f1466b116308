import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

import ajpq
from ajpq.search import Budget, Candidate, SearchConfig, search
from ajpq.search.baselines import BASELINES, baselines
from ajpq.search.pareto import dump_json, pareto_front, pareto_plot, report_table

SIZE = (32, 64)
CONFIG = SearchConfig(warmup_episodes=1)
BUDGET = Budget(weight_bytes=1200)  # uniform 8 and 4 bits cannot fit, pruning can
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ajpq.models.skynet(0.125, SIZE)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("baselines")
    train, val = ajpq.data.aerial(64, 32, input_size=SIZE)
    found = baselines(tiny_model(), train, val, BUDGET, config=CONFIG, out_dir=out / "b")
    result = search(
        tiny_model(), train, val, budget=BUDGET, episodes=2, out_dir=out / "s",
        seed=0, config=CONFIG, progress=False,
    )  # fmt: skip
    return {"baselines": found, "candidates": result.candidates, "dir": out}


def test_every_baseline_fits_the_budget_or_is_marked_infeasible(compared) -> None:
    found = {c.name: c for c in compared["baselines"]}
    assert list(found) == list(BASELINES)
    for candidate in found.values():
        assert candidate.feasible == (candidate.weight_bytes <= BUDGET.weight_bytes)
        assert 0.0 <= candidate.accuracy <= 1.0
    # the unpruned uniform baselines need more than the budget; the pruning ones fit
    assert not found["uniform-8"].feasible and not found["uniform-4"].feasible
    assert found["deep-compression"].feasible and found["amc"].feasible
    halved = 2 * found["uniform-4"].weight_bytes - found["uniform-8"].weight_bytes
    assert 0 <= halved <= len(found["uniform-8"].policy.layers)  # 4-bit rounds up per layer
    assert all(b == 8 for lp in found["amc"].policy.layers.values() for b in lp.weight_bits if b)
    assert all(0 not in lp.weight_bits for lp in found["haq"].policy.layers.values())
    assert found["deep-compression"].stored_bytes is not None
    assert found["deep-compression"].stored_bytes > 0


def test_baselines_are_saved(compared) -> None:
    saved = json.loads((compared["dir"] / "b" / "baselines.json").read_text())
    assert [Candidate.from_dict(raw) for raw in saved] == compared["baselines"]


def test_pareto_plot_is_a_png(compared, tmp_path: Path) -> None:
    path = pareto_plot(compared["candidates"], compared["baselines"], tmp_path / "pareto.png")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


def test_table_and_json_list_every_candidate(compared, tmp_path: Path) -> None:
    console = Console(width=200, record=True)
    console.print(report_table(compared["candidates"], compared["baselines"]))
    text = console.export_text()
    for name in BASELINES:
        assert name in text
    for candidate in compared["candidates"]:
        assert f"episode {candidate.episode}" in text
    raw = json.loads(
        dump_json(compared["candidates"], compared["baselines"], tmp_path / "c.json").read_text()
    )
    assert len(raw["baselines"]) == 5 and len(raw["candidates"]) == 2


def test_pareto_front_keeps_only_undominated_points() -> None:
    policy = ajpq.Policy.uniform(tiny_model())
    points = [(100, 0.5), (200, 0.4), (150, 0.7), (300, 0.9), (120, 0.5)]
    candidates = [Candidate(policy, acc, size, 0, 0.0) for size, acc in points]
    front = pareto_front(candidates, lambda c: float(c.weight_bytes))
    assert [(c.weight_bytes, c.accuracy) for c in front] == [(100, 0.5), (150, 0.7), (300, 0.9)]
