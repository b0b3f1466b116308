"""Budget (what every searched policy must fit) and SearchConfig (how the search runs)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ajpq.errors import AjpqError
from ajpq.train import QAT_LR

if TYPE_CHECKING:
    from ajpq.search.cost import PolicyCost


class BudgetInfeasible(AjpqError):
    """No policy in the search space fits the budget, even with every layer at its cheapest."""


@dataclass(frozen=True)
class Budget:
    """Resource limits; ``None`` (or False) leaves a resource free.

    weight_bytes: weights at their fixed bit-widths (``HwGraph.summary()['weight_bytes']``).
    latency: seconds per inference, as the backend's ``estimate`` predicts at the board clock.
    bops: bit operations (MACs x weight bits x input bits).
    fps: inferences per second the deployed design must sustain (an FPGA dataflow folds to it).
    board_fit: the design must fit the board (flash/RAM, or LUT/BRAM/URAM/DSP by the backend's
    estimate).
    """

    weight_bytes: int | None = None
    latency: float | None = None
    bops: int | None = None
    fps: float | None = None
    board_fit: bool = False

    @property
    def needs_estimate(self) -> bool:
        """Whether checking it needs the backend's estimate (not just bytes and BOPs)."""
        return self.latency is not None or self.fps is not None or self.board_fit

    def fits(self, cost: "PolicyCost") -> bool:
        return (
            (self.weight_bytes is None or cost.weight_bytes <= self.weight_bytes)
            and (self.latency is None or cost.latency <= self.latency)
            and (self.bops is None or cost.bops <= self.bops)
            and (self.fps is None or cost.fps >= self.fps)
            and (not self.board_fit or cost.board_fit)
        )

    def use(self, cost: "PolicyCost") -> dict[str, float]:
        """The share of each limited resource a cost uses (1.0 = exactly at the limit; for
        fps, the share of the frame time the design needs)."""
        shares = {}
        if self.weight_bytes:
            shares["weight_bytes"] = cost.weight_bytes / self.weight_bytes
        if self.latency:
            shares["latency"] = cost.latency / self.latency
        if self.bops:
            shares["bops"] = cost.bops / self.bops
        if self.fps:
            shares["fps"] = self.fps / cost.fps if cost.fps > 0 else float("inf")
        return shares


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of the AJPQ search (the defaults follow HAQ where it has one)."""

    agent: str = "ddpg"  # ddpg | td3 (stable-baselines3)
    warmup_episodes: int = 20  # random exploration before the agent learns
    precision_start: bool = True  # episode 1 plays HAQ's per-layer precision (start.py)
    max_sparsity: float = 0.8
    min_bits: int = 2
    max_bits: int = 8
    bit_step: int = 2  # bits between neighbouring importance quantiles
    quantiles: int = 3  # importance quantiles of a layer's kept channels
    channel_controller: str = "learned"  # learned: the agent sets each quantile's bits | ladder
    fill_budget: bool = True  # the action wall also raises bits where budget is left
    act_bits: int = 8
    sparsity_step: float = 0.1  # how far the action wall raises a layer's sparsity per pass
    reward_scale: float = 0.1  # HAQ: reward = 0.1 x (accuracy - float accuracy)
    train_images: int = 2000  # QAT fine-tune subset of ``train`` (the budget is in images)
    val_images: int = 300  # reward subset of ``val``
    qat_epochs: int = 1  # 0: no fine-tune, the reward reads the quantized model as it is
    qat_lr: float = QAT_LR  # BN is folded in QAT: 2e-4 lost IoU (docs/quantization.md)
    distill: float = 1.0  # weight of the fp32 teacher's distillation loss in every QAT fine-tune
    finalists: int = 0  # the best N by reward get a longer fine-tune; 0: return the best reward
    finalist_images: int = 500  # the finalists' fine-tune subset of ``train`` (finalists.py)
    finalist_epochs: int = 1
    finalist_lr: float | None = None  # None: ``qat_lr``
    finalist_bias_correction: str = "output"  # corrected before the finalists' fine-tune; "off"
    finalist_tolerance: float = 0.0  # the fewest bytes among finalists this close to the best
    noise_sigma: float = 0.5
    learning_rate: float = 1e-3  # the critic's (HAQ)
    actor_learning_rate: float = 1e-4  # HAQ: the actor learns 10x slower (search/agent.py)
    batch_size: int = 64
    calibrate: bool = False  # calibrate the backend's estimate on its reference (the board)
