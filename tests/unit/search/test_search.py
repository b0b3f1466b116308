import json
from pathlib import Path

import pytest
import torch

import ajpq
from ajpq.search import Budget, SearchConfig, SearchResult, search

SIZE = (32, 64)
CONFIG = SearchConfig(warmup_episodes=1)
BUDGET = Budget(weight_bytes=1200)  # the unpruned 8-bit model needs ~5.3 kB


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ajpq.models.skynet(0.125, SIZE)


def run(out_dir: Path, episodes: int, resume: bool = False) -> SearchResult:
    train, val = ajpq.data.aerial(64, 32, input_size=SIZE)
    return search(
        tiny_model(), train, val, budget=BUDGET, episodes=episodes, out_dir=out_dir,
        seed=0, resume=resume, config=CONFIG, progress=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SearchResult]:
    first, second = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    results = {"a2": run(first, 2), "b2": run(second, 2)}
    results["a4"] = run(first, 4, resume=True)
    results["dir"] = first  # type: ignore[assignment]
    return results


def test_every_candidate_fits_a_tight_budget(runs) -> None:
    candidates = runs["a4"].candidates
    assert len(candidates) == 4
    assert all(c.weight_bytes <= BUDGET.weight_bytes for c in candidates)
    assert runs["a4"].best_graph.summary()["weight_bytes"] == runs["a4"].best.weight_bytes


def test_same_seed_gives_the_same_search(runs) -> None:
    first = [c.to_dict() for c in runs["a2"].candidates]
    assert first == [c.to_dict() for c in runs["b2"].candidates]


def test_resume_keeps_the_checkpointed_episodes_and_runs_the_rest(runs) -> None:
    before = [c.to_dict() for c in runs["a2"].candidates]
    after = [c.to_dict() for c in runs["a4"].candidates]
    assert len(after) == 4 and after[:2] == before
    assert [c["episode"] for c in after] == [0, 1, 2, 3]
    state = json.loads((runs["dir"] / "state.json").read_text())
    assert len(state["candidates"]) == 4 and state["agent"] == "agent-4.zip"
    assert sorted(p.name for p in runs["dir"].glob("agent-*.zip")) == ["agent-4.zip"]


def test_resume_with_other_settings_is_refused(runs) -> None:
    train, val = ajpq.data.aerial(8, 8, input_size=SIZE)
    with pytest.raises(ajpq.AjpqError, match="other settings"):
        search(
            tiny_model(), train, val, budget=Budget(weight_bytes=999), episodes=5,
            out_dir=runs["dir"], resume=True, config=CONFIG, progress=False,
        )  # fmt: skip
