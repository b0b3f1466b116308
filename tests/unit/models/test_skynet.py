"""Skynet architecture: weight count, shapes, fx traceability, layer names; the tiny nets."""

import operator

import pytest
import torch
from torch import nn

from ajpq.errors import UnsupportedOp
from ajpq.models import Normalize, Reorg, Skynet, skynet, tiny_cnn, tiny_skynet
from ajpq.models.skynet import conv_weight_count

SKYNET_CONV_WEIGHTS = (
    3 * 9 + 3 * 48
    + 48 * 9 + 48 * 96
    + 96 * 9 + 96 * 192
    + 192 * 9 + 192 * 384
    + 384 * 9 + 384 * 512
    + 1280 * 9 + 1280 * 96
    + 96 * 10
)  # fmt: skip


def test_full_width_has_the_papers_conv_weight_count() -> None:
    model = skynet()
    assert SKYNET_CONV_WEIGHTS == 435_387
    assert conv_weight_count(model) == 435_387


def test_full_width_layer_shapes() -> None:
    model = skynet()
    assert model.bundle6.dw.in_channels == 1280
    assert model.bundle6.pw.out_channels == 96
    assert model.head.out_channels == 10 and model.head.bias is not None
    assert [model.__getattr__(f"bundle{i}").pw.out_channels for i in range(1, 6)] == [
        48, 96, 192, 384, 512
    ]  # fmt: skip
    assert model.bundle1.dw.groups == 3 and model.bundle1.dw.bias is None


def test_forward_shape_and_attributes() -> None:
    model = skynet(width_mult=0.25, input_size=(64, 128)).eval()
    assert isinstance(model, Skynet)
    assert model.grid_size == (8, 16) and model.input_size == (64, 128)
    assert model.num_anchors == 2
    paper_anchors = torch.tensor([[1.4940, 2.3598], [4.0113, 5.7609]])
    torch.testing.assert_close(model.anchors, paper_anchors * 0.4)  # 64x128 is 0.4 x 160x320
    out = model(torch.rand(2, 3, 64, 128) * 255)
    assert out.shape == (2, 10, 8, 16)
    assert isinstance(model.normalize, Normalize) and isinstance(model.reorg, Reorg)


def test_default_grid_is_20_by_40_with_the_papers_anchors() -> None:
    model = skynet(width_mult=0.125)
    assert model.grid_size == (20, 40)
    torch.testing.assert_close(model.anchors, torch.tensor([[1.4940, 2.3598], [4.0113, 5.7609]]))


def test_width_mult_rounds_and_keeps_at_least_one_channel() -> None:
    model = skynet(width_mult=0.01, input_size=(32, 64))
    assert model.bundle1.pw.out_channels == 1
    assert model.bundle6.dw.in_channels == 4 * 2 + 5  # round(1.92)=2, round(5.12)=5
    half = skynet(width_mult=0.5)
    assert half.bundle5.pw.out_channels == 256 and half.bundle6.dw.in_channels == 640


def test_fx_trace_matches_eager_and_names_layers() -> None:
    model = tiny_skynet().eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.rand(2, 3, 32, 64) * 255
    torch.testing.assert_close(traced(x), model(x))
    targets = {node.target for node in traced.graph.nodes if node.op == "call_module"}
    for name in ["bundle1.dw", "bundle1.dw_bn", "bundle1.dw_act", "bundle3.pw_act", "head"]:
        assert name in targets
    assert torch.cat in {node.target for node in traced.graph.nodes}


def test_bypass_concat_puts_reorg_before_bundle5() -> None:
    model = tiny_skynet().eval()
    captured: dict[str, torch.Tensor] = {}
    model.bundle3.register_forward_hook(lambda m, i, o: captured.__setitem__("b3", o))
    model.bundle5.register_forward_hook(lambda m, i, o: captured.__setitem__("b5", o))
    model.bundle6.register_forward_hook(lambda m, i, o: captured.__setitem__("b6_in", i[0]))
    model(torch.rand(1, 3, 32, 64) * 255)
    expected = torch.cat([Reorg(2)(captured["b3"]), captured["b5"]], dim=1)
    torch.testing.assert_close(captured["b6_in"], expected)


@pytest.mark.parametrize(
    "kwargs",
    [{"width_mult": 0.0}, {"input_size": (100, 320)}, {"num_anchors": 0}],
)
def test_bad_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(UnsupportedOp):
        skynet(**kwargs)


def test_tiny_cnn_is_traceable_and_has_every_layer_kind() -> None:
    model = tiny_cnn().eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.rand(3, 3, 16, 16) * 255
    torch.testing.assert_close(traced(x), model(x))
    assert traced(x).shape == (3, 4)
    kinds = {type(m) for m in model.modules()}
    for kind in [Normalize, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d,
                 nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]:  # fmt: skip
        assert kind in kinds
    assert model.dw.groups == model.dw.in_channels
    assert operator.add in {node.target for node in traced.graph.nodes}
