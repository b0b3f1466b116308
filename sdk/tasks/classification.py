"""Image classification: cross-entropy, top-1 accuracy (and top-5 above five classes)."""

import math

import torch
import torch.nn.functional as F

from ajpq.errors import InvalidData

TOP_K = 5


class Classification:
    """Targets are class indices (N,). Outputs are logits (N, classes) or (N, classes, 1, 1).

    ``label_smoothing`` is passed to cross-entropy; the scores are "top-1 accuracy" and,
    where there are more than five classes, "top-5 accuracy" (fractions 0..1).
    ``temperature`` softens both distributions in ``distill`` (Hinton et al.'s T).
    """

    metric = "top-1 accuracy"

    def __init__(self, label_smoothing: float = 0.0, temperature: float = 4.0) -> None:
        if not 0 < temperature < math.inf:
            raise InvalidData(f"temperature={temperature} must be finite and above 0 (4 is usual).")
        self.label_smoothing = float(label_smoothing)
        self.temperature = float(temperature)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = _logits(outputs)
        labels = _labels(targets, logits)
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The best classes by logit, best first: (N, min(6, classes)) int64 (a sixth column
        is kept only so that ``score`` can tell a >5-class output from a 5-class one)."""
        logits = _logits(outputs)
        return logits.topk(min(TOP_K + 1, logits.shape[1]), dim=1).indices

    def score(self, predictions: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        if len(targets) == 0:
            raise InvalidData("cannot score an empty set of predictions; give at least one image.")
        labels = targets.reshape(-1).long()
        scores = {self.metric: _share(predictions[:, 0] == labels)}
        if predictions.shape[1] > TOP_K:
            hits = (predictions[:, :TOP_K] == labels[:, None]).any(dim=1)
            scores["top-5 accuracy"] = _share(hits)
        return scores

    def distill(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Hinton's knowledge distillation: KL(softmax(teacher / T) || softmax(student / T))
        x T^2 (so its gradient keeps the scale of cross-entropy's), averaged over the batch;
        gradient reaches only ``student``."""
        t = self.temperature
        student_log = F.log_softmax(_logits(student) / t, dim=1)
        teacher_log = F.log_softmax(_logits(teacher).detach() / t, dim=1)
        return F.kl_div(student_log, teacher_log, reduction="batchmean", log_target=True) * t**2


def _logits(outputs: torch.Tensor) -> torch.Tensor:
    logits = outputs.flatten(1)
    if outputs.dim() == 4 and outputs.shape[2:] != (1, 1):
        raise InvalidData(
            f"a classifier's output must be (N, classes) or (N, classes, 1, 1); got "
            f"{tuple(outputs.shape)}: pool the feature map before the head."
        )
    return logits


def _labels(targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    labels = targets.reshape(-1).long()
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise InvalidData(
            f"class labels must lie in 0..{logits.shape[1] - 1} for a {logits.shape[1]}-way "
            f"output; got {int(labels.min())}..{int(labels.max())}."
        )
    return labels


def _share(hits: torch.Tensor) -> float:
    """The fraction of True entries (counted exactly, then divided once)."""
    return int(hits.sum()) / len(hits)
