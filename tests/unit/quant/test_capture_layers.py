"""The usual layers, written each way a PyTorch user writes them, capture as the right op."""

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ajpq.errors import UnsupportedOp
from ajpq.quant.capture import FloatOp, capture, example_input, input_channels

SIZE = (6, 5)  # non-square on purpose
Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class Stem(nn.Module):
    """A 1-channel conv stem followed by the pattern under test (``tail``)."""

    def __init__(self, tail: Forward, channels: int = 4, classes: int = 3, **modules: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.fc = nn.Linear(channels * SIZE[0] * SIZE[1], classes)
        self.head = nn.Linear(channels, classes)
        self.lin = nn.Linear(SIZE[1], classes)
        for name, module in modules.items():
            self.add_module(name, module)
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self, self.conv(x))


def ops_of(tail: Forward, **modules: nn.Module) -> list[FloatOp]:
    return capture(Stem(tail, **modules), input_size=SIZE)


def kinds(ops: list[FloatOp]) -> list[tuple[str, tuple[int, ...], str | None]]:
    return [(op.kind, op.shape, op.act) for op in ops]


# ---- identity at inference ---------------------------------------------------------------
IDENTITIES: dict[str, tuple[Forward, dict[str, nn.Module]]] = {
    "nn.Identity": (lambda m, x: m.fc(m.identity(x).flatten(1)), {"identity": nn.Identity()}),
    "nn.Dropout": (lambda m, x: m.fc(m.drop(x).flatten(1)), {"drop": nn.Dropout(0.5)}),
    "nn.Dropout2d": (lambda m, x: m.fc(m.drop(x).flatten(1)), {"drop": nn.Dropout2d(0.5)}),
    "F.dropout": (lambda m, x: m.fc(F.dropout(x, 0.5, m.training).flatten(1)), {}),
    "F.dropout2d": (lambda m, x: m.fc(F.dropout2d(x, 0.3).flatten(1)), {}),
    "after flatten": (lambda m, x: m.fc(m.drop(x.flatten(1))), {"drop": nn.Dropout(0.5)}),
    "x.float().contiguous()": (lambda m, x: m.fc(x.float().contiguous().flatten(1)), {}),
}


@pytest.mark.parametrize("form", list(IDENTITIES))
def test_identity_and_dropout_are_no_op(form: str) -> None:
    tail, modules = IDENTITIES[form]
    ops = ops_of(tail, **modules)
    assert [op.kind for op in ops] == ["input", "conv", "flatten", "linear"]
    assert ops[2].inputs == ["conv"] and ops[3].inputs == [ops[2].name]


