"""Acceptance of the board path on QEMU: Skynet 0.25 at 64x128 with a mixed, pruned policy,
bit-exact over serial; deterministic instruction counts across QEMU processes; the protocol
under injected byte faults, a killed emulator and a silent port; EEMBC text mode."""

import re
import socket
import struct
import threading
import time

import numpy as np
import pytest
import serial
import torch

import ajpq
from ajpq.boards import Board
from ajpq.boards.faults import FaultyPort
from ajpq.boards.protocol import (
    CMD_INFO,
    CMD_LOAD_INPUT,
    CMD_READ_OUTPUT,
    CMD_RUN,
    BoardNotResponding,
    EembcClient,
    Link,
)
from ajpq.boards.qemu_board import QemuBoard
from ajpq.boards.session import Session
from ajpq.models.random_init import randomize_batchnorm

pytestmark = pytest.mark.hil

SIZE = (64, 128)
QUANTUM = 40  # instructions per SysTick tick under -icount shift=0
PATCH_AT, PATCH = 112, 48  # where and how many pixels the fault test rewrites between runs


@pytest.fixture(scope="module")
def compiled(board_id: str, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    if not board_id.startswith("qemu-"):
        pytest.skip(f"these tests start QEMU; board {board_id} is not emulated")
    torch.manual_seed(0)
    model = randomize_batchnorm(ajpq.models.skynet(0.25, SIZE))
    policy = ajpq.Policy.from_sparsity(model, 0.3, bits=[8, 6, 4])
    graph = ajpq.lower(ajpq.quantize(model, policy))
    artifact = ajpq.compile(graph, "mcu", board_id, tmp_path_factory.mktemp("accept") / "m")
    return graph, artifact


@pytest.fixture(scope="module")
def shapes(compiled: tuple) -> tuple[tuple[int, ...], tuple[int, ...]]:
    _, artifact = compiled
    return tuple(artifact.input_shape), tuple(artifact.output_shape)


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, *SIZE), dtype=np.uint8)


def test_flash_and_infer_ten_images_bit_exact(board_id: str, compiled: tuple) -> None:
    graph, artifact = compiled
    x = images(10, seed=1)
    expected = graph.run(x)
    with Board(board_id) as board:
        board.flash(artifact)
        with board.open() as session:
            assert session.info()["model_hash"] == artifact.model_hash
            outputs = np.stack([session.infer(image) for image in x])
    assert outputs.shape == expected.shape == (10, *artifact.output_shape)
    assert np.array_equal(outputs, expected)
    assert len({output.tobytes() for output in outputs}) == 10  # ten different answers


def test_benchmark_is_identical_across_qemu_processes(compiled: tuple, shapes: tuple) -> None:
    _, artifact = compiled
    x = images(1, seed=2)[0]
    measured = []
    for _ in range(2):
        with QemuBoard(artifact.elf) as board, board.open_session(*shapes) as session:
            assert board.process is not None
            single = session.benchmark(runs=1, warmup=0, x=x)
            repeated = session.benchmark(runs=3, warmup=1)
            measured.append((board.process.pid, single, repeated))
    (pid_a, single_a, repeated_a), (pid_b, single_b, repeated_b) = measured
    assert pid_a != pid_b
    assert single_a.count > 0 and single_a.unit == "instructions"
    assert single_a.count == single_b.count and single_a.per_layer == single_b.per_layer
    assert (repeated_a.count, repeated_a.min_count, repeated_a.max_count) == (
        repeated_b.count,
        repeated_b.min_count,
        repeated_b.max_count,
    )
    assert repeated_a.per_layer == repeated_b.per_layer
    # One run: the run's clock readings enclose the layers' (start <= s1 <= e1 <= ... <= en
    # <= end) and floor(t / 40) is monotone, so the layer ticks telescope to at most the
    # run's ticks. The rest is the layers + 1 gaps (before, between, after the layers): a
    # gap of g instructions spans at most ceil(g / 40) ticks; the timer code in a gap is
    # under 40 instructions, so each gap adds at most one tick.
    layers = len(single_a.per_layer)
    layer_sum = sum(layer["count"] for layer in single_a.per_layer)
    gap = single_a.count - layer_sum
    print(f"count {single_a.count}, layer sum {layer_sum}, gap {gap} over {layers + 1} gaps")
    assert all(layer["count"] % QUANTUM == 0 for layer in single_a.per_layer)
    assert layer_sum <= single_a.count <= layer_sum + (layers + 1) * QUANTUM
    assert all(0 <= layer["decode_count"] <= layer["count"] for layer in single_a.per_layer)


