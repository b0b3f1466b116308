"""Region loss and decoding on hand-built head tensors."""

import math

import pytest
import torch

from ajpq.errors import InvalidData, UnsupportedOp
from ajpq.models.region import decode, region_loss

ANCHORS = torch.tensor([[1.4940, 2.3598], [4.0113, 5.7609]])
HEIGHT, WIDTH = 4, 8


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def encode(box: list[float], anchor: int, confident: float = 8.0) -> torch.Tensor:
    """A (1, 10, 4, 8) head output whose best prediction is exactly ``box``."""
    out = torch.full((1, 10, HEIGHT, WIDTH), 0.0)
    out[:, 4::5] = -confident  # every conf logit low
    cx, cy = (box[0] + box[2]) / 2 * WIDTH, (box[1] + box[3]) / 2 * HEIGHT
    w, h = (box[2] - box[0]) * WIDTH, (box[3] - box[1]) * HEIGHT
    col, row = int(cx), int(cy)
    base = anchor * 5
    out[0, base + 0, row, col] = logit(cx - col)
    out[0, base + 1, row, col] = logit(cy - row)
    out[0, base + 2, row, col] = math.log(w / ANCHORS[anchor, 0].item())
    out[0, base + 3, row, col] = math.log(h / ANCHORS[anchor, 1].item())
    out[0, base + 4, row, col] = confident
    return out


def test_decode_recovers_the_encoded_box() -> None:
    box = [0.30, 0.20, 0.55, 0.90]  # w = 2 cells, h = 2.8 cells: anchor 0 fits best
    decoded = decode(encode(box, anchor=0), ANCHORS)
    torch.testing.assert_close(decoded, torch.tensor([box]), atol=1e-5, rtol=0)


def test_decode_clips_and_picks_the_most_confident_anchor() -> None:
    out = torch.zeros(2, 10, HEIGHT, WIDTH)
    out[:, 4::5] = -5.0
    out[1, 9, 0, 0] = 3.0  # image 1: anchor 1 at (row 0, col 0), centre (0.5, 0.5) cells
    decoded = decode(out, ANCHORS)
    w, h = ANCHORS[1, 0].item() / WIDTH, ANCHORS[1, 1].item() / HEIGHT
    expected_1 = [0.0, 0.0, 0.5 / WIDTH + w / 2, min(1.0, 0.5 / HEIGHT + h / 2)]
    torch.testing.assert_close(decoded[1], torch.tensor(expected_1), atol=1e-6, rtol=0)
    # image 0: all equal, argmax takes the first cell of anchor 0
    w0, h0 = ANCHORS[0, 0].item() / WIDTH, ANCHORS[0, 1].item() / HEIGHT
    expected_0 = [0.0, 0.0, 0.5 / WIDTH + w0 / 2, 0.5 / HEIGHT + h0 / 2]
    torch.testing.assert_close(decoded[0], torch.tensor(expected_0), atol=1e-6, rtol=0)


def test_decode_gives_the_same_boxes_whatever_the_memory_layout() -> None:
    # the golden executor hands back NHWC memory seen as NCHW; the board's outputs are
    # contiguous: the same integers must decode to bit-identical boxes
    torch.manual_seed(0)
    nhwc = torch.randn(256, 5, 10, 10) * 4
    strided = nhwc.permute(0, 3, 1, 2)
    assert not strided.is_contiguous()
    assert torch.equal(decode(strided, ANCHORS), decode(strided.contiguous(), ANCHORS))


def test_exact_encoding_has_lower_loss_than_random_output() -> None:
    box = [0.30, 0.20, 0.55, 0.90]
    exact = region_loss(encode(box, anchor=0, confident=12.0), torch.tensor([box]), ANCHORS)
    torch.manual_seed(0)
    random_loss = region_loss(torch.randn(1, 10, HEIGHT, WIDTH), torch.tensor([box]), ANCHORS)
    assert exact.item() < 1e-4
    assert random_loss.item() > 1.0


def test_wrong_anchor_costs_more_than_the_best_shape_anchor() -> None:
    box = [0.30, 0.20, 0.55, 0.90]
    right = region_loss(encode(box, anchor=0), torch.tensor([box]), ANCHORS)
    wrong = region_loss(encode(box, anchor=1), torch.tensor([box]), ANCHORS)
    assert wrong.item() > right.item() + 1.0


def test_gradient_flows_to_every_channel_kind() -> None:
    torch.manual_seed(1)
    out = torch.randn(3, 10, HEIGHT, WIDTH, requires_grad=True)
    boxes = torch.tensor([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.99, 0.99], [0.0, 0.0, 1.0, 1.0]])
    loss = region_loss(out, boxes, ANCHORS)
    loss.backward()
    assert torch.isfinite(loss)
    grad = out.grad.reshape(3, 2, 5, HEIGHT, WIDTH)
    for channel in range(5):
        assert grad[:, :, channel].abs().sum() > 0


def test_loss_is_a_batch_mean() -> None:
    box = torch.tensor([[0.2, 0.2, 0.6, 0.7]])
    torch.manual_seed(2)
    out = torch.randn(1, 10, HEIGHT, WIDTH)
    single = region_loss(out, box, ANCHORS)
    double = region_loss(out.repeat(2, 1, 1, 1), box.repeat(2, 1), ANCHORS)
    torch.testing.assert_close(single, double)


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(UnsupportedOp):
        region_loss(torch.zeros(1, 12, HEIGHT, WIDTH), torch.zeros(1, 4), ANCHORS)
    with pytest.raises(InvalidData):
        region_loss(torch.zeros(2, 10, HEIGHT, WIDTH), torch.zeros(1, 4), ANCHORS)


def test_rescore_targets_the_iou_instead_of_one() -> None:
    box = [0.30, 0.20, 0.55, 0.90]
    confident = encode(box, anchor=0, confident=12.0)
    assert region_loss(confident, torch.tensor([box]), ANCHORS, rescore=True).item() < 1e-4
    shifted = confident.clone()
    shifted[0, 2] += 0.5  # widen every anchor-0 box: IoU < 1, so rescore wants conf < 1
    plain = region_loss(shifted, torch.tensor([box]), ANCHORS)
    rescored = region_loss(shifted, torch.tensor([box]), ANCHORS, rescore=True)
    assert rescored.item() > plain.item() + 0.5
