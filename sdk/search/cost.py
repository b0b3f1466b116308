"""The cost of a policy: exact weight bytes and BOPs of the graph ``lower`` would build, and
the backend's estimate of it (latency, fps, resource fit) when the budget needs one.

The search never reads a backend's internals: a ``CostModel`` is the backend's ``estimate``
bound to the board, the current calibration and the budget's fps (``cost_model``).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from ajpq.backends import Calibration, Cost
from ajpq.backends import get as get_backend
from ajpq.boards import get as get_board
from ajpq.graph.hwgraph import HwGraph
from ajpq.quant.policy import Policy
from ajpq.search.space import SearchSpace, shadow_graph

CostModel = Callable[[HwGraph], Cost]


@dataclass(frozen=True)
class PolicyCost:
    weight_bytes: int
    bops: int
    latency: float  # seconds; nan when not estimated
    fps: float = math.nan  # inferences per second; nan when not estimated
    board_fit: bool = True  # every resource within the board's limits (True when not estimated)
    over: tuple[str, ...] = ()  # the resources over the board's limits


def cost_model(
    backend: str, board: str, calibration: Calibration = None, fps: float | None = None
) -> CostModel:
    """``backend``'s estimate on ``board`` with ``calibration``, folded for ``fps`` (the board
    file is read once here, not on every call of the action wall)."""
    chosen, spec = get_backend(backend), get_board(board)
    return lambda graph: chosen.estimate(graph, spec, calibration, fps)


def policy_cost(space: SearchSpace, policy: Policy, model: CostModel | None) -> PolicyCost:
    """Weight bytes and BOPs of ``policy`` (exact), and its estimate when a model is given."""
    graph = shadow_graph(space, policy)
    summary = graph.summary()
    weight_bytes, bops = int(summary["weight_bytes"]), int(summary["bops"])
    if model is None:
        return PolicyCost(weight_bytes, bops, math.nan)
    estimate = model(graph)
    over = tuple(sorted(estimate.over()))
    return PolicyCost(weight_bytes, bops, estimate.latency_s, estimate.fps, not over, over)
