"""Detection accuracy as DAC-SDC scores it: the IoU of one predicted box with one true box.

Boxes are normalized ``[x0, y0, x1, y1]``; the contest's accuracy is the mean over images of
the IoU between the single predicted box and the single ground-truth box.
"""

from __future__ import annotations

import numpy as np

from ajpq.errors import InvalidData


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise InvalidData(f"{name} must have shape (N, 4) as x0, y0, x1, y1; got {array.shape}.")
    return array


def iou(box_a: np.ndarray, box_b: np.ndarray) -> np.ndarray:
    """Intersection over union of matching rows of two (N, 4) box arrays, shape (N,).

    A (4,) box counts as one row. Rows with an empty union (both boxes of zero area) get 0.
    """
    first, second = _as_boxes(box_a, "box_a"), _as_boxes(box_b, "box_b")
    if first.shape != second.shape:
        raise InvalidData(
            f"box_a has shape {first.shape} but box_b has {second.shape}; pass one box per row "
            "in both."
        )
    width = np.clip(
        np.minimum(first[:, 2], second[:, 2]) - np.maximum(first[:, 0], second[:, 0]), 0, None
    )
    height = np.clip(
        np.minimum(first[:, 3], second[:, 3]) - np.maximum(first[:, 1], second[:, 1]), 0, None
    )
    intersection = width * height
    area_first = np.clip(first[:, 2] - first[:, 0], 0, None) * np.clip(
        first[:, 3] - first[:, 1], 0, None
    )
    area_second = np.clip(second[:, 2] - second[:, 0], 0, None) * np.clip(
        second[:, 3] - second[:, 1], 0, None
    )
    union = area_first + area_second - intersection
    safe_union = np.where(union > 0, union, 1.0)
    return np.where(union > 0, intersection / safe_union, 0.0)


def mean_iou(pred_boxes: np.ndarray, true_boxes: np.ndarray) -> float:
    """DAC-SDC accuracy: mean over images of the IoU of the predicted and the true box."""
    scores = iou(np.asarray(pred_boxes), np.asarray(true_boxes))
    if scores.size == 0:
        raise InvalidData("mean_iou needs at least one box; got none.")
    return float(scores.mean())
