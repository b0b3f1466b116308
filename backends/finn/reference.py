"""The reference the cost model is calibrated to: finn-plus's estimate reports of a compile.

``measure`` compiles ``hw`` (every estimate-only finn-plus step, folded by folding.py to the
target fps) and returns the reports as an ``ajpq.boards.Measurement``: one dict per HW node
(name, op_type, PE/SIMD, cycles, LUT, BRAM_18K, URAM, DSP, plus the attributes calibration.py
needs to pair it with the model's layer and to see a rebinding).
"""

from pathlib import Path
from typing import Any

from ajpq.backends.finn import shim
from ajpq.boards import BoardSpec, Measurement
from ajpq.graph.hwgraph import HwGraph

UNFOLDED_FPS = 1.0  # a target every design reaches with every PE/SIMD at 1
NODE_ATTRS = ("resType", "ram_style", "depth_trigger_bram", "IFMChannels", "IFMDim", "depthwise")


def node_attributes(model_path: Path) -> dict[str, dict[str, Any]]:
    """NODE_ATTRS of every HW node in the folded model (those the node has)."""
    shim.load()
    from finn.util.basic import getHWCustomOp
    from qonnx.core.modelwrapper import ModelWrapper

    found = {}
    for node in ModelWrapper(str(model_path)).graph.node:
        inst = getHWCustomOp(node)
        types = inst.get_nodeattr_types()
        values = {a: inst.get_nodeattr(a) for a in NODE_ATTRS if a in types}
        found[node.name] = {
            k: list(v) if not isinstance(v, int | str) else v for k, v in values.items()
        }
    return found


def measure(
    hw: HwGraph, board: str | BoardSpec, out_dir: Path, fps: float | None, clock_ns: float
) -> Measurement:
    """Compile ``hw`` for ``board`` folded to ``fps`` (None: fully folded) and read back
    finn-plus's estimates."""
    from ajpq.backends import finn

    target = UNFOLDED_FPS if fps is None else fps
    artifact = finn.compile(hw, board, out_dir, target_fps=target, clock_ns=clock_ns)
    cost, attributes = artifact.cost, node_attributes(artifact.model)
    nodes = [
        {"name": name, **layer, **attributes.get(name, {})}
        for name, layer in cost.per_layer.items()
    ]
    slowest = max((node["cycles"] for node in nodes), default=0)
    return Measurement(
        output=None,
        count=int(slowest),
        unit="cycles",
        per_layer=nodes,
        timer_source="estimate",
        latency_s=cost.latency_s,
        resources=dict(cost.resources),
        fps=cost.fps,
        info={"bottleneck": cost.bottleneck, "build_dir": str(out_dir), "target_fps": target},
    )