def expected_payloads(session: Session, graph: ajpq.HwGraph, base: np.ndarray) -> dict:
    """Un-faulted INFO, and per patch variant its golden output and RUN reply."""
    rng = np.random.default_rng(3)
    flat = base.reshape(-1)
    patches = [flat[PATCH_AT:][:PATCH].tobytes(), bytes(PATCH), b"\xff" * PATCH]
    patches.append(rng.integers(0, 256, PATCH, dtype=np.uint8).tobytes())
    session.load(base)
    golden, run_reply = [], []
    for patch in patches:
        image = flat.copy()
        image[PATCH_AT : PATCH_AT + PATCH] = np.frombuffer(patch, np.uint8)
        golden.append(graph.run(image.reshape(1, *base.shape)).reshape(-1))
        session.link.request(CMD_LOAD_INPUT, struct.pack("<I", PATCH_AT) + patch)
        run_reply.append(session.link.request(CMD_RUN, struct.pack("<HH", 1, 0)))
    differs = np.nonzero((np.stack(golden) != golden[0]).any(axis=0))[0]
    assert len({values.tobytes() for values in golden}) >= 2 and len(differs) > 0
    return {
        "info": session.link.request(CMD_INFO),
        "patches": patches,
        "golden": golden,
        "run": run_reply,
        "watch": max(0, int(differs[0]) - 4),  # 8 outputs that tell the patches apart
    }


def test_thousand_exchanges_under_byte_faults(compiled: tuple, shapes: tuple) -> None:
    graph, artifact = compiled
    with QemuBoard(artifact.elf) as board, board.open_session(*shapes) as clean:
        expected = expected_payloads(clean, graph, images(1, seed=4)[0])
        assert board.port is not None and board.url
        faulty = FaultyPort(board.port, corrupt=0.01, drop=0.001, duplicate=0.001, seed=7)
        link = Link(faulty, timeout_s=0.3, tries=40, url=board.url)  # INFO: 1 in 3 intact
        link.seq = 0  # a fixed start makes the frames, and so the faults they meet, repeatable
        rng = np.random.default_rng(5)
        current, exchanges, wrong = len(expected["patches"]) - 1, 0, 0
        start = time.monotonic()
        while exchanges < 1000:
            kind = exchanges % 10
            if kind < 4:
                wrong += link.request(CMD_INFO) != expected["info"]
                exchanges += 1
            elif kind < 8:
                offset, count = int(rng.integers(0, 1280 - 8)), int(rng.integers(1, 9))
                payload = link.request(CMD_READ_OUTPUT, struct.pack("<IH", offset, count))
                values = np.array(struct.unpack(f"<{count}i", payload))
                wrong += not np.array_equal(values, expected["golden"][current][offset:][:count])
                exchanges += 1
            else:
                current = int(rng.integers(0, len(expected["patches"])))
                patch = expected["patches"][current]
                load = struct.pack("<I", PATCH_AT) + patch
                wrong += link.request(CMD_LOAD_INPUT, load) != b""
                wrong += link.request(CMD_RUN, struct.pack("<HH", 1, 0)) != expected["run"][current]
                watch = expected["watch"]
                payload = link.request(CMD_READ_OUTPUT, struct.pack("<IH", watch, 8))
                values = np.array(struct.unpack("<8i", payload))
                wrong += not np.array_equal(values, expected["golden"][current][watch:][:8])
                exchanges += 3
        elapsed = time.monotonic() - start
    counts = faulty.counts
    print(
        f"{exchanges} exchanges in {elapsed:.1f} s ({1000 * elapsed / exchanges:.1f} ms each), "
        f"retries {link.retries}, {counts}"
    )
    assert wrong == 0
    assert link.retries > 0
    assert counts.corrupted > 0 and counts.dropped > 0 and counts.duplicated > 0
    assert 0.005 < counts.corrupted / counts.bytes_seen < 0.015
    assert elapsed < 60.0


