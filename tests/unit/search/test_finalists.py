"""The finalists: the best few candidates by reward get a longer fine-tune, and the best of
them after it is the search's result (and its model is the one that fine-tune made)."""

import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import ajpq
from ajpq.quant.bias_correction import blocks
from ajpq.quant.policy import LayerPolicy, Policy
from ajpq.quant.quantize import quantize
from ajpq.search import Budget, Candidate, SearchConfig, SearchResult, search
from ajpq.search.ajpq import episode_setup
from ajpq.search.candidates import chosen, smallest_within
from ajpq.search.episodes import Episodes
from ajpq.search.finalists import distinct_best, finalist_model, measured
from ajpq.search.space import SearchSpace
from tests.models import resnet_tiny

SIZE = (16, 16)
CONFIG = SearchConfig(
    warmup_episodes=1, train_images=128, val_images=128, qat_epochs=0,
    finalists=2, finalist_images=256, finalist_epochs=1, finalist_lr=1e-3,
)  # fmt: skip
BUDGET = Budget(weight_bytes=6488)  # a third of the 8-bit model's 19,464 B
EPISODES = 4
TASK = ajpq.tasks.Classification()


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, Any, Any]:
    """A digits classifier (accuracy ~0.96): its candidates' accuracies differ, where a tiny
    untrained detector's are all 0."""
    torch.manual_seed(0)
    model = resnet_tiny(input_size=SIZE)
    model.input_size = SIZE  # what search() gives a model without one
    train, val = ajpq.data.digits(360, SIZE)
    ajpq.train(model, train, val, epochs=3, progress=False, task=TASK)
    return model.eval(), train, val


def run(
    trained: tuple, out_dir: Path, config: SearchConfig = CONFIG, resume: bool = False
) -> SearchResult:
    model, train, val = trained
    return search(
        model, train, val, budget=BUDGET, episodes=EPISODES, out_dir=out_dir, seed=0,
        config=config, progress=False, task=TASK, resume=resume,
    )  # fmt: skip


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("a")


@pytest.fixture(scope="module")
def runs(trained, out_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[SearchResult]:
    return [run(trained, out_dir), run(trained, tmp_path_factory.mktemp("b"))]


def test_the_two_best_distinct_rewards_are_the_finalists(runs) -> None:
    candidates = runs[0].candidates
    scored = [c for c in candidates if c.finalist_accuracy is not None]
    assert len(candidates) == EPISODES and len(scored) == 2
    others = [c for c in candidates if c.finalist_accuracy is None]
    unplayed = [c for c in others if c.policy.to_json() not in {s.policy.to_json() for s in scored}]
    assert min(c.accuracy for c in scored) > max(c.accuracy for c in unplayed)


def test_the_result_is_the_best_finalist_with_its_fine_tuned_model(
    runs, trained, tmp_path: Path
) -> None:
    result, (model, train, val) = runs[0], trained
    best = result.best
    scores = [c.finalist_accuracy for c in result.candidates if c.finalist_accuracy is not None]
    assert best.finalist_accuracy == max(scores) and len(set(scores)) == 2
    assert result.best_policy == best.policy
    setup = episode_setup(BUDGET, CONFIG, None, train, val, 0, tmp_path, TASK)  # type: ignore[arg-type]
    runner = Episodes(model, SearchSpace.of(model), setup)
    again = finalist_model(runner, best.policy)
    assert runner.finalist_tune(again) == max(scores)
    returned = result.best_qmodel.state_dict()
    assert all(torch.equal(value, again.state_dict()[key]) for key, value in returned.items())
    untuned = finalist_model(runner, best.policy)
    assert not all(torch.equal(value, untuned.state_dict()[key]) for key, value in returned.items())
    corrected, plain = blocks(untuned), blocks(quantize(model, best.policy))
    output = list(plain)[-1]
    assert not torch.equal(corrected[output].bias, plain[output].bias)  # the default corrects it


def test_the_finalists_are_deterministic_for_a_seed(runs) -> None:
    first, second = ([c.to_dict() for c in r.candidates] for r in runs)
    assert first == second


def test_finalists_are_written_next_to_the_checkpoint(runs, out_dir: Path) -> None:
    assert (out_dir / "finalists.json").read_text().count('"finalist_accuracy"') == 2
    assert Policy.load(out_dir / "best_policy.json") == runs[0].best_policy


def test_a_finished_search_resumes_to_score_other_finalists(runs, trained, tmp_path: Path) -> None:
    """The finalists run after the last episode, so their settings are not part of the
    checkpoint's fingerprint: resuming a search made without them plays no episode again and
    returns what a search with them from the start returns."""
    without = run(trained, tmp_path, replace(CONFIG, finalists=0))
    assert all(c.finalist_accuracy is None for c in without.candidates)
    resumed = run(trained, tmp_path, CONFIG, resume=True)
    assert [c.to_dict() for c in resumed.candidates] == [c.to_dict() for c in runs[0].candidates]
    assert [c.accuracy for c in resumed.candidates] == [c.accuracy for c in without.candidates]
    with pytest.raises(ajpq.AjpqError, match="other settings"):
        run(trained, tmp_path, replace(CONFIG, qat_lr=CONFIG.qat_lr * 2), resume=True)


def test_a_tolerance_picks_the_smaller_uncorrected_finalist(
    runs, trained, out_dir: Path, tmp_path: Path
) -> None:
    """Resumed with the bias correction off and a tolerance wider than the finalists' spread:
    the smaller finalist wins, with the model its fine-tune made from the plain quantize."""
    shutil.copytree(out_dir, tmp_path, dirs_exist_ok=True)
    config = replace(CONFIG, finalist_bias_correction="off", finalist_tolerance=1.0)
    result, (model, train, val) = run(trained, tmp_path, config, resume=True), trained
    scored = [c for c in result.candidates if c.finalist_accuracy is not None]
    assert len({c.weight_bytes for c in scored}) == 2  # else the test shows nothing
    best = result.best
    assert best.picked and best.weight_bytes == min(c.weight_bytes for c in scored)
    assert [c.picked for c in result.candidates].count(True) == 1
    assert Policy.load(tmp_path / "best_policy.json") == best.policy
    setup = episode_setup(BUDGET, config, None, train, val, 0, tmp_path, TASK)  # type: ignore[arg-type]
    runner = Episodes(model, SearchSpace.of(model), setup)
    again = quantize(model, best.policy)
    assert runner.finalist_tune(again) == best.finalist_accuracy
    returned = result.best_qmodel.state_dict()
    assert all(torch.equal(value, again.state_dict()[key]) for key, value in returned.items())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"finalists": -1}, "finalists >= 0"),
        ({"finalist_bias_correction": "last"}, "finalist_bias_correction='last'"),
        ({"finalist_tolerance": -0.01}, "tolerance >= 0"),
    ],
)
def test_bad_finalist_settings_are_refused_before_any_episode(
    trained, tmp_path: Path, change: dict, message: str
) -> None:
    with pytest.raises(ajpq.AjpqError, match=message):
        run(trained, tmp_path, replace(CONFIG, **change))
    assert not (tmp_path / "state.json").exists()


