"""ajpq's deployment vs TensorFlow Lite for Microcontrollers, side by side; prints JSON.

    make demo && python bench/tflm_side_by_side.py          # the demo's int8 and AJPQ models
    python bench/tflm_side_by_side.py --demo-dir DIR        # another demo run (ajpq demo -o)

For the demo's int8 and AJPQ policies on its fp32 Skynet, each quantized once with
``target="tflite"`` and QAT fine-tuned as the demo does (same epochs, distilled), one graph is
compiled twice: by ajpq's mcu backend (Huffman-packed weights, C kernels in TFLite's double
rounding) and by the tflite backend (an int8 .tflite, and TFLM's own LUT compression of it).
It prints flash bytes (ajpq's model data — streams, code tables, biases, requantization — vs
the whole .tflite file), weight bytes alone, RAM (ajpq's peak arena of int16 activations plus
its decoded-weight scratch vs the smallest arena TFLM allocates the model in), the mean IoU of
the TFLite-arithmetic graph next to the demo's own, and checks that the host-built C, TFLM and
the golden executor give equal outputs on ``--images`` val images.

Goals: ajpq's AJPQ model >= 3x smaller than the int8 .tflite of the same net, and >= 1.5x
smaller than TFLM's compressed file of the AJPQ model (its LUT file, or its plain .tflite
where TFLM's LUT would be larger). A missed goal is printed in ``missed``.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ajpq
from ajpq.demo import DemoConfig, cached_data, graph_iou
from ajpq.models.checkpoint import load_model

GOAL_VS_INT8, GOAL_VS_LUT = 3.0, 1.5
MODELS = ("int8", "AJPQ")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, default=Path("demo-out"))
    parser.add_argument("--finetune-epochs", type=int, default=None, help="default: the demo's")
    parser.add_argument("--images", type=int, default=30, help="val images checked for equality")
    parser.add_argument("--out", type=Path, default=Path("build/bench-tflm"))
    return parser.parse_args(argv)


def demo_inputs(demo_dir: Path) -> tuple[DemoConfig, torch.nn.Module, dict[str, ajpq.Policy]]:
    report = demo_dir / "report.json"
    if not report.exists():
        sys.exit(f"{report} is missing; run `make demo` first (or pass --demo-dir)")
    raw = json.loads(report.read_text())["config"]
    raw["input_size"] = tuple(raw["input_size"])
    config = DemoConfig(**raw)
    model, _ = load_model(demo_dir / "cache" / f"skynet-fp32-{config.key()}.pt")
    size = config.input_size
    policies = {name: ajpq.Policy.load(demo_dir / f"{name}-policy.json", model, size)
                for name in MODELS}  # fmt: skip
    return config, model.eval(), policies


def tflite_graph(
    model: torch.nn.Module, policy: ajpq.Policy, config: DemoConfig, data: tuple, epochs: int
) -> ajpq.HwGraph:
    train, val = data
    calibration = torch.from_numpy(train.images[:32]).float()
    qmodel = ajpq.quantize(model, policy, calibration=calibration, target="tflite")
    if epochs:
        ajpq.train(
            qmodel, train, val, epochs=epochs, lr=config.finetune_lr, seed=config.seed,
            teacher=model,
        )  # fmt: skip
    return ajpq.lower(qmodel.eval())


def side_by_side(
    name: str, graph: ajpq.HwGraph, images: np.ndarray, config: DemoConfig, out: Path
) -> dict[str, Any]:
    mcu = ajpq.compile(graph, "mcu", config.board, out / f"mcu-{name}")
    tfl = ajpq.compile(graph, "tflite", config.board, out / f"tflite-{name}")
    golden = graph.run(images)
    r, t = mcu.report, tfl.report
    lut = t["file_bytes"]["tflite_lut"]
    return {
        "flash_bytes": {
            "ajpq_model_data": r["model_data_bytes"],
            "tflite_file": t["file_bytes"]["tflite"],
            "tflite_lut_file": lut,
            "tflm_best_file": min(t["file_bytes"]["tflite"], lut or t["file_bytes"]["tflite"]),
        },
        "weight_bytes": {
            "ajpq_huffman_streams": r["weights"]["huffman_bytes"],
            "int8": t["weight_bytes_int8"],
        },
        "ram_bytes": {
            "ajpq_peak_arena": r["peak_arena_bytes"],
            "ajpq_weight_scratch": r["weight_scratch_bytes"],
            "tflm_arena": t["arena_bytes"]["tflm"],
            "tflm_lut_arena": t["arena_bytes"]["tflm_lut"],
        },
        "outputs_equal": {
            "host_c_vs_golden": bool(np.array_equal(mcu.run_host(images), golden)),
            "tflm_vs_golden": bool(np.array_equal(tfl.run_tflm(images), golden)),
            "images": len(images),
        },
    }


def goals(rows: dict[str, dict[str, Any]]) -> tuple[dict[str, float], list[str]]:
    ajpq_bytes = rows["AJPQ"]["flash_bytes"]["ajpq_model_data"]
    vs_int8 = rows["int8"]["flash_bytes"]["tflite_file"] / ajpq_bytes
    vs_lut = rows["AJPQ"]["flash_bytes"]["tflm_best_file"] / ajpq_bytes
    missed = []
    if vs_int8 < GOAL_VS_INT8:
        missed.append(f"AJPQ is {vs_int8:.2f}x smaller than the int8 .tflite, goal {GOAL_VS_INT8}x")
    if vs_lut < GOAL_VS_LUT:
        missed.append(f"AJPQ is {vs_lut:.2f}x smaller than TFLM's best file, goal {GOAL_VS_LUT}x")
    for name, row in rows.items():
        if not all(v for k, v in row["outputs_equal"].items() if k != "images"):
            missed.append(f"{name}: outputs differ between ajpq's C, TFLM and golden")
    return {"ajpq_vs_int8_tflite": round(vs_int8, 2), "ajpq_vs_tflm_best": round(vs_lut, 2)}, missed


def main(argv: list[str]) -> dict[str, Any]:
    arguments = parse_arguments(argv)
    start = time.time()
    config, model, policies = demo_inputs(arguments.demo_dir)
    data = cached_data(config, arguments.demo_dir / "cache", fresh=False)
    epochs = (
        config.finetune_epochs if arguments.finetune_epochs is None else arguments.finetune_epochs
    )
    demo_rows = {
        row["model"]: row
        for row in json.loads((arguments.demo_dir / "report.json").read_text())["rows"]
    }
    images = data[1].images[: arguments.images]
    rows = {}
    for name, policy in policies.items():
        graph = tflite_graph(model, policy, config, data, epochs)
        row = side_by_side(name, graph, images, config, arguments.out)
        row["mean_iou"] = {
            "tflite_target_golden": round(
                graph_iou(graph, data[1].images, data[1].boxes, model.anchors), 4
            ),
            "demo_row": round(float(demo_rows[name]["mean_iou"]), 4),
        }
        rows[name] = row
    ratios, missed = goals(rows)
    return {"models": rows, "ratios": ratios, "finetune_epochs": epochs,
            "seconds": round(time.time() - start, 1), "missed": missed}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
