"""Issue 12, acceptance 1: a user's own CNNs through the whole flow on the QEMU board.

Two classifiers written as a PyTorch user writes them (``tests/models.py``): an MLPerf-Tiny
ResNet (residual adds, ``nn.Identity`` and strided 1x1 shortcuts, global average pool,
Linear) on scikit-learn's digits at 16x16, and a DS-CNN (10x4 first kernel,
depthwise-separable blocks) on the same digits resized to the keyword spotter's 49x10, given
as plain numpy arrays. Each is trained with ``ajpq.train``, searched with
``ajpq.search`` (classification task, 4 episodes, the QEMU board calibrating the estimate and
measuring every new best candidate), compiled with ``ajpq.compile`` and flashed: golden ==
Brevitas == host C == board on 100 real images (and 10 random ones), every output exact.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import ajpq
from ajpq.data.digits import digits_arrays
from ajpq.search import Budget, SearchConfig
from ajpq.search.hardware import SWEEP
from tests.models import ds_cnn, resnet_tiny

pytestmark = pytest.mark.hil

VAL_COUNT = 360  # digits held out for validation; the first 100 go to the board
COMPARED = 100
RANDOM = 10  # random uint8 images besides the real ones (saturating, out of distribution)
EPISODES = 4
CONFIG = SearchConfig(
    warmup_episodes=2, train_images=256, val_images=128, qat_epochs=1, calibrate=True
)


@dataclass(frozen=True)
class UserModel:
    """How a user's model is built, trained and budgeted."""

    factory: Callable[[], nn.Module]
    input_size: tuple[int, int]
    weight_bytes: int  # the search's budget
    epochs: int
    lr: float
    as_arrays: bool = False  # give ajpq plain numpy (images, labels) instead of ArraySamples


USER_MODELS = {
    # the dense 8-bit ResNet stores 19,464 weight bytes, the DS-CNN 2,400
    "resnet_tiny": UserModel(partial(resnet_tiny, width=8), (16, 16), 8_000, 2, 2e-3),
    "ds_cnn": UserModel(partial(ds_cnn, width=16), (49, 10), 1_200, 4, 5e-3, as_arrays=True),
}


@dataclass
class Deployed:
    """What the flow produced for one user model."""

    name: str
    spec: UserModel
    trained: Any  # ajpq.train's TrainResult
    result: Any  # SearchResult
    artifact: Any  # the mcu Artifact
    search_dir: Path
    val: Any  # the validation data as the user gave it
    images: np.ndarray  # uint8 (N, 1, H, W): the real images, then the random ones
    labels: np.ndarray  # labels of the real images
    board_outputs: np.ndarray
    model_hash: str  # what the flashed firmware reports


def user_data(spec: UserModel) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """(train, val) as the user hands them to ajpq, and val's images and labels."""
    if not spec.as_arrays:
        train, val = ajpq.data.digits(VAL_COUNT, spec.input_size)
        return train, val, val.images, val.targets
    images, labels = digits_arrays(spec.input_size)
    order = np.random.default_rng(0).permutation(len(labels))
    held, kept = order[:VAL_COUNT], order[VAL_COUNT:]
    return (images[kept], labels[kept]), (images[held], labels[held]), images[held], labels[held]


def on_board(board_id: str, artifact: Any, images: np.ndarray) -> tuple[np.ndarray, str]:
    """Flash the artifact, run every image over serial; (outputs, the firmware's model hash)."""
    with ajpq.boards.Board(board_id) as board:
        board.flash(artifact)
        with board.open() as session:
            model_hash = session.info()["model_hash"]
            outputs = np.stack([session.infer(image) for image in images])
    return outputs, model_hash


def run_flow(name: str, board_id: str, out: Path) -> Deployed:
    spec = USER_MODELS[name]
    torch.manual_seed(0)
    model: nn.Module = spec.factory()
    train, val, val_images, val_labels = user_data(spec)
    task = ajpq.tasks.Classification()
    trained = ajpq.train(
        model, train, val, epochs=spec.epochs, lr=spec.lr, task=task, progress=False
    )
    result = ajpq.search(
        model, train, val, board=board_id, budget=Budget(weight_bytes=spec.weight_bytes),
        episodes=EPISODES, out_dir=out / "search", config=CONFIG, progress=False, task=task,
    )  # fmt: skip
    artifact = ajpq.compile(result.best_graph, "mcu", board_id, out / "build")
    noise = np.random.default_rng(1).integers(0, 256, (RANDOM, *val_images.shape[1:]))
    images = np.concatenate([val_images[:COMPARED], noise.astype(np.uint8)])
    outputs, model_hash = on_board(board_id, artifact, images)
    return Deployed(
        name, spec, trained, result, artifact, out / "search", val, images,
        val_labels[:COMPARED], outputs, model_hash,
    )  # fmt: skip


