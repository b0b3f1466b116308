"""The baseline: FINN's own target_fps parallelization (``SetFolding``) at our budget.

``SetFolding`` takes a cycles-per-frame target and knows nothing of resources. To compare it
with ``folding.fold`` at the same budget, ``fold_within_budget`` searches (bisection on
log fps) for the highest target whose folding still fits ``folding.budget`` by the same
resource accounting (FINN's estimate + ``extra_luts``).
"""

import copy
import math
from typing import Any

from ajpq.backends.finn import folding
from ajpq.boards import BoardSpec

SEARCH_STEPS = 12


def set_folding(model: Any, clock_ns: float, target_fps: float) -> Any:
    """A copy of ``model`` folded by FINN's SetFolding for ``target_fps`` at ``clock_ns``."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    cycles = max(1, int(1e9 / (clock_ns * target_fps)))
    return copy.deepcopy(model).transform(SetFolding(target_cycles_per_frame=cycles))


def resources(model: Any, part: str) -> dict[str, float]:
    from finn.util.basic import getHWCustomOp

    per_node = {n.name: folding.node_resources(getHWCustomOp(n), part) for n in model.graph.node}
    return folding.total(per_node)


def fold_within_budget(
    model: Any, board: BoardSpec, clock_ns: float, high_fps: float = 1e5
) -> tuple[Any, folding.Folding]:
    """The fastest SetFolding of ``model`` that fits ``board``'s budget, and how it was found."""
    from finn.util.basic import getHWCustomOp

    limit = folding.budget(board)
    low, high = math.log(1.0), math.log(high_fps)
    best, best_fps = set_folding(model, clock_ns, 1.0), 1.0
    if folding.overflow(resources(best, board.part), limit) is not None:
        reason = "even SetFolding for 1 fps exceeds the budget"
    else:
        for _ in range(SEARCH_STEPS):
            middle = (low + high) / 2
            candidate = set_folding(model, clock_ns, math.exp(middle))
            if folding.overflow(resources(candidate, board.part), limit) is None:
                best, best_fps, low = candidate, math.exp(middle), middle
            else:
                high = middle
        reason = f"highest SetFolding target within budget: {best_fps:.0f} fps"
    insts = {n.name: getHWCustomOp(n) for n in best.graph.node}
    bottleneck = max(insts, key=lambda name: insts[name].get_exp_cycles())
    return best, folding.Folding(folding.config_of(insts), reason, bottleneck)
