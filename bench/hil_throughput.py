"""HIL throughput on the QEMU board: flash-and-measure cycles per minute, and where the time of
one Session.infer goes.

One cycle = start QEMU with the server firmware (QemuBoard) + open a session + INFO +
benchmark(runs=1, warmup=0) (RUN, READ_OUTPUT, READ_LAYERS) + stop QEMU; the goal is >= 10
cycles a minute. Per inference it times, in host wall-clock seconds: the whole round trip of
Session.infer (LOAD_INPUT chunks + RUN + READ_OUTPUT chunks), and each part alone. RUN
alone still includes one request/reply over the TCP serial port and the firmware's wait for
the next SysTick tick, besides emulating the model's instructions; the host's own share
cannot be split from the emulated run time on one clock, so both are reported.

    python bench/hil_throughput.py [--cycles 10] [--infers 20] [--board qemu-mps2-an386]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ajpq
from ajpq.boards.protocol import CMD_INFO, CMD_RUN
from ajpq.boards.qemu_board import QemuBoard

SIZE = (32, 64)


def timed(function: object, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(1000 * statistics.median(seconds), 2),
        "min_ms": round(1000 * min(seconds), 2),
        "max_ms": round(1000 * max(seconds), 2),
    }


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--infers", type=int, default=20)
    parser.add_argument("--board", default="qemu-mps2-an386")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = ajpq.models.skynet(0.125, SIZE)
    graph = ajpq.lower(ajpq.quantize(model, ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 4])))
    with tempfile.TemporaryDirectory(prefix="ajpq-hil-bench-") as tmp:
        artifact = ajpq.compile(graph, "mcu", args.board, Path(tmp) / "m")
        shapes = (tuple(artifact.input_shape), tuple(artifact.output_shape))
        x = np.random.default_rng(0).integers(0, 256, shapes[0], dtype=np.uint8)

        cycle_seconds, counts = [], set()
        for _ in range(args.cycles):
            start = time.perf_counter()
            with QemuBoard(artifact.elf) as board, board.open_session(*shapes) as session:
                counts.add(session.benchmark(runs=1, warmup=0, x=x).count)
            cycle_seconds.append(time.perf_counter() - start)

        with QemuBoard(artifact.elf) as board, board.open_session(*shapes) as session:
            session.infer(x)  # INFO cached, first-run effects out of the way
            infer = timed(lambda: session.infer(x), args.infers)
            load = timed(lambda: session.load(x), args.infers)
            run = timed(lambda: session.link.request(CMD_RUN, b"\x01\x00\x00\x00"), args.infers)
            read = timed(session.read_output, args.infers)
            info = timed(lambda: session.link.request(CMD_INFO), args.infers)
            instructions = session.benchmark(runs=1, warmup=0).count
            correct = bool(np.array_equal(session.infer(x), graph.run(x[None])[0]))

    total = sum(cycle_seconds)
    return {
        "board": args.board,
        "model": f"skynet 0.125 at {SIZE[0]}x{SIZE[1]}, input {shapes[0]}, output {shapes[1]}",
        "cycles": args.cycles,
        "cycles_per_minute": round(60 * args.cycles / total, 1),
        "cycle": summary(cycle_seconds),
        "cycle_counts_identical": len(counts) == 1,
        "instructions_per_inference": instructions,
        "infer_round_trip": summary(infer),
        "load_input": summary(load),
        "run_alone": summary(run),
        "read_output": summary(read),
        "info_request": summary(info),
        "input_bytes": int(np.prod(shapes[0])),
        "output_values": int(np.prod(shapes[1])),
        "infer_output_correct": correct,
        "notes": (
            "times are host wall-clock; infer = LOAD_INPUT chunks (200 pixels each) + RUN + "
            "READ_OUTPUT chunks (60 values each); run_alone = one RUN request/reply incl. "
            "the emulated inference and the tick-grid wait; info_request = one small "
            "request/reply (the per-request floor); the rest of infer is serial "
            "traffic, dominated by QEMU delivering the UART bytes one at a time"
        ),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
