"""The one channel-importance criterion used by every pruning decision in ajpq.

Importance of an output channel = L1 norm of its weights after BatchNorm folding (for a
depthwise conv: its single 3x3 filter). Folding first makes the criterion see the scale BN
applies to the channel, so a channel BN shrinks to nothing ranks as unimportant. Both AJPQ
controllers (layer sparsity, channel bit-widths) rank channels by this number.
"""

import numpy as np
from torch import nn

from ajpq.quant.capture import FloatOp, capture


def op_importance(op: FloatOp) -> np.ndarray:
    """L1 norm per output channel of a captured conv/linear op."""
    assert op.weight is not None
    weight = op.weight.detach().reshape(op.weight.shape[0], -1)
    return weight.abs().sum(dim=1).double().numpy()


def channel_importance(
    model: nn.Module, input_size: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """Importance per output channel for every quantizable layer of ``model``."""
    return {
        op.name: op_importance(op)
        for op in capture(model, input_size)
        if op.kind in ("conv", "linear")
    }