def test_killed_qemu_is_detected_and_a_fresh_one_recovers(compiled: tuple, shapes: tuple) -> None:
    graph, artifact = compiled
    x = images(2, seed=6)
    golden = graph.run(x)
    with QemuBoard(artifact.elf, timeout_s=0.5) as board, board.open_session(*shapes) as session:
        assert np.array_equal(session.infer(x[0]), golden[0])
        board.kill()
        start = time.monotonic()
        with pytest.raises(BoardNotResponding) as caught:
            session.infer(x[1])
        elapsed = time.monotonic() - start
    message = str(caught.value)
    print(f"detected in {elapsed:.2f} s: {message}")
    assert re.fullmatch(
        r"the board on socket://127\.0\.0\.1:\d+ did not answer LOAD_INPUT within 0\.5 s "
        r"after 3 tries( \([^()\n]*\))?; check the port and that the firmware is flashed",
        message,
    )
    assert elapsed <= 3 * 0.5 + 1.0
    with QemuBoard(artifact.elf) as fresh, fresh.open_session(*shapes) as session:
        assert session.info()["model_hash"] == artifact.model_hash
        assert np.array_equal(session.infer(x[1]), golden[1])


def silent_server() -> tuple[socket.socket, threading.Event]:
    """A TCP server on 127.0.0.1 that accepts one client and reads it, never answering."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        client, _ = server.accept()
        client.settimeout(0.05)
        with client:
            while not done.is_set():
                try:
                    if not client.recv(4096):
                        return
                except TimeoutError:
                    continue

    threading.Thread(target=serve, daemon=True).start()
    return server, done


@pytest.mark.parametrize("kind", ["loop", "socket"])
def test_a_board_that_never_answers(kind: str) -> None:
    timeout, tries = 0.3, 3
    if kind == "loop":  # echoes the request back: a valid frame, but never a reply
        port, url, server, done = (
            serial.serial_for_url("loop://", timeout=0.05),
            "loop://",
            None,
            None,
        )
    else:
        server, done = silent_server()
        url = f"socket://127.0.0.1:{server.getsockname()[1]}"
        port = serial.serial_for_url(url, timeout=0.05)
    link = Link(port, timeout_s=timeout, tries=tries, url=url)
    start = time.monotonic()
    try:
        with pytest.raises(BoardNotResponding, match=rf"^the board on {url} did not answer INFO"):
            link.request(CMD_INFO)
    finally:
        elapsed = time.monotonic() - start
        link.close()
        if server is not None and done is not None:
            done.set()
            server.close()
    print(f"{kind}: BoardNotResponding after {elapsed:.2f} s")
    assert timeout * tries - 0.05 <= elapsed <= timeout * tries + 0.5
    assert link.retries == tries - 1


def test_eembc_text_mode_matches_golden(compiled: tuple) -> None:
    graph, artifact = compiled
    image = images(1, seed=8)[0]
    golden = graph.run(image[None])[0]
    with QemuBoard(artifact.elf) as board:
        assert board.port is not None
        client = EembcClient(board.port)
        assert client.command("name") == [f"m-name-ajpq-{artifact.model_hash}"]
        data = image.tobytes()
        assert client.command(f"db load {len(data)}") == [f"m-[Expecting {len(data)} bytes]"]
        replies = [
            client.command("db " + data[start : start + 256].hex())
            for start in range(0, len(data), 256)
        ]
        assert all(lines == [] for lines in replies[:-1]) and replies[-1] == ["m-load-done"]
        lines = client.command("infer 10 1")
    laps = [line for line in lines if line.startswith("m-lap-us-")]
    results = [line for line in lines if line.startswith("m-results-[")]
    assert len(laps) == 2 and len(results) == 1
    first, last = (int(line.removeprefix("m-lap-us-")) for line in laps)
    print(f"infer 10 1: {last - first} ticks = {(last - first) * QUANTUM} instructions")
    assert last > first
    values = results[0].removeprefix("m-results-[").removesuffix("]").split(",")
    outputs = np.array([int(value) for value in values], dtype=np.int64).reshape(golden.shape)
    assert np.array_equal(outputs, golden)
    scale = graph.output_scale[:, None, None]
    assert np.array_equal(outputs * scale, golden * scale)
    assert np.abs(outputs * scale).max() > 0  # the dequantized output is not all zero
