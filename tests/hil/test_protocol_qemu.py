"""The server firmware on QEMU: binary protocol (INFO, infer, benchmark, per-layer counts),
EEMBC text mode, and a board that dies mid-session. Bit-exact against HwGraph.run."""

import math
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ajpq.backends.mcu.firmware import PROTO_DIR, SERVER_MAIN, build_server_firmware
from ajpq.backends.mcu.host import FIRMWARE
from ajpq.boards import BoardSpec
from ajpq.boards.protocol import (
    CMD_LOAD_INPUT,
    CMD_READ_OUTPUT,
    BoardNotResponding,
    EembcClient,
    Frame,
    Limits,
    Link,
    SerialLike,
)
from ajpq.boards.qemu_board import QemuBoard
from ajpq.boards.session import Session
from tests.hil.qemu_models import random_skynet

pytestmark = pytest.mark.hil

SIZE = (32, 64)
WARNINGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wsign-conversion"]


@pytest.fixture(scope="module")
def compiled(board_id: str, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return random_skynet(board_id, tmp_path_factory.mktemp("server") / "model", SIZE, seed=3)


@pytest.fixture(scope="module")
def elf(compiled: tuple, board_spec: BoardSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, artifact = compiled
    return build_server_firmware(
        artifact.out_dir / "src", board_spec, tmp_path_factory.mktemp("elf")
    )


@pytest.fixture(scope="module")
def shapes(compiled: tuple) -> tuple[tuple[int, ...], tuple[int, ...]]:
    graph, _ = compiled
    output = graph.run(np.zeros((1, 3, *SIZE), np.uint8))
    return (3, *SIZE), tuple(output.shape[1:])


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, *SIZE), dtype=np.uint8)


@pytest.mark.parametrize("compiler", ["gcc", "arm-none-eabi-gcc"])
def test_protocol_c_is_warning_free(compiler: str, compiled: tuple) -> None:
    _, artifact = compiled
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is missing")
    includes = [artifact.out_dir / "src", FIRMWARE / "include", PROTO_DIR]
    for source in [*sorted(PROTO_DIR.glob("*.c")), SERVER_MAIN]:
        command = [compiler, *WARNINGS, *(f"-I{d}" for d in includes), "-fsyntax-only"]
        result = subprocess.run([*command, str(source)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_info_infer_and_benchmark(compiled: tuple, elf: Path, shapes: tuple, board_id) -> None:
    graph, artifact = compiled
    x = images(5, seed=1)
    with QemuBoard(elf) as board, board.open_session(*shapes) as session:
        info = session.info()
        assert info["model_hash"] == artifact.model_hash
        assert info["board"] == board_id
        assert info["timer_source"] == "systick-icount" and info["units_per_tick"] == 40
        assert info["layers"] >= 1 and info["protocol_version"] == 2
        outputs = np.stack([session.infer(image) for image in x])
        assert np.array_equal(outputs, graph.run(x))
        assert np.array_equal(session.infer(x[:1]), graph.run(x[:1]))

        first = session.benchmark(runs=3, warmup=1, x=x[0])
        second = session.benchmark(runs=3, warmup=1)
        assert first.unit == "instructions" and first.latency_s is None
        assert first.timer_source == "systick-icount"
        assert first.count > 0 and first.count == second.count
        assert first.min_count <= first.count <= first.max_count
        assert first.max_count == first.min_count  # each run starts on the tick grid
        assert (first.min_count, first.max_count) == (second.min_count, second.max_count)
        assert np.array_equal(first.output, graph.run(x[:1])[0])
        assert [layer["index"] for layer in first.per_layer] == list(range(info["layers"]))
        layer_total = sum(layer["count"] for layer in first.per_layer)
        assert 0.9 * first.count <= layer_total <= first.count
        assert all(0 <= layer["decode_count"] <= layer["count"] for layer in first.per_layer)
        assert first.per_layer == second.per_layer
        session.quit()
        assert board.process is not None and board.process.wait(timeout=10) == 0


class RecordingPort:
    """Forwards to a serial port and keeps every request frame the host writes."""

    def __init__(self, port: SerialLike) -> None:
        self.port = port
        self.portstr = getattr(port, "portstr", None)
        self.requests: list[Frame] = []

    @property
    def timeout(self) -> float | None:
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.port.timeout = value

    def write(self, data: bytes) -> int | None:
        self.requests.append(Frame.decode(data[1:-1]))
        return self.port.write(data)

    def read(self, size: int = 1) -> bytes:
        return self.port.read(size)

    def reset_input_buffer(self) -> None:
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()


def test_host_uses_the_frame_size_the_board_reports(
    compiled: tuple, elf: Path, shapes: tuple
) -> None:
    graph, _ = compiled
    blank = np.full((3, *SIZE), 0xFF, np.uint8)  # no 0x00: the longest COBS blocks
    with QemuBoard(elf) as board:
        assert board.port is not None
        port = RecordingPort(board.port)
        session = Session(Link(port, url=board.url), *shapes)
        assert session.info()["max_body"] == 512
        assert session.link.limits == Limits(512, 508, 127, 63)
        for image in (blank, images(1, seed=3)[0]):
            port.requests.clear()
            assert np.array_equal(session.infer(image), graph.run(image[None])[0])
            loads = [r for r in port.requests if r.cmd == CMD_LOAD_INPUT]
            reads = [r for r in port.requests if r.cmd == CMD_READ_OUTPUT]
            assert len(loads) == math.ceil(blank.size / 508) == 13
            assert [len(r.body) for r in loads] == [512] * 12 + [4 + blank.size - 12 * 508]
            assert len(reads) == math.ceil(int(np.prod(shapes[1])) / 127)
        assert session.link.retries == 0


def test_eembc_text_mode(compiled: tuple, elf: Path) -> None:
    graph, artifact = compiled
    x = images(2, seed=2)
    with QemuBoard(elf) as board:
        assert board.port is not None
        client = EembcClient(board.port)
        assert client.name() == f"ajpq-{artifact.model_hash}"
        profile = client.command("profile")
        assert "m-timer-[systick-icount,40]" in profile
        for image in x:
            client.load(image.tobytes())
            laps, outputs = client.infer(2, 1)
            assert np.array_equal(outputs, graph.run(image[None]).reshape(-1))
            assert laps[1] > laps[0]
        assert any(line.startswith("m-error") for line in client.command("db load 999999"))


def test_killed_board_is_not_responding(elf: Path, shapes: tuple) -> None:
    with QemuBoard(elf, timeout_s=0.5) as board, board.open_session(*shapes) as session:
        session.info()
        board.kill()
        start = time.monotonic()
        with pytest.raises(BoardNotResponding, match=r"did not answer RUN within 0\.5 s after 3"):
            session.link.request(3, b"\x01\x00\x00\x00", timeout_s=0.5)
        assert time.monotonic() - start < 3 * 0.5 + 1.0