@pytest.fixture(scope="module", params=list(USER_MODELS))
def deployed(
    request: pytest.FixtureRequest, board_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Deployed:
    if not board_id.startswith("qemu-"):
        pytest.skip(f"the search starts QEMU in its loop; board {board_id} is not emulated")
    name = str(request.param)
    return run_flow(name, board_id, tmp_path_factory.mktemp(name))


def brevitas_integers(qmodel: ajpq.QuantModel, images: np.ndarray) -> np.ndarray:
    """The QAT model's output as integers: the head's int32 accumulator."""
    qmodel.eval()
    with torch.no_grad():
        out = qmodel.forward_quant(torch.from_numpy(images).float())
    return torch.round(out.value / out.scale).to(torch.int64).numpy()


def test_training_learns_the_digits(deployed: Deployed) -> None:
    trained = deployed.trained
    print(f"{deployed.name}: fp32 top-1 {trained.val_metrics} in {trained.seconds:.1f} s")
    assert trained.metric_name == "top-1 accuracy"
    assert trained.epochs_run == deployed.spec.epochs
    assert trained.metric > 0.5  # ten classes: chance is 0.1


def test_the_search_ran_four_episodes_with_the_board_in_the_loop(deployed: Deployed) -> None:
    result, budget = deployed.result, deployed.spec.weight_bytes
    print(f"{deployed.name}: " + ", ".join(
        f"ep{c.episode} top-1 {c.accuracy:.3f} {c.weight_bytes} B" for c in result.candidates
    ))  # fmt: skip
    assert result.metric == "top-1 accuracy"
    assert [c.episode for c in result.candidates] == list(range(EPISODES))
    assert all(c.weight_bytes <= budget for c in result.candidates)
    assert result.best_graph.summary()["weight_bytes"] == result.best.weight_bytes
    calibration = [r for r in result.hardware if r.kind == "calibration"]
    assert [r.label for r in calibration] == [label for label, _, _ in SWEEP]
    assert all(r.unit == "instructions" and r.measured > 0 for r in calibration)
    measured = [r for r in result.hardware if r.kind == "candidate"]
    assert measured[0].label == "episode-0"  # the first episode is always a new best
    clock_hz = ajpq.boards.get(deployed.artifact.board).clock_hz
    for record in measured:
        candidate = result.candidates[record.episode]
        assert record.measured > 0 and record.unit == "instructions"
        assert candidate.measured_latency == record.measured / clock_hz
    assert result.best.episode in [r.episode for r in measured]
    assert (deployed.search_dir / "hardware.json").exists()


def test_the_best_candidates_metric_is_its_top1(deployed: Deployed) -> None:
    """The best candidate's recorded metric is the QAT model's top-1 on the reward subset."""
    result = deployed.result
    reward_val = ajpq.data.as_samples(deployed.val).subset(np.arange(CONFIG.val_images))
    task = ajpq.tasks.Classification()
    scores = ajpq.score(result.best_qmodel, reward_val, task)
    assert result.best.accuracy == scores["top-1 accuracy"]
    assert set(scores) == {"top-1 accuracy", "top-5 accuracy"}


def test_golden_brevitas_host_c_and_board_agree(deployed: Deployed) -> None:
    result, images = deployed.result, deployed.images
    golden = result.best_graph.run(images)
    brevitas = brevitas_integers(result.best_qmodel, images)
    host = deployed.artifact.run_host(images)
    board = deployed.board_outputs
    assert golden.shape == (COMPARED + RANDOM, 10)
    assert np.array_equal(golden, brevitas)
    assert np.array_equal(golden, host)
    assert np.array_equal(golden, board)
    assert deployed.model_hash == deployed.artifact.model_hash
    assert len({row.tobytes() for row in board}) > 1  # not one constant answer


def test_the_boards_answers_are_the_qat_models_predictions(deployed: Deployed) -> None:
    """Dequantized with the graph's output scale, the board's outputs give the classes the
    Brevitas model predicts on the same real images, and so its top-1."""
    result = deployed.result
    real, labels = deployed.images[:COMPARED], deployed.labels
    board = deployed.board_outputs[:COMPARED] * result.best_graph.output_scale[None, :]
    task = ajpq.tasks.Classification()
    predicted = ajpq.predict(result.best_qmodel, (real, labels), task)
    top1 = ajpq.score(result.best_qmodel, (real, labels), task)["top-1 accuracy"]
    board_top1 = float(np.mean(board.argmax(1) == labels))
    print(f"{deployed.name}: top-1 on the board {board_top1:.2f} on {COMPARED} digits")
    assert np.array_equal(board.argmax(1), predicted[:, 0])
    assert board_top1 == top1
