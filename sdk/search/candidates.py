"""What the search records: every evaluated policy (a Candidate) and the SearchResult."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ajpq.graph.hwgraph import HwGraph
from ajpq.quant.policy import LayerPolicy, Policy
from ajpq.quant.quantize import QuantModel


@dataclass(frozen=True)
class Candidate:
    """One evaluated policy (after the action wall, so it fits the budget)."""

    policy: Policy
    accuracy: float  # the task's val metric after the short QAT fine-tune
    weight_bytes: int
    bops: int
    estimated_latency: float  # seconds, the backend's estimate
    measured_latency: float | None = None  # seconds on the board, when measured
    episode: int = 0
    reward: float = 0.0
    name: str = ""  # a baseline's name (see baselines.py); empty for search episodes
    feasible: bool = True  # False for a baseline that cannot meet the budget
    stored_bytes: int | None = None  # weight bytes as the backend stores them (mcu: Huffman)
    estimated_fps: float | None = None  # inferences per second, the backend's estimate
    budget_use: dict[str, float] = field(default_factory=dict)  # Budget.use: 1.0 = at the limit
    finalist_accuracy: float | None = None  # after the finalists' fine-tune (finalists.py)
    picked: bool = False  # the finalists' winner (finalists.py picks it)

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["policy"] = {
            name: {"weight_bits": list(lp.weight_bits), "act_bits": lp.act_bits}
            for name, lp in self.policy.layers.items()
        }
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Candidate":
        layers = {
            name: LayerPolicy(tuple(int(b) for b in v["weight_bits"]), int(v["act_bits"]))
            for name, v in raw["policy"].items()
        }
        raw = {("stored_bytes" if k == "huffman_bytes" else k): v for k, v in raw.items()}
        return cls(**{**raw, "policy": Policy(layers)})


def chosen(candidates: Sequence[Candidate]) -> Candidate:
    """The search's pick: the finalist marked ``picked``; else the best finalist when
    finalists were scored (the better reward on a tie), else the best reward's candidate;
    the first on a tie."""
    marked = [c for c in candidates if c.picked]
    if marked:
        return marked[0]
    finalists = [c for c in candidates if c.finalist_accuracy is not None]
    if finalists:
        return max(finalists, key=lambda c: (c.finalist_accuracy, c.accuracy))
    return max(candidates, key=lambda c: c.accuracy)


def smallest_within(finalists: Sequence[Candidate], tolerance: float) -> Candidate:
    """Among the scored finalists at most ``tolerance`` below the best after their fine-tune,
    the one with the fewest weight bytes (``chosen`` breaks a tie)."""
    top = max(c.finalist_accuracy or 0.0 for c in finalists)
    close = [c for c in finalists if top - (c.finalist_accuracy or 0.0) <= tolerance]
    fewest = min(c.weight_bytes for c in close)
    return chosen([c for c in close if c.weight_bytes == fewest])


@dataclass
class SearchResult:
    candidates: list[Candidate]
    best_policy: Policy
    best_qmodel: QuantModel
    best_graph: HwGraph
    hardware: list[Any] = field(default_factory=list)  # HardwareRecord: board measurements
    calibration: Any = None  # the backend's estimate calibrated on its reference (the board)
    metric: str = "mean IoU"  # the name of the task's metric that ``accuracy`` holds

    @property
    def best(self) -> Candidate:
        return chosen(self.candidates)
