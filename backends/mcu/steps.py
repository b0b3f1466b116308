"""The mcu build as a short list of named steps, each writing its output into the build dir.

    sort      graph.hwg: channels sorted by bit-width (one Huffman code per width group)
    plan      plan.json: kernel calls and the static arena
    emit      src/ajpq_model.{h,c}, src/ajpq_weights.{h,c}, emit.json (per-layer weights)
    budget    refuse a model over the board's RAM/flash before linking (budget.py)
    host      host/libajpq_model.so (gcc), for run_host and tests
    firmware  firmware/ajpq.elf: model + runtime + serial protocol server (arm-none-eabi-gcc)
    report    report.json (compile then writes artifact.json)

``steps.json`` records the build's key (a hash of the graph, the board, the options and the
firmware sources) and each step that finished, or the step that failed and why. With
``resume=True`` a build whose key is unchanged reloads the finished steps with outputs on disk
(emit, host, firmware) and runs the rest; sort, plan, budget and report are pure and cheap
and always run.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ajpq.backends.mcu.budget import check_budget, kernel_scratch_cap
from ajpq.backends.mcu.emit import LayerWeights, model_hash
from ajpq.backends.mcu.estimate import firmware_hash
from ajpq.backends.mcu.firmware import build_server_firmware
from ajpq.backends.mcu.host import build_host_library
from ajpq.backends.mcu.plan import Plan, plan
from ajpq.backends.mcu.report import build_report, symbol_bytes
from ajpq.backends.mcu.sources import write_sources
from ajpq.backends.mcu.toolchain import elf_sizes
from ajpq.boards import BoardSpec
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph
from ajpq.graph.sort_channels_by_bits import sort_channels_by_bits

CHECKPOINT = "steps.json"


@dataclass
class BuildContext:
    """What the steps share: inputs, options, and each step's result."""

    hw: HwGraph
    board: BoardSpec
    out_dir: Path
    firmware: bool = True
    group_codes: bool = True
    plan: Plan | None = None
    layers: list[LayerWeights] = field(default_factory=list)
    data_bytes: int = 0
    weights_crc: int = 0
    library: Path | None = None
    elf: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def src(self) -> Path:
        return self.out_dir / "src"


def step_sort(ctx: BuildContext) -> None:
    """Sort each layer's channels by bit-width (changes no output); save the graph."""
    if ctx.group_codes:
        ctx.hw = sort_channels_by_bits(ctx.hw)
    ctx.hw.save(ctx.out_dir / "graph.hwg")


def step_plan(ctx: BuildContext) -> None:
    """Kernel per layer and arena offsets; plan.json."""
    ctx.plan = plan(ctx.hw, kernel_scratch_cap(ctx.board.ram_bytes))
    (ctx.out_dir / "plan.json").write_text(json.dumps(plan_json(ctx.plan), indent=1))


def plan_json(model_plan: Plan) -> dict[str, Any]:
    return {
        "arena_bytes": model_plan.arena_bytes,
        "weight_scratch_bytes": model_plan.weight_scratch_bytes,
        "tensors": {
            n: {"offset": t.offset, "bytes": t.bytes, "first": t.first, "last": t.last}
            for n, t in model_plan.tensors.items()
        },
    }


def step_emit(ctx: BuildContext) -> None:
    """The model as C (sources.py); emit.json keeps what the report needs."""
    assert ctx.plan is not None
    ctx.layers, ctx.data_bytes, ctx.weights_crc = write_sources(
        ctx.hw, ctx.plan, ctx.src, ctx.group_codes
    )
    emitted = {
        "data_bytes": ctx.data_bytes,
        "weights_crc": ctx.weights_crc,
        "layers": [asdict(layer) for layer in ctx.layers],
    }
    (ctx.out_dir / "emit.json").write_text(json.dumps(emitted, indent=1))


def load_emit(ctx: BuildContext) -> None:
    emitted = json.loads((ctx.out_dir / "emit.json").read_text())
    ctx.data_bytes = emitted["data_bytes"]
    ctx.weights_crc = emitted["weights_crc"]
    ctx.layers = [LayerWeights(**layer) for layer in emitted["layers"]]


def step_budget(ctx: BuildContext) -> None:
    """BudgetExceeded when the model cannot fit the board (before any compiler runs)."""
    assert ctx.plan is not None
    check_budget(ctx.board, ctx.plan, ctx.data_bytes)


def step_host(ctx: BuildContext) -> None:
    """The generated C built by gcc into a shared library (Artifact.run_host)."""
    (ctx.out_dir / "host").mkdir(exist_ok=True)
    ctx.library = build_host_library(ctx.src, ctx.out_dir / "host" / "libajpq_model.so")