def test_identity_does_not_hide_a_second_user() -> None:
    """conv -> Identity -> ReLU cannot fuse the ReLU when the conv's raw output is used too."""

    def tail(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return m.fc((F.relu(m.identity(x)) + x).flatten(1))

    with pytest.raises(UnsupportedOp, match="activation 'relu' follows 'conv', which has other"):
        ops_of(tail, identity=nn.Identity())


# ---- flatten -----------------------------------------------------------------------------
FLAT = 4 * SIZE[0] * SIZE[1]
FLATTENS: dict[str, tuple[Forward, dict[str, nn.Module]]] = {
    "nn.Flatten": (lambda m, x: m.fc(m.flatten(x)), {"flatten": nn.Flatten()}),
    "torch.flatten": (lambda m, x: m.fc(torch.flatten(x, 1)), {}),
    "x.flatten": (lambda m, x: m.fc(x.flatten(1)), {}),
    "view size(0)": (lambda m, x: m.fc(x.view(x.size(0), -1)), {}),
    "reshape shape[0]": (lambda m, x: m.fc(x.reshape(x.shape[0], -1)), {}),
    "size()[0] tuple": (lambda m, x: m.fc(torch.reshape(x, (x.size()[0], -1))), {}),
    "view -1, flat": (lambda m, x: m.fc(x.view(-1, FLAT)), {}),
    "view size(0), flat": (lambda m, x: m.fc(x.view(x.size(0), FLAT)), {}),
}


@pytest.mark.parametrize("form", list(FLATTENS))
def test_flatten_forms(form: str) -> None:
    tail, modules = FLATTENS[form]
    assert kinds(ops_of(tail, **modules)) == [
        ("input", (1, 6, 5), None),
        ("conv", (4, 6, 5), None),
        ("flatten", (FLAT,), None),
        ("linear", (3,), None),
    ]


REFUSED_RESHAPES: dict[str, tuple[Forward, str]] = {
    "keeps channels": (lambda m, x: x.view(x.size(0), 4, -1), r"reshapes to \(size\(0\), 4, -1\)"),
    "batch 1": (lambda m, x: x.view(1, -1), r"reshapes to \(1, -1\)"),
    "batch from dim 1": (
        lambda m, x: x.view(x.size(1), -1),
        r"reshapes to \(size\(1\), -1\)",
    ),
    "flatten from 0": (lambda m, x: torch.flatten(x), r"flattens dims 0..-1 of a rank-4"),
    "size as a value": (lambda m, x: m.fc(x.flatten(1)) + x.size(0), "is a tensor size used as"),
    "linear on a map": (lambda m, x: m.lin(x), r"Linear 'lin' reads a tensor of shape \(4, 6, 5\)"),
}


@pytest.mark.parametrize("form", list(REFUSED_RESHAPES))
def test_other_reshapes_are_refused(form: str) -> None:
    tail, message = REFUSED_RESHAPES[form]
    with pytest.raises(UnsupportedOp, match=message):
        ops_of(tail)


# ---- activations -------------------------------------------------------------------------
ACTIVATIONS: dict[str, tuple[Forward, dict[str, nn.Module], str]] = {
    "nn.ReLU": (lambda m, x: m.act(x), {"act": nn.ReLU()}, "relu"),
    "nn.ReLU inplace": (lambda m, x: m.act(x), {"act": nn.ReLU(inplace=True)}, "relu"),
    "F.relu": (lambda m, x: F.relu(x), {}, "relu"),
    "F.relu inplace": (lambda m, x: F.relu(x, inplace=True), {}, "relu"),
    "torch.relu": (lambda m, x: torch.relu(x), {}, "relu"),
    "x.relu": (lambda m, x: x.relu(), {}, "relu"),
    "x.relu_": (lambda m, x: x.relu_(), {}, "relu"),
    "clamp min 0": (lambda m, x: torch.clamp(x, min=0), {}, "relu"),
    "nn.ReLU6": (lambda m, x: m.act(x), {"act": nn.ReLU6()}, "relu6"),
    "F.relu6": (lambda m, x: F.relu6(x), {}, "relu6"),
    "nn.Hardtanh(0, 6)": (lambda m, x: m.act(x), {"act": nn.Hardtanh(0, 6)}, "relu6"),
    "F.hardtanh": (lambda m, x: F.hardtanh(x, 0.0, 6.0), {}, "relu6"),
    "torch.clamp(0, 6)": (lambda m, x: torch.clamp(x, 0, 6), {}, "relu6"),
    "x.clamp(0, 6)": (lambda m, x: x.clamp(0, 6), {}, "relu6"),
}


@pytest.mark.parametrize("form", list(ACTIVATIONS))
def test_activation_forms(form: str) -> None:
    tail, modules, act = ACTIVATIONS[form]
    assert kinds(ops_of(tail, **modules)) == [("input", (1, 6, 5), None), ("conv", (4, 6, 5), act)]


@pytest.mark.parametrize(
    ("tail", "modules", "bounds"),
    [
        (lambda m, x: m.act(x), {"act": nn.Hardtanh()}, r"\[-1.0, 1.0\]"),
        (lambda m, x: F.hardtanh(x, 0.0, 4.0), {}, r"\[0.0, 4.0\]"),
        (lambda m, x: torch.clamp(x, -1, 6), {}, r"\[-1, 6\]"),
    ],
)
def test_other_clamps_are_refused_with_their_bounds(
    tail: Forward, modules: dict[str, nn.Module], bounds: str
) -> None:
    with pytest.raises(UnsupportedOp, match=f"clamps to {bounds}; only"):
        ops_of(tail, **modules)


# ---- global average pooling --------------------------------------------------------------
POOL = {"kernel": (6, 5), "stride": (6, 5), "padding": (0, 0)}
GLOBAL_POOLS: dict[str, tuple[Forward, dict[str, nn.Module]]] = {
    "x.mean((2, 3))": (lambda m, x: m.head(x.mean((2, 3))), {}),
    "x.mean((-1, -2))": (lambda m, x: m.head(x.mean((-1, -2))), {}),
    "torch.mean dim=": (lambda m, x: m.head(torch.mean(x, dim=(2, 3))), {}),
    "keepdim + flatten": (lambda m, x: m.head(x.mean([2, 3], keepdim=True).flatten(1)), {}),
    "AdaptiveAvgPool2d(1)": (
        lambda m, x: m.head(m.pool(x).flatten(1)),
        {"pool": nn.AdaptiveAvgPool2d(1)},
    ),
    "AdaptiveAvgPool2d((1, 1))": (
        lambda m, x: m.head(torch.flatten(m.pool(x), 1)),
        {"pool": nn.AdaptiveAvgPool2d((1, 1))},
    ),
    "F.adaptive_avg_pool2d": (lambda m, x: m.head(F.adaptive_avg_pool2d(x, 1).flatten(1)), {}),
    "pool + squeeze()": (
        lambda m, x: m.head(m.pool(x).squeeze()),
        {"pool": nn.AdaptiveAvgPool2d(1)},
    ),
    "squeeze((2, 3))": (lambda m, x: m.head(x.mean((2, 3), keepdim=True).squeeze((2, 3))), {}),
    "F.avg_pool2d size()[2:]": (lambda m, x: m.head(F.avg_pool2d(x, x.size()[2:]).flatten(1)), {}),
    "F.avg_pool2d shape[-2:]": (
        lambda m, x: m.head(F.avg_pool2d(x, x.shape[-2:]).view(x.size(0), -1)),
        {},
    ),
}


@pytest.mark.parametrize("form", list(GLOBAL_POOLS))
def test_global_average_pool_forms(form: str) -> None:
    tail, modules = GLOBAL_POOLS[form]
    ops = ops_of(tail, **modules)
    assert kinds(ops) == [
        ("input", (1, 6, 5), None),
        ("conv", (4, 6, 5), None),
        ("avgpool", (4, 1, 1), None),
        ("flatten", (4,), None),
        ("linear", (3,), None),
    ]
    assert ops[2].attrs == POOL
    assert [op.inputs for op in ops[2:]] == [["conv"], [ops[2].name], [ops[3].name]]


@pytest.mark.parametrize(
    ("tail", "modules", "message"),
    [
        (lambda m, x: x.mean(3), {}, r"averages over dims \(3,\) of a rank-4"),
        (lambda m, x: x.mean(), {}, "averages over dims all of a rank-4"),
        (lambda m, x: m.pool(x), {"pool": nn.AdaptiveAvgPool2d(2)}, "pool to 2; only output"),
        (lambda m, x: x.mean((2, 3), keepdim=True).squeeze(-1), {}, "squeeze only a pooled"),
        (lambda m, x: x.squeeze(), {}, r"of a tensor of shape \(4, 6, 5\)"),
        (lambda m, x: F.max_pool2d(x, x.size(3)), {}, "takes its pool sizes from the tensor"),
    ],
)
def test_partial_means_squeezes_and_shape_sized_pools_are_refused(
    tail: Forward, modules: dict[str, nn.Module], message: str
) -> None:
    with pytest.raises(UnsupportedOp, match=message):
        ops_of(tail, **modules)


# ---- residual adds and concatenation -----------------------------------------------------
class Residual(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the add written ``style``."""

    def __init__(self, style: str) -> None:
        super().__init__()
        stride = 2 if style == "strided 1x1" else 1
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(8, 8, 1, stride, bias=False), nn.BatchNorm2d(8))
            if style in ("strided 1x1", "1x1")
            else nn.Identity()
        )
        self.style = style

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.style == "torch.add":
            return F.relu(torch.add(out, x))
        if self.style == "x.add":
            return out.add(x).relu()
        if self.style == "+=":
            out += x
            return F.relu(out)
        return F.relu(out + self.shortcut(x))


def residual_ops(model: nn.Module) -> list[tuple]:
    return [(op.name, op.kind, op.inputs, op.shape, op.act) for op in capture(model, SIZE)]


@pytest.mark.parametrize("style", ["identity", "torch.add", "x.add", "+="])
def test_residual_add_with_identity_shortcut(style: str) -> None:
    assert residual_ops(Residual(style)) == [
        ("x", "input", [], (1, 6, 5), None),
        ("stem", "conv", ["x"], (8, 6, 5), None),
        ("conv1", "conv", ["stem"], (8, 6, 5), "relu"),
        ("conv2", "conv", ["conv1"], (8, 6, 5), None),
        ("add", "add", ["conv2", "stem"], (8, 6, 5), "relu"),
    ]


@pytest.mark.parametrize(("style", "size"), [("1x1", (6, 5)), ("strided 1x1", (3, 3))])
def test_residual_add_with_1x1_shortcut(style: str, size: tuple[int, int]) -> None:
    model = Residual(style)
    nn.init.constant_(model.shortcut[1].running_var, 4.0)
    assert residual_ops(model) == [
        ("x", "input", [], (1, 6, 5), None),
        ("stem", "conv", ["x"], (8, 6, 5), None),
        ("conv1", "conv", ["stem"], (8, *size), "relu"),
        ("conv2", "conv", ["conv1"], (8, *size), None),
        ("shortcut.0", "conv", ["stem"], (8, *size), None),
        ("add", "add", ["conv2", "shortcut.0"], (8, *size), "relu"),
    ]
    shortcut = capture(model, SIZE)[4]
    stride = 2 if style == "strided 1x1" else 1
    assert shortcut.attrs == {
        "stride": (stride, stride),
        "padding": (0, 0),
        "groups": 1,
        "kernel": (1, 1),
    }
    factor = torch.ones(8) / torch.sqrt(torch.full((8,), 4.0) + 1e-5)
    folded = model.shortcut[0].weight.detach() * factor.view(-1, 1, 1, 1)
    assert torch.equal(shortcut.weight, folded)  # the shortcut's BatchNorm is folded in


@pytest.mark.parametrize(
    "tail",
    [
        lambda m, x: torch.cat([x, F.relu(m.conv2(x))], 1),
        lambda m, x: torch.cat((x, F.relu(m.conv2(x))), dim=1),
        lambda m, x: torch.concat([x, F.relu(m.conv2(x))], -3),
    ],
)
def test_concatenation_on_channels(tail: Forward) -> None:
    ops = ops_of(tail, conv2=nn.Conv2d(4, 2, 1))
    assert [(op.kind, op.inputs, op.shape) for op in ops[1:]] == [
        ("conv", ["x"], (4, 6, 5)),
        ("conv", ["conv"], (2, 6, 5)),
        ("concat", ["conv", "conv2"], (6, 6, 5)),
    ]


def test_batchnorm1d_folds_into_the_linear_before_it() -> None:
    bn = nn.BatchNorm1d(3)
    nn.init.constant_(bn.running_var, 9.0)
    nn.init.constant_(bn.running_mean, 0.5)
    model = Stem(lambda m, x: F.relu(m.bn(m.head(x.mean((2, 3))))), bn=bn)
    ops = capture(model, SIZE)
    assert [(op.kind, op.act) for op in ops[-3:]] == [
        ("avgpool", None),
        ("flatten", None),
        ("linear", "relu"),
    ]
    factor = torch.ones(3) / torch.sqrt(torch.full((3,), 9.0) + 1e-5)
    assert torch.equal(ops[-1].weight, model.head.weight.detach() * factor.view(-1, 1))
    assert torch.equal(ops[-1].bias, (model.head.bias.detach() - 0.5) * factor)
    with pytest.raises(UnsupportedOp, match="BatchNorm1d 'bn' must directly follow a Linear"):
        ops_of(lambda m, x: m.bn(x.mean((2, 3))), bn=nn.BatchNorm1d(4))


def test_concatenation_on_other_dims_is_refused() -> None:
    with pytest.raises(UnsupportedOp, match="concatenates on dim 2; only channels"):
        ops_of(lambda m, x: torch.cat([x, x], dim=2))


# ---- pools, reuse, inputs, refusals ------------------------------------------------------
def test_functional_pools_and_a_reused_pool_module() -> None:
    def tail(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return m.pool(m.pool(F.max_pool2d(F.avg_pool2d(x, 1), 1)))

    ops = ops_of(tail, pool=nn.MaxPool2d(2, 1))
    assert [(op.name, op.kind, op.shape, op.attrs["kernel"]) for op in ops[2:]] == [
        ("avg_pool2d", "avgpool", (4, 6, 5), (1, 1)),
        ("max_pool2d", "maxpool", (4, 6, 5), (1, 1)),
        ("pool", "maxpool", (4, 5, 4), (2, 2)),
        ("pool_1", "maxpool", (4, 4, 3), (2, 2)),
    ]
    assert ops[5].inputs == ["pool"] and ops[5].attrs["stride"] == (1, 1)


def test_relu_after_max_pool_fuses_into_the_conv() -> None:
    """relu(maxpool(conv)) == maxpool(relu(conv)): the ReLU becomes the conv's."""
    ops = ops_of(lambda m, x: F.relu(F.max_pool2d(x, 2)))
    assert [(op.name, op.kind, op.shape, op.act) for op in ops[1:]] == [
        ("conv", "conv", (4, 6, 5), "relu"),
        ("max_pool2d", "maxpool", (4, 3, 2), None),
    ]
    with pytest.raises(UnsupportedOp, match="max pool 'max_pool2d' follows 'conv', which has"):
        ops_of(lambda m, x: torch.cat([F.relu(F.max_pool2d(x, 1)), x], 1))
    with pytest.raises(UnsupportedOp, match="activation 'relu' must follow a conv, linear or"):
        ops_of(lambda m, x: F.relu(F.avg_pool2d(x, 2)))


def test_unsupported_functions_are_named() -> None:
    with pytest.raises(UnsupportedOp, match=r"'sigmoid' calls torch.sigmoid, which is not"):
        ops_of(lambda m, x: torch.sigmoid(x))
    with pytest.raises(UnsupportedOp, match=r"'tanh' calls x.tanh\(\), which is not"):
        ops_of(lambda m, x: x.tanh())
    with pytest.raises(UnsupportedOp, match=r"'mul' calls operator.mul, which is not"):
        ops_of(lambda m, x: x * x)


class NoConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(30, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_input_channels_and_a_grayscale_rectangular_example() -> None:
    assert input_channels(Stem(lambda m, x: x)) == 1
    assert input_channels(Residual("1x1")) == 1
    model = NoConv()
    with pytest.raises(UnsupportedOp, match="give the model an input_channels attribute"):
        input_channels(model)
    model.input_channels = 1
    assert example_input(model, (6, 5)).shape == (1, 1, 6, 5)
    assert kinds(capture(model, (6, 5))) == [
        ("input", (1, 6, 5), None),
        ("flatten", (30,), None),
        ("linear", (2,), None),
    ]
    model.input_channels = 3
    with pytest.raises(UnsupportedOp, match=r"NoConv fails on an input of shape \(2, 3, 6, 5\)"):
        capture(model, (6, 5))


class Scaled(nn.Module):
    """A user's own input scaling written in forward, then the usual stem and head."""

    def __init__(self, scale: Forward) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(self.scale(self, x))).mean((2, 3)))


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (lambda m, x: x / 255, 1 / 255),
        (lambda m, x: x * (1 / 255), 1 / 255),
        (lambda m, x: 0.5 * x, 0.5),
        (lambda m, x: x.div(255.0), 1 / 255),
    ],
)
def test_a_constant_scale_on_the_input_is_its_normalize(form: Forward, expected: float) -> None:
    ops = capture(Scaled(form), input_size=SIZE)
    assert [op.kind for op in ops[:3]] == ["input", "normalize", "conv"]
    assert ops[1].attrs == {"scale": expected, "zero_point": ()}


def test_a_constant_scale_elsewhere_is_refused() -> None:
    model = Stem(lambda m, x: m.head((x / 2).mean((2, 3))))
    with pytest.raises(UnsupportedOp, match="only on the input"):
        capture(model, input_size=SIZE)
    with pytest.raises(UnsupportedOp, match="calls operator.truediv"):
        capture(Scaled(lambda m, x: 255 / x), input_size=SIZE)
