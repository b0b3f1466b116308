"""The CLI: real subprocesses, errors as one line with exit status 2 and no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from ajpq.graph.lower import lower
from ajpq.models import skynet
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize


def ajpq_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ajpq.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = skynet(0.125, (32, 64)).eval()
    path = tmp_path_factory.mktemp("cli") / "m.hwg"
    lower(quantize(model, Policy.from_sparsity(model, 0.5, bits=4))).save(path)
    return path


def test_info_prints_the_summary(graph_file: Path) -> None:
    result = ajpq_cli("info", str(graph_file), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["layers"]) == 13
    assert summary["weight_bytes"] == sum(layer["weight_bytes"] for layer in summary["layers"])
    table = ajpq_cli("info", str(graph_file))
    assert "total" in table.stdout and f"{summary['macs']:,}" in table.stdout


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage", b"\x00" * 100])
def test_info_on_a_malformed_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.hwg"
    bad.write_bytes(content)
    result = ajpq_cli("info", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_quantize_with_a_policy_for_another_model(tmp_path: Path) -> None:
    from ajpq.models.checkpoint import save_model

    torch.manual_seed(0)
    save_model(skynet(0.125, (32, 64)), tmp_path / "m.pt")
    Policy.uniform(skynet(0.25, (32, 64)), 8, 8).save(tmp_path / "p.json")
    result = ajpq_cli(
        "quantize",
        str(tmp_path / "m.pt"),
        "--policy",
        str(tmp_path / "p.json"),
        "-o",
        str(tmp_path / "out.hwg"),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "output channels" in result.stderr
    assert not (tmp_path / "out.hwg").exists()


def test_compile_for_an_unknown_board(graph_file: Path, tmp_path: Path) -> None:
    result = ajpq_cli("compile", str(graph_file), "--board", "nope", "-o", str(tmp_path))
    assert result.returncode == 2
    assert "unknown board 'nope'; known boards: nrf52840-dk, nucleo-h743zi" in result.stderr


def test_an_unknown_option_is_one_line_and_exit_2() -> None:
    result = ajpq_cli("demo", "--out", "x")
    assert result.returncode == 2
    assert "No such option: --out" in result.stderr
    assert "Traceback" not in result.stderr and "│" not in result.stderr


# ---- the user's own model (--model pkg.module:factory), in process through main() --------
FACTORY = "tests.models:resnet_tiny"


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple:
    """(exit status, stdout, stderr) of the console-script entry on ``args``."""
    from ajpq.cli import main

    monkeypatch.setattr(sys, "argv", ["ajpq", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ctrl_c_exits_130_with_one_line(
    graph_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from ajpq.graph.hwgraph import HwGraph

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(HwGraph, "load", interrupted)
    code, out, err = run_main(monkeypatch, capsys, "info", str(graph_file))
    assert (code, out, err.strip()) == (130, "", "interrupted")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 random 8x8 grayscale images with labels 0..9 (shapes only; no accuracy asserted)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "small.npz"
    images = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    np.savez(path, images=images, labels=np.arange(40) % 10)
    return path


@pytest.fixture(scope="module")
def user_checkpoint(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ajpq.cli_model import UserArgs
    from ajpq.cli_user import train_user

    path = tmp_path_factory.mktemp("user") / "m.pt"
    args = UserArgs(FACTORY, data=small_data, task="classification", normalize="0.5,0.25")
    train_user(args, path, epochs=1, seed=0, console=Console(quiet=True))
    return path


def test_a_user_checkpoint_stores_what_rebuilds_the_model(user_checkpoint: Path) -> None:
    from ajpq.models.checkpoint import read_checkpoint
    from tests.models import resnet_tiny

    raw = read_checkpoint(user_checkpoint)
    assert raw["config"] == {
        "arch": "user",
        "factory": FACTORY,
        "task": "classification",
        "input_size": [8, 8],
        "normalization": [[0.5], [0.25]],
        "val_fraction": 0.2,
    }
    assert list(raw["state_dict"]) == list(resnet_tiny().state_dict())  # not the wrapper's
    assert raw["extra"]["metric_name"] == "top-1 accuracy"


def test_quantize_a_user_checkpoint_folds_its_normalization(
    user_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ajpq.graph.hwgraph import HwGraph, input_zero_point

    out = tmp_path / "q.hwg"
    code, stdout, stderr = run_main(
        monkeypatch, capsys, "quantize", str(user_checkpoint), "--model", FACTORY, "-o", str(out)
    )
    assert code == 0, stderr
    graph = HwGraph.load(out)
    assert list(graph.summary()["input_shape"]) == [1, 8, 8]
    assert input_zero_point(graph) == (128,)  # round(255 * 0.5): the folded mean
    assert f"saved {out}: {graph.summary()['weight_bytes']:,} weight bytes" in stdout


def test_a_user_checkpoint_without_model_names_the_factory(
    user_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, _, stderr = run_main(monkeypatch, capsys, "search", str(user_checkpoint))
    assert code == 2
    assert f"pass --model {FACTORY} to rebuild it" in stderr
    assert len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "nosuch.module:make"], "module 'nosuch.module' does not import"),
        (["--model", "tests.models"], "--model 'tests.models' is not pkg.module:factory"),
        (["--model", "tests.models:nothing"], "module 'tests.models' has no 'nothing'"),
        (["--model", "ajpq.cli_model:FACTORY_FORM"], "'FACTORY_FORM' is not callable"),
        (["--model", "builtins:dict"], "returned a dict, not a torch.nn.Module"),
        (["--task", "segmentation"], "--task 'segmentation' is unknown; choose one of "
         "classification, detection"),
        (["--task", "detection"], "--task detection needs anchors, and ResNetTiny has no"),
        (["--normalize", "0.5"], "--normalize '0.5' is not MEAN,STD or MEANS/STDS"),
        (["--normalize", "0.1,0.2/0.3"], "--normalize '0.1,0.2/0.3' has 2 means but 1 stds"),
        (["--normalize", "0.5,0"], "--normalize '0.5,0': every std must be positive"),
        (["--input-size", "16"], "--input-size '16' is not HxW"),
        (["--val-fraction", "1.5"], "--val-fraction 1.5 must lie strictly between 0 and 1"),
    ],
)  # fmt: skip
def test_a_bad_user_model_argument_is_one_sentence(
    options: list[str],
    message: str,
    small_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    given = dict(zip(options[::2], options[1::2], strict=True))
    args = {"--model": FACTORY, "--data": str(small_data), "--task": "classification", **given}
    flat = [item for pair in args.items() for item in pair]
    code, _, stderr = run_main(monkeypatch, capsys, "train", *flat, "-o", str(tmp_path / "m.pt"))
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not (tmp_path / "m.pt").exists()


def test_weights_of_another_model_name_the_mismatch(
    small_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from tests.models import resnet_tiny

    torch.save(resnet_tiny(width=4).state_dict(), tmp_path / "w.pt")
    code, _, stderr = run_main(
        monkeypatch, capsys, "search", "--model", FACTORY, "--weights", str(tmp_path / "w.pt"),
        "--data", str(small_data), "--task", "classification", "-o", str(tmp_path / "s"),
    )  # fmt: skip
    assert code == 2
    assert f"--weights {tmp_path / 'w.pt'} does not match the --model's layers (size " in stderr
    assert len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((4, 1, 8, 8), np.uint8)}, "it needs `images` and `labels`"),
        (
            {"images": np.zeros((4, 1, 8, 8), np.uint8), "boxes": np.zeros((4, 4), np.float32)},
            "--task classification needs integer class labels",
        ),
    ],
)
def test_data_without_labels_is_one_sentence(
    arrays: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    code, _, stderr = run_main(
        monkeypatch, capsys, "train", "--model", FACTORY, "--data", str(tmp_path / "d.npz"),
        "--task", "classification", "--val-fraction", "0.5", "-o", str(tmp_path / "m.pt"),
    )  # fmt: skip
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["train", "--data", "d.npz", "-o", "m.pt"], "--data needs --model pkg.module:factory"),
        (["search", "--model", FACTORY, "--data", "d.npz"], "needs its weights: a checkpoint"),
        (["quantize", "-o", "q.hwg"], "give a checkpoint from `ajpq train`"),
        (["search", "--model", FACTORY, "--weights", "nope.pt"], "--weights nope.pt does not"),
    ],
)
def test_missing_pieces_are_named(
    command: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, _, stderr = run_main(monkeypatch, capsys, *command)
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


def test_normalize_syntax() -> None:
    from ajpq.cli_model import parse_normalization

    assert parse_normalization("0.5,0.25") == ((0.5,), (0.25,))
    assert parse_normalization("0.485,0.456,0.406/0.229,0.224,0.225") == (
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )


def test_the_split_is_the_same_for_every_command(small_data: Path) -> None:
    from ajpq.cli_model import load_split

    train, val = load_split(small_data, 0.2)
    again_train, again_val = load_split(small_data, 0.2)
    assert (len(train), len(val)) == (32, 8)
    assert np.array_equal(val.targets, again_val.targets)
    seen = {bytes(train.image(i)) for i in range(len(train))}
    assert not seen & {bytes(val.image(i)) for i in range(len(val))}


def test_the_file_s_own_validation_arrays_are_used(tmp_path: Path) -> None:
    from ajpq.cli_model import load_split

    images = np.zeros((6, 1, 8, 8), np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(6), val_images=images[:2],
             val_labels=np.array([7, 9]))  # fmt: skip
    train, val = load_split(tmp_path / "d.npz", 0.5)
    assert len(train) == 6 and val.targets.tolist() == [7, 9]


def test_data_digits_writes_images_and_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ajpq.data import load_samples

    code, stdout, stderr = run_main(
        monkeypatch, capsys, "data", "digits", "-o", str(tmp_path / "d.npz"), "--size", "12x10"
    )
    assert code == 0, stderr
    samples = load_samples(tmp_path / "d.npz")
    assert samples.images.shape == (1797, 1, 12, 10) and samples.images.dtype == np.uint8
    assert np.bincount(samples.targets).tolist() == [
        178,
        182,
        177,
        183,
        181,
        182,
        181,
        179,
        174,
        180,
    ]
    assert "1,797 images 1x12x10 uint8" in stdout


def test_quantize_from_a_plain_state_dict_needs_no_data_or_task(
    user_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ajpq.graph.hwgraph import HwGraph
    from ajpq.models.checkpoint import read_checkpoint

    torch.save(read_checkpoint(user_checkpoint)["state_dict"], tmp_path / "w.pt")
    base = ("quantize", "--model", FACTORY, "--weights", str(tmp_path / "w.pt"))
    code, _, stderr = run_main(monkeypatch, capsys, *base, "-o", str(tmp_path / "q.hwg"))
    assert code == 2
    assert f"--model {FACTORY} needs --input-size HxW (or --data)" in stderr
    code, _, stderr = run_main(
        monkeypatch, capsys, *base, "--input-size", "8x12", "-o", str(tmp_path / "q.hwg")
    )
    assert code == 0, stderr
    assert list(HwGraph.load(tmp_path / "q.hwg").summary()["input_shape"]) == [1, 8, 12]
    sized = (*base, "--input-size", "8x12", "--bits", "4", "--weight-scale")
    code, _, stderr = run_main(monkeypatch, capsys, *sized, "minmax", "-o", str(tmp_path / "x"))
    assert code == 2 and "weight_scale 'minmax' is not one of ('max', 'mse')" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
    weights = {}
    for way in ("max", "mse"):
        code, _, stderr = run_main(monkeypatch, capsys, *sized, way, "-o", str(tmp_path / way))
        assert code == 0, stderr
        graph = HwGraph.load(tmp_path / way)
        weights[way] = [n.arrays["weight"] for n in graph.nodes if "weight" in n.arrays]
    assert len(weights["max"]) == len(weights["mse"]) > 0
    pairs = zip(weights["max"], weights["mse"], strict=True)
    assert any(not np.array_equal(by_max, by_mse) for by_max, by_mse in pairs)


def test_train_resizes_the_data_to_the_input_size(
    small_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ajpq.models.checkpoint import read_checkpoint

    code, stdout, stderr = run_main(
        monkeypatch, capsys, "train", "--model", FACTORY, "--data", str(small_data),
        "--task", "classification", "--input-size", "12x10", "--val-fraction", "0.25",
        "--epochs", "1", "-o", str(tmp_path / "m.pt"),
    )  # fmt: skip
    assert code == 0, stderr
    config = read_checkpoint(tmp_path / "m.pt")["config"]
    assert (config["input_size"], config["val_fraction"]) == ([12, 10], 0.25)
    assert stdout.startswith("val top-1 accuracy ")


def test_resized_keeps_whole_pixels() -> None:
    from ajpq.cli_model import resized
    from ajpq.data import ArraySamples

    images = np.full((2, 1, 8, 8), 77, np.uint8)
    scaled = resized(ArraySamples(images, np.array([3, 4])), (12, 10))
    assert scaled.images.shape == (2, 1, 12, 10) and scaled.images.dtype == np.uint8
    assert np.all(scaled.images == 77) and scaled.targets.tolist() == [3, 4]


def test_quantize_with_bias_correction_equals_the_api_on_the_same_scenes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ajpq.data import aerial
    from ajpq.data.samples import as_samples, calibration_batch
    from ajpq.graph.hwgraph import HwGraph
    from ajpq.models.checkpoint import save_model

    torch.manual_seed(0)
    net = skynet(0.125, (32, 64)).eval()
    save_model(net, tmp_path / "m.pt")
    policy = Policy.from_sparsity(net, 0.6, bits=4)
    policy.save(tmp_path / "p.json")
    base = ("quantize", str(tmp_path / "m.pt"), "--policy", str(tmp_path / "p.json"))
    biases = []
    for flags in ((), ("--bias-correction", "all", "--n-train", "32", "--n-val", "8")):
        out = tmp_path / f"q{len(flags)}.hwg"
        code, _, stderr = run_main(monkeypatch, capsys, *base, *flags, "-o", str(out))
        assert code == 0, stderr
        biases.append([n.arrays["bias"] for n in HwGraph.load(out).nodes if "bias" in n.arrays])
    scenes = calibration_batch(as_samples(aerial(32, 8, (32, 64), seed=0)[0]))
    api = lower(quantize(net, policy, scenes, bias_correction="all"))
    expected = [n.arrays["bias"] for n in api.nodes if "bias" in n.arrays]
    assert len(expected) == len(biases[1]) == 13
    assert all(np.array_equal(a, b) for a, b in zip(expected, biases[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(expected, biases[0], strict=True))


def test_bias_correction_of_a_user_model_needs_data(
    user_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ajpq.models.checkpoint import read_checkpoint

    torch.save(read_checkpoint(user_checkpoint)["state_dict"], tmp_path / "w.pt")
    code, _, stderr = run_main(
        monkeypatch, capsys, "quantize", "--model", FACTORY, "--weights", str(tmp_path / "w.pt"),
        "--input-size", "8x12", "--bias-correction", "output", "-o", str(tmp_path / "q.hwg"),
    )  # fmt: skip
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "--data" in stderr and not (tmp_path / "q.hwg").exists()
