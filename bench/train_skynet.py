"""Train Skynet (fp32) on synthetic aerial scenes; QAT fine-tune it at 8 and 4 bits; print
the val mean IoU of each as JSON (the quantized ones decoded from the golden integer graph).

    python bench/train_skynet.py                      # width 0.5, 160x320, ~25 min on 2 cores
    python bench/train_skynet.py --n-train 64 --n-val 16 --epochs 1 --input-size 32 64

Measured on 2 CPU cores: one fp32 training step (batch 32) of width 0.5 at 160x320 takes
~2.5 s, so 2000 images x 4 epochs ~ 10 min plus validation; each QAT fine-tune is capped
by --qat-max-seconds.
"""

import argparse
import json
import sys

import torch
from torch import nn

import ajpq
from ajpq.data import Dataset, aerial
from ajpq.demo import graph_iou
from ajpq.models import skynet
from ajpq.train import train


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width-mult", type=float, default=0.5)
    parser.add_argument("--input-size", type=int, nargs=2, default=[160, 320])
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--qat-max-seconds", type=float, default=420.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    return parser.parse_args(argv)


def quantized_iou(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset,
    bits: int,
    arguments: argparse.Namespace,
) -> dict[str, float]:
    """Uniform ``bits`` (weights and activations) QAT fine-tune; IoU of the deployed graph.

    ``mean_iou`` is decoded from the golden integer executor's outputs (what a board runs);
    ``brevitas_mean_iou`` from the QAT model's float forward.
    """
    calibration = torch.from_numpy(train_data.images[:32]).float()
    qmodel = ajpq.quantize(model, ajpq.Policy.uniform(model, bits, bits), calibration)
    result = ajpq.train(
        qmodel,
        train_data,
        val_data,
        epochs=arguments.qat_epochs,
        lr=2e-4,
        seed=arguments.seed,
        progress=arguments.progress,
        max_seconds=arguments.qat_max_seconds,
    )
    graph = ajpq.lower(qmodel.eval())
    return {
        "mean_iou": graph_iou(graph, val_data.images, val_data.boxes, model.anchors),
        "brevitas_mean_iou": ajpq.evaluate(qmodel, val_data),
        "qat_seconds": result.seconds,
    }


def main(argv: list[str]) -> dict[str, object]:
    arguments = parse_arguments(argv)
    input_size = (arguments.input_size[0], arguments.input_size[1])
    train_data, val_data = aerial(
        arguments.n_train, arguments.n_val, input_size=input_size, seed=arguments.seed
    )
    torch.manual_seed(arguments.seed)
    model = skynet(width_mult=arguments.width_mult, input_size=input_size)
    result = train(
        model,
        train_data,
        val_data,
        epochs=arguments.epochs,
        batch_size=arguments.batch_size,
        lr=arguments.lr,
        seed=arguments.seed,
        progress=arguments.progress,
        max_seconds=arguments.max_seconds,
    )
    return {
        "fp32_mean_iou": result.metric,
        "train_seconds": round(result.seconds, 2),
        "n_train": arguments.n_train,
        "n_val": arguments.n_val,
        "width_mult": arguments.width_mult,
        "input_size": list(input_size),
        "epochs": result.epochs_run,
        "epochs_requested": arguments.epochs,
        "losses": [round(loss, 4) for loss in result.losses],
        "int8": quantized_iou(model, train_data, val_data, 8, arguments),
        "int4": quantized_iou(model, train_data, val_data, 4, arguments),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
