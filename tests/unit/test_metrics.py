"""IoU and the DAC-SDC mean-IoU accuracy on hand-computed cases."""

import numpy as np
import pytest

from ajpq.errors import InvalidData
from ajpq.metrics import iou, mean_iou

CASES = [
    # (box_a, box_b, iou): identical, disjoint, touching, half-overlap (1/3), contained (1/4)
    ([0.1, 0.2, 0.5, 0.6], [0.1, 0.2, 0.5, 0.6], 1.0),
    ([0.0, 0.0, 0.25, 0.25], [0.5, 0.5, 1.0, 1.0], 0.0),
    ([0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], 0.0),
    ([0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.75, 0.5], 1.0 / 3.0),
    ([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5], 0.25),
    ([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], 0.0),
]


def test_iou_hand_computed_cases() -> None:
    box_a = np.array([case[0] for case in CASES])
    box_b = np.array([case[1] for case in CASES])
    expected = np.array([case[2] for case in CASES])
    result = iou(box_a, box_b)
    assert result.shape == (len(CASES),)
    assert np.array_equal(result, expected)
    assert np.array_equal(iou(box_b, box_a), expected)


def test_iou_single_box() -> None:
    assert np.array_equal(
        iou(np.array([0.0, 0.0, 0.5, 0.5]), np.array([0.25, 0.0, 0.75, 0.5])), [1 / 3]
    )


def test_mean_iou() -> None:
    pred = np.array([case[0] for case in CASES[:4]], dtype=np.float32)
    true = np.array([case[1] for case in CASES[:4]], dtype=np.float32)
    assert mean_iou(pred, true) == pytest.approx((1.0 + 0.0 + 0.0 + 1.0 / 3.0) / 4, abs=1e-12)
    assert mean_iou(pred[:1], true[:1]) == 1.0


def test_shape_errors() -> None:
    with pytest.raises(InvalidData):
        iou(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(InvalidData):
        iou(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(InvalidData):
        mean_iou(np.zeros((0, 4)), np.zeros((0, 4)))
