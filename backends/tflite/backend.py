"""The tflite backend: a HwGraph quantized with ``target="tflite"`` as an aligned .tflite
file for TensorFlow Lite for Microcontrollers, its TFLM LUT-compressed variant where that is
smaller, and a report; checked in the real TFLM interpreter against the golden executor.

    out_dir/model.tflite       int8, per-channel weights (TFLM's CONV_2D, ADD, ... kernels)
    out_dir/model-lut.tflite   the same with TFLM's per-channel LUT compression (if smaller)
    out_dir/report.json        sizes, TFLM's arena, the tensors' scales and zero points
    out_dir/artifact.json      what ``ajpq.load_artifact`` reads back
"""

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ajpq.backends import Calibration, Cost, Evidence, get
from ajpq.backends.tflite import tflm
from ajpq.backends.tflite.export import export, zero_point_of
from ajpq.errors import AjpqError
from ajpq.graph.hwgraph import HwGraph

if TYPE_CHECKING:
    from ajpq.boards.spec import BoardSpec

CHECK_IMAGES = 4  # golden == TFLM on this many seeded images at every compile


@dataclass
class Artifact:
    backend: str
    board: str
    out_dir: Path
    model_hash: str  # sha256 of model.tflite, first 16 hex digits
    tflite: Path
    lut: Path | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    output_zero_point: int
    report: dict[str, Any] = field(default_factory=dict)

    def run_tflm(self, images: np.ndarray, lut: bool = False) -> np.ndarray:
        """uint8 images (N, C, H, W) through the TFLM interpreter -> what ``HwGraph.run``
        gives (``lut``: the LUT-compressed file)."""
        path = self.lut if lut else self.tflite
        if path is None:
            raise AjpqError(f"{self.out_dir} has no LUT-compressed model (it would be larger)")
        return tflm.run(path.read_bytes(), images, self.output_zero_point)

    def save(self) -> Path:
        raw = {k: os.path.relpath(v, self.out_dir) if isinstance(v, Path) else v
               for k, v in self.__dict__.items()}  # fmt: skip
        raw["out_dir"] = "."
        path = self.out_dir / "artifact.json"
        path.write_text(json.dumps(raw, indent=1))
        return path

    @classmethod
    def load(cls, out_dir: str | Path) -> "Artifact":
        out = Path(out_dir)
        try:
            raw = json.loads((out / "artifact.json").read_text())
            return cls(
                raw["backend"], raw["board"], out, raw["model_hash"], out / raw["tflite"],
                out / raw["lut"] if raw["lut"] else None, tuple(raw["input_shape"]),
                tuple(raw["output_shape"]), int(raw["output_zero_point"]), raw["report"],
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AjpqError(
                f"{out_dir} holds no ajpq tflite artifact ({type(exc).__name__}); build one "
                "with `ajpq compile --backend tflite`"
            ) from None


def weight_bytes(weights: list[tuple[int, int, np.ndarray]]) -> int:
    return int(sum(values.size for _, _, values in weights))


def compile_tflite(hw: HwGraph, board: str, out_dir: Path, check: bool = True) -> Artifact:
    """Write the files, measure TFLM's arenas, and check TFLM == golden on seeded images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = export(hw)
    weights = exported.weights
    model = tflm.align(exported.model)
    (out_dir / "model.tflite").write_bytes(model)
    lut = tflm.lut_compress(model, weights)
    lut_path = None
    if lut is not None and len(lut) < len(model):
        lut_path = out_dir / "model-lut.tflite"
        lut_path.write_bytes(lut)
    elif (out_dir / "model-lut.tflite").exists():
        (out_dir / "model-lut.tflite").unlink()
    report = {
        "file_bytes": {"tflite": len(model), "tflite_lut": len(lut) if lut else None},
        "lut_kept": lut_path is not None,
        "operators": exported.operators,
        "weight_bytes_int8": weight_bytes(weights),
        "arena_bytes": {
            "tflm": tflm.arena_bytes(model),
            "tflm_lut": tflm.arena_bytes(lut) if lut_path else None,
        },
        "input": {"scale": float(hw.nodes[0].arrays["scale"][0]), "zero_point": -128,
                  "layout": "NHWC int8 = uint8 pixel - 128"},
        "output": {"scale": float(hw.output.arrays["scale"][0]),
                   "zero_point": zero_point_of(hw.output)},
    }  # fmt: skip
    artifact = Artifact(
        "tflite", board, out_dir, hashlib.sha256(model).hexdigest()[:16],
        out_dir / "model.tflite", lut_path, tuple(hw.nodes[0].shape), tuple(hw.output.shape),
        zero_point_of(hw.output), report,
    )  # fmt: skip
    report["side_by_side"] = side_by_side(hw, board, report)
    if check:
        report["checked_images"] = check_against_golden(hw, artifact)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    artifact.save()
    return artifact


def side_by_side(hw: HwGraph, board: str, report: dict[str, Any]) -> dict[str, Any]:
    """The same graph in ajpq's mcu backend (Huffman-packed weights, its estimate of flash
    and RAM on ``board``) next to the .tflite files and TFLM's arena."""
    mcu = get("mcu")
    cost = mcu.estimate(hw, board)
    return {
        "weight_bytes": {
            "ajpq_huffman_streams_and_tables": mcu.stored_weight_bytes(hw),
            "tflite_int8": report["weight_bytes_int8"],
        },
        "flash_bytes": {
            "ajpq_mcu_estimate": int(cost.resources["flash_bytes"]),
            "tflite_file": report["file_bytes"]["tflite"],
            "tflite_lut_file": report["file_bytes"]["tflite_lut"],
        },
        "ram_bytes": {
            "ajpq_mcu_estimate": int(cost.resources["ram_bytes"]),
            "tflm_arena": report["arena_bytes"]["tflm"],
        },
        "notes": "ajpq's flash and RAM include its runtime and int16 activations; the .tflite "
        "files exclude TFLM's code, the TFLM arena excludes the stack",
    }


