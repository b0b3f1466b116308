"""fold_input: a model trained on (pixels/255 - mean)/std takes raw pixels with the same
outputs; quantized, its input carries the mean as a per-channel zero point, bit-exact from the
Brevitas QAT model to the golden executor and through HwGraph save/load."""

import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ajpq.errors import InvalidData, InvalidGraph, UnsupportedOp
from ajpq.graph.hwgraph import HwGraph, input_zero_point
from ajpq.graph.lower import lower
from ajpq.models.layers import Normalize
from ajpq.quant.activation_formats import ActFormat, input_format
from ajpq.quant.fold_input import fold_input, normalized_to_pixels
from ajpq.quant.policy import Policy
from ajpq.quant.quantize import quantize
from tests.models import ds_cnn, resnet_tiny

SIZE = (12, 10)  # non-square
WHOLE_MEAN = (102 / 255, 153 / 255, 51 / 255)  # 255 * mean: whole pixel values
STD = (0.2, 0.3, 0.25)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ZERO_POINT = (124, 116, 104)  # round(255 * IMAGENET_MEAN)


class SmallNet(nn.Module):
    """A user's classifier: conv 3x3 (padding 1) + BN + ReLU, maxpool, strided conv, GAP, FC."""

    def __init__(self, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(self.gap(x), 1))


def small_net(channels: int = 3, seed: int = 0) -> SmallNet:
    torch.manual_seed(seed)
    model = SmallNet(channels)
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2.0)
    return model.eval()


def pixels(count: int, channels: int = 3, size: tuple[int, int] = SIZE, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, channels, *size), generator=generator).float()


def normalized(images: torch.Tensor, mean, std) -> torch.Tensor:
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    return (images / 255 - mean_t) / std_t


def folded_qat(seed: int = 0, policy_seed: int = 2):
    """A folded SmallNet quantized with a mixed policy written for the user's model."""
    model = small_net(seed=seed)
    policy = Policy.random(model, seed=policy_seed, prune_max=0.6, input_size=SIZE)
    return quantize(
        model, policy, input_size=SIZE, input_normalization=(IMAGENET_MEAN, IMAGENET_STD)
    )


def test_whole_mean_folds_exactly_everywhere_including_borders() -> None:
    model = small_net()
    folded = fold_input(model, WHOLE_MEAN, STD)
    images = pixels(16)
    with torch.no_grad():
        difference = (folded(images) - model(normalized(images, WHOLE_MEAN, STD))).abs().max()
    assert float(difference) < 1e-4
    assert folded.get_submodule("input_normalize").zero_point == (102, 153, 51)


def test_grayscale_non_square_folds_exactly() -> None:
    model = small_net(channels=1, seed=3)
    folded = fold_input(model, [0.4], [0.5])  # 255 * 0.4 = 102
    images = pixels(8, channels=1, size=(9, 14))
    with torch.no_grad():
        difference = (folded(images) - model(normalized(images, [0.4], [0.5]))).abs().max()
    assert float(difference) < 1e-4


def test_non_whole_mean_is_exact_inside_and_within_delta_at_borders() -> None:
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()).eval()
    folded = fold_input(model, IMAGENET_MEAN, IMAGENET_STD)
    images = pixels(8, size=(7, 9))
    with torch.no_grad():
        got = folded(images)
        want = model(normalized(images, IMAGENET_MEAN, IMAGENET_STD))
    inside = (got - want)[:, :, 1:-1, 1:-1].abs().max()
    assert float(inside) < 1e-4
    zero_point = torch.tensor([124.0, 116.0, 104.0])  # round(255 * mean)
    delta = (zero_point / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    bound = (model[0].weight.abs().sum(dim=(2, 3)) * delta.abs()).sum(dim=1)  # per channel
    border = (got - want).abs().amax(dim=(0, 2, 3))
    assert bool(torch.all(border <= bound + 1e-5))
    assert float(border.max()) > 0  # the rounding of the mean shows at the borders


def test_accuracy_through_the_folded_layer_equals_the_original() -> None:
    model = small_net(seed=7)
    folded = fold_input(model, WHOLE_MEAN, STD)
    images = pixels(200, seed=8)
    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        original = model(normalized(images, WHOLE_MEAN, STD)).argmax(1)
        through_fold = folded(images).argmax(1)
    assert torch.equal(through_fold, original)
    assert int((through_fold == labels).sum()) == int((original == labels).sum())


def test_user_model_is_untouched_and_names_are_kept() -> None:
    model = small_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_input(model, WHOLE_MEAN, STD, input_size=SIZE)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert list(folded.state_dict()) == list(before)
    assert folded.input_size == SIZE
    assert not torch.equal(folded.state_dict()["conv1.weight"], before["conv1.weight"])


class ReadsInputTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.pool(x).repeat(1, 1, 2, 2)[:, :1]


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (ReadsInputTwice(), "'pool' (MaxPool2d)"),
        (nn.Sequential(Normalize(), nn.Conv2d(3, 4, 3)), "already starts with Normalize"),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), "(Flatten)"),
    ],
)
def test_input_read_by_anything_but_a_conv_is_refused(model: nn.Module, words: str) -> None:
    with pytest.raises(UnsupportedOp) as error:
        fold_input(model, WHOLE_MEAN, STD)
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("mean", "std", "words"),
    [
        ((0.5, 0.5), STD, "mean has 2 values but the model's input has 3 channels"),
        (WHOLE_MEAN, (0.2, 0.0, 0.2), "std of channel 1 is 0.0"),
        ((0.5, 1.5, 0.5), STD, "mean of channel 1 is 1.5"),
    ],
)
def test_bad_mean_or_std_is_refused(mean, std, words: str) -> None:
    with pytest.raises(InvalidData) as error:
        fold_input(small_net(), mean, std)
    assert words in str(error.value)


