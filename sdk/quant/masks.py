"""Which channels survive a policy, once pruning has propagated through the graph.

A layer's own 0-bit channels are pruned. A depthwise conv also loses the channels whose
input was pruned (its filter would only see zeros). A residual add keeps a channel only
where both inputs keep it. Data-movement ops (pool, reorg, concat, flatten) carry masks.
The QAT model multiplies every conv/linear/add output by its mask, so a pruned channel is
exactly zero in training and can be removed from the hardware graph without changing a bit.
"""

import numpy as np

from ajpq.errors import InvalidPolicy
from ajpq.quant.capture import FloatOp
from ajpq.quant.policy import Policy


def channel_masks(ops: list[FloatOp], policy: Policy) -> dict[str, np.ndarray]:
    """Kept-channel mask of every op's output (features for flattened tensors)."""
    masks: dict[str, np.ndarray] = {}
    for op in ops:
        inputs = [masks[name] for name in op.inputs]
        masks[op.name] = _mask(op, inputs, policy)
        if not masks[op.name].any():
            why = "its inputs keep disjoint channels" if op.kind == "add" else "all are pruned"
            raise InvalidPolicy(
                f"after pruning, '{op.name}' ({op.kind}) keeps no channel ({why}); keep at "
                "least one channel that reaches it"
            )
    return masks


def _mask(op: FloatOp, inputs: list[np.ndarray], policy: Policy) -> np.ndarray:
    if op.kind == "input":
        return np.ones(op.shape[0], dtype=bool)
    if op.kind in ("conv", "linear"):
        own = policy.kept(op.name)
        depthwise = op.kind == "conv" and op.attrs["groups"] > 1
        return own & inputs[0] if depthwise else own
    if op.kind == "add":
        return inputs[0] & inputs[1]
    if op.kind == "concat":
        return np.concatenate(inputs)
    if op.kind == "reorg":
        return np.tile(inputs[0], op.attrs["stride"] ** 2)
    if op.kind == "flatten":
        spatial = int(np.prod(op.shape)) // len(inputs[0])
        return np.repeat(inputs[0], spatial)
    return inputs[0].copy()  # normalize, maxpool, avgpool