def load_host(ctx: BuildContext) -> None:
    ctx.library = ctx.out_dir / "host" / "libajpq_model.so"


def step_firmware(ctx: BuildContext) -> None:
    """The deployable firmware: model + runtime + the serial protocol server."""
    if not ctx.firmware:
        return
    ctx.elf = build_server_firmware(ctx.src, ctx.board, ctx.out_dir / "firmware", name="ajpq")


def load_firmware(ctx: BuildContext) -> None:
    ctx.elf = ctx.out_dir / "firmware" / "ajpq.elf" if ctx.firmware else None


def step_report(ctx: BuildContext) -> None:
    """report.json: weights, memory, and the ELF's real sizes when there is one."""
    assert ctx.plan is not None
    sizes, model_data = None, None
    if ctx.elf is not None:
        sizes, model_data = elf_sizes(ctx.elf), sum(symbol_bytes(ctx.elf).values())
    digest = model_hash(ctx.hw)
    ctx.report = build_report(ctx.board, ctx.plan, ctx.layers, digest, sizes, model_data)
    ctx.report["weights_crc"] = f"{ctx.weights_crc:08x}"
    (ctx.out_dir / "report.json").write_text(json.dumps(ctx.report, indent=1))


@dataclass(frozen=True)
class Step:
    """A named step; ``load`` (with ``outputs`` on disk) stands in for it on resume."""

    name: str
    run: Callable[[BuildContext], None]
    load: Callable[[BuildContext], None] | None = None
    outputs: tuple[str, ...] = ()


STEPS: tuple[Step, ...] = (
    Step("sort", step_sort),
    Step("plan", step_plan),
    Step("emit", step_emit, load_emit, ("emit.json", "src/ajpq_model.c", "src/ajpq_weights.c")),
    Step("budget", step_budget),
    Step("host", step_host, load_host, ("host/libajpq_model.so",)),
    Step("firmware", step_firmware, load_firmware, ("firmware/ajpq.elf",)),
    Step("report", step_report),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def build_key(ctx: BuildContext) -> str:
    """What the build's outputs depend on: graph, board, options, firmware sources."""
    digest = hashlib.sha256()
    digest.update(model_hash(ctx.hw).encode())
    digest.update(json.dumps(ctx.board.to_dict(), sort_keys=True, default=str).encode())
    digest.update(f"firmware={ctx.firmware} group_codes={ctx.group_codes}".encode())
    digest.update(firmware_hash().encode())
    return digest.hexdigest()[:16]


class Checkpoint:
    """steps.json: the build key, the steps done (with seconds), the step that failed."""

    def __init__(self, out_dir: Path, key: str, resume: bool) -> None:
        self.path, self.key = out_dir / CHECKPOINT, key
        previous = self._read() if resume else {}
        same = previous.get("key") == key
        self.reusable: dict[str, float] = previous.get("done", {}) if same else {}
        self.state: dict[str, Any] = {"key": key, "done": {}, "failed": None}
        self._write()

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _write(self) -> None:
        self.path.write_text(json.dumps(self.state, indent=1))

    def done(self, name: str, seconds: float) -> None:
        self.state["done"][name] = round(seconds, 3)
        self._write()

    def failed(self, name: str, error: BaseException) -> None:
        self.state["failed"] = {"step": name, "error": f"{type(error).__name__}: {error}"}
        self._write()


def _reload(ctx: BuildContext, step: Step, checkpoint: Checkpoint) -> bool:
    """Load ``step``'s result from disk when an unchanged earlier build finished it."""
    if step.load is None or step.name not in checkpoint.reusable:
        return False
    if not all((ctx.out_dir / name).exists() for name in step.outputs):
        return False
    step.load(ctx)
    return True


def run_steps(ctx: BuildContext, resume: bool = False, until: str | None = None) -> BuildContext:
    """Run STEPS in order (up to and including ``until``), recording each in steps.json.

    With ``resume``, steps an earlier build with the same key finished are reloaded until
    the first one that must run again; every step after that runs.
    """
    if until is not None and until not in STEP_NAMES:
        raise AjpqError(f"unknown mcu build step '{until}'; steps: {', '.join(STEP_NAMES)}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(ctx.out_dir, build_key(ctx), resume)
    reusing = True
    for step in STEPS:
        began = time.perf_counter()
        reusing = reusing and (step.load is None or _reload(ctx, step, checkpoint))
        if not (reusing and step.load is not None):
            try:
                step.run(ctx)
            except Exception as error:
                checkpoint.failed(step.name, error)
                raise
        checkpoint.done(step.name, time.perf_counter() - began)
        if step.name == until:
            break
    return ctx