def check_against_golden(hw: HwGraph, artifact: Artifact, images: int = CHECK_IMAGES) -> int:
    """TFLM's outputs (both files) == the golden executor's on seeded random images."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, *artifact.input_shape)).astype(np.uint8)
    golden = hw.run(x)
    for lut in (False, True) if artifact.lut else (False,):
        if not np.array_equal(artifact.run_tflm(x, lut), golden):
            raise AjpqError(
                f"TFLM's output of {artifact.lut if lut else artifact.tflite} differs from "
                "the golden executor's; report this as a bug in ajpq's tflite backend"
            )
    return images


class TfliteBackend:
    """A .tflite for TFLM: int8 per-channel, bit-exact with golden; TFLM LUT variant."""

    name = "tflite"
    board_kind = "mcu"

    def compile(
        self, hw: HwGraph, board: "str | BoardSpec", out_dir: str | Path, **options: Any
    ) -> Artifact:
        options.pop("console", None)
        name = board if isinstance(board, str) else board.name
        return compile_tflite(hw, name, Path(out_dir), **options)

    def describe(self, artifact: Any) -> str:
        lut = f", TFLM LUT-compressed {artifact.lut}" if artifact.lut else ""
        return f"{artifact.tflite} for TFLM (report.json{lut}); TFLM == golden checked"

    def load_artifact(self, out_dir: Path) -> Any:
        return Artifact.load(out_dir)

    def estimate(
        self, hw: HwGraph, board: "str | BoardSpec", calibration: Calibration = None,
        fps: float | None = None,
    ) -> Cost:  # fmt: skip
        raise AjpqError(_NO_COST)

    def measure(
        self, hw: HwGraph, board: "str | BoardSpec", out_dir: Path, image: Any,
        connect: Callable[[str], Any] | None = None, fps: float | None = None,
    ) -> Any:  # fmt: skip
        raise AjpqError(_NO_COST)

    def evidence(self, hw: HwGraph, measurement: Any) -> Evidence:
        return []

    def calibrate(self, rows: Evidence) -> Calibration:
        return None

    def stored_weight_bytes(self, hw: HwGraph) -> int:
        """int8 weight bytes of the .tflite (one byte a weight, pruned channels gone)."""
        return sum(int(node.arrays["weight"].size) for node in hw.nodes if "weight" in node.arrays)

    def calibration_key(self) -> str:
        return "tflite"


_NO_COST = (
    "the tflite backend has no cost model or board runtime; search with backend='mcu' and "
    "export the result with ajpq.compile(..., backend='tflite')"
)

TFLITE = TfliteBackend()