def policy(bits: int) -> Policy:
    return Policy({"conv": LayerPolicy((bits,) * 2, 8)})


def test_distinct_best_skips_a_policy_played_again() -> None:
    candidates = [Candidate(policy(b), a, 0, 0, 0.0) for b, a in ((4, 0.5), (4, 0.6), (2, 0.4))]
    assert distinct_best(candidates, 2) == [1, 2]


def test_the_best_finalist_is_chosen_over_a_better_reward() -> None:
    candidates = [
        Candidate(policy(8), 0.9, 0, 0, 0.0),
        Candidate(policy(4), 0.5, 0, 0, 0.0, finalist_accuracy=0.7),
        Candidate(policy(2), 0.6, 0, 0, 0.0, finalist_accuracy=0.7),
    ]
    assert chosen(candidates) is candidates[2]  # a tie goes to the better reward
    assert chosen(candidates[:1]) is candidates[0]


def test_the_fewest_bytes_within_the_tolerance_win() -> None:
    candidates = [
        Candidate(policy(8), 0.5, 900, 0, 0.0, finalist_accuracy=0.70),
        Candidate(policy(4), 0.6, 500, 0, 0.0, finalist_accuracy=0.68),
        Candidate(policy(2), 0.7, 300, 0, 0.0, finalist_accuracy=0.60),
        Candidate(policy(6), 0.4, 500, 0, 0.0, finalist_accuracy=0.69),
    ]
    assert smallest_within(candidates, 0.0) is candidates[0]
    assert smallest_within(candidates, 0.02) is candidates[3]  # 500 B twice: the better one
    assert smallest_within(candidates, 0.1) is candidates[2]
    assert chosen([replace(candidates[1], picked=True), *candidates]).policy == policy(4)


class Board:
    """A test double for the runner's board in the loop: records what it measured."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.measured = seconds, []

    def measure(self, qmodel: object, episode: int) -> SimpleNamespace | None:
        self.measured.append(episode)
        return None if self.seconds is None else SimpleNamespace(measured_latency=self.seconds)


def test_a_winner_the_board_has_not_measured_is_measured() -> None:
    unmeasured = Candidate(policy(4), 0.5, 0, 0, 0.0, None, 7, finalist_accuracy=0.6)
    board = Board(0.25)
    assert measured(board, unmeasured, None).measured_latency == 0.25  # type: ignore[arg-type]
    again = replace(unmeasured, measured_latency=0.125)
    assert measured(board, again, None) is again  # type: ignore[arg-type]
    assert board.measured == [7]
    assert measured(Board(None), unmeasured, None) is unmeasured  # type: ignore[arg-type]