def test_input_format_holds_pixels_minus_the_zero_point() -> None:
    assert input_format(()) == ActFormat(8, False)
    assert input_format((0, 0, 0)) == ActFormat(8, False)
    assert input_format((128,)) == ActFormat(8, True)  # -128..127
    assert input_format((124, 116, 104)) == ActFormat(9, True)  # -124..151
    assert input_format((255,)) == ActFormat(9, True)  # -255..0


def test_golden_equals_brevitas_with_a_zero_point() -> None:
    qmodel = folded_qat()
    graph = lower(qmodel)
    assert input_zero_point(graph) == (124, 116, 104)
    assert (graph.nodes[0].bits, graph.nodes[0].signed) == (9, True)
    images = pixels(50, seed=11)
    with torch.no_grad():
        out = qmodel.forward_quant(images)
    brevitas = torch.round(out.value / out.scale).to(torch.int64).numpy()
    golden = graph.run(images.numpy().astype(np.uint8))
    assert golden.shape == (50, 10)
    assert np.array_equal(golden, brevitas)


def test_policy_for_the_user_model_fits_the_folded_one() -> None:
    model = small_net()
    names = list(Policy.uniform(model, 8, 8, input_size=SIZE).layers)
    folded = fold_input(model, IMAGENET_MEAN, IMAGENET_STD, SIZE)
    assert list(Policy.uniform(folded, 8, 8).layers) == names


def test_save_load_keeps_the_zero_point(tmp_path) -> None:
    graph = lower(folded_qat())
    graph.save(tmp_path / "m.hwg")
    loaded = HwGraph.load(tmp_path / "m.hwg")
    assert loaded.nodes[0].attrs == {"zero_point": (124, 116, 104)}
    images = pixels(4, seed=12).numpy().astype(np.uint8)
    assert np.array_equal(loaded.run(images), graph.run(images))


def test_a_zero_point_the_input_format_cannot_hold_is_refused(tmp_path) -> None:
    graph = lower(folded_qat())
    graph.nodes[0].bits, graph.nodes[0].signed = 8, False
    graph.save(tmp_path / "bad.hwg")
    with pytest.raises(InvalidGraph) as error:
        HwGraph.load(tmp_path / "bad.hwg")
    assert "is 8-bit unsigned but pixels minus its zero_point span -124..151" in str(error.value)


@pytest.mark.parametrize(
    ("factory", "size", "mean", "std", "zero_point"),
    [
        (ds_cnn, (49, 10), [0.45], [0.25], (115,)),  # grayscale, 10x4 first kernel, no bias
        (partial(resnet_tiny, channels=3), (16, 12), IMAGENET_MEAN, IMAGENET_STD, ZERO_POINT),
    ],
)
def test_user_models_fold_and_quantize_bit_exact(factory, size, mean, std, zero_point) -> None:
    torch.manual_seed(13)
    model = factory(input_size=size).eval()
    images = pixels(50, channels=len(zero_point), size=size, seed=14)
    with torch.no_grad():
        want = model(normalized(images, mean, std))
        got = fold_input(model, mean, std)(images)
    inside = float((got - want).abs().max())
    policy = Policy.random(model, seed=5, prune_max=0.5, input_size=size)
    qmodel = quantize(model, policy, input_size=size, input_normalization=(mean, std))
    graph = lower(qmodel)
    with torch.no_grad():
        out = qmodel.forward_quant(images)
    brevitas = torch.round(out.value / out.scale).to(torch.int64).numpy()
    assert input_zero_point(graph) == zero_point
    assert np.array_equal(graph.run(images.numpy().astype(np.uint8)), brevitas)
    assert inside < 0.05  # the mean rounded to a whole pixel: differences at borders only


def test_normalized_images_map_back_to_their_pixels() -> None:
    images = pixels(6, seed=15)
    x = normalized(images, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(normalized_to_pixels(x, IMAGENET_MEAN, IMAGENET_STD), images)
    gray = pixels(2, channels=1, seed=16)
    assert torch.equal(normalized_to_pixels(normalized(gray, [0.5], [0.5]), [0.5], [0.5]), gray)


def test_the_documented_example_runs(capsys) -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "normalization.md"
    (block,) = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    exec(compile(block, str(doc), "exec"), {})
    assert capsys.readouterr().out == "(124, 116, 104) (4, 10)\n"
