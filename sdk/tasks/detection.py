"""Single-object detection (DAC-SDC): region loss, decoded boxes, mean IoU."""

import numpy as np
import torch
import torch.nn.functional as F

from ajpq.metrics import mean_iou
from ajpq.models.region import decode, region_loss, split_output


class Detection:
    """One box per image. ``anchors``: (A, 2) in grid cells, e.g. ``skynet().anchors``."""

    metric = "mean IoU"

    def __init__(self, anchors: torch.Tensor | np.ndarray) -> None:
        self.anchors = torch.as_tensor(anchors, dtype=torch.float32)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return region_loss(outputs, targets, self.anchors.to(outputs.device))

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The most confident box per image, (N, 4) normalized x0, y0, x1, y1."""
        return decode(outputs, self.anchors.to(outputs.device))

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {self.metric: mean_iou(predictions.numpy(), targets.numpy())}

    def augment(
        self, images: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random horizontal and vertical flips (p=0.5 each per image); boxes stay exact."""
        return flip_batch(images, boxes, generator)

    def distill(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Mean squared difference of the values the decoder reads from every anchor of every
        cell: sigmoid of x, y and conf, and w, h raw (log-space sizes). Raw x, y, conf would
        chase saturated logits that decode to the same box; gradient reaches only ``student``."""
        anchors = self.anchors.to(student.device)
        target = decoded_values(teacher.detach(), anchors)
        return F.mse_loss(decoded_values(student, anchors), target)


def decoded_values(output: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(5, N, A, H, W): sigmoid(t_x), sigmoid(t_y), t_w, t_h, sigmoid(t_conf) of a head tensor
    (channel layout and activations as ``ajpq.models.region`` decodes them)."""
    t_x, t_y, t_w, t_h, t_conf = split_output(output, anchors)
    return torch.stack([torch.sigmoid(t_x), torch.sigmoid(t_y), t_w, t_h, torch.sigmoid(t_conf)])


def flip_batch(
    images: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips (each with p=0.5 per image); boxes stay exact."""
    images, boxes = images.clone(), boxes.clone()
    n = images.shape[0]
    horizontal = torch.rand(n, generator=generator) < 0.5
    vertical = torch.rand(n, generator=generator) < 0.5
    images[horizontal] = images[horizontal].flip(-1)
    boxes[horizontal] = torch.stack(
        [
            1 - boxes[horizontal, 2],
            boxes[horizontal, 1],
            1 - boxes[horizontal, 0],
            boxes[horizontal, 3],
        ],
        dim=1,
    )
    images[vertical] = images[vertical].flip(-2)
    boxes[vertical] = torch.stack(
        [boxes[vertical, 0], 1 - boxes[vertical, 3], boxes[vertical, 2], 1 - boxes[vertical, 1]],
        dim=1,
    )
    return images, boxes
