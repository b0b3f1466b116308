"""What the firmware checks in flash at boot (firmware/runtime/ajpq_verify.h), on QEMU: a
byte flipped in the weights of a built ELF is caught at boot, reported in INFO, refused by
RUN and by text-mode infer, and the host says so in one sentence."""

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ajpq.backends.mcu.artifact import Artifact
from ajpq.boards.protocol import CMD_RUN, BoardProtocolError, EembcClient
from ajpq.boards.qemu_board import QemuBoard
from ajpq.boards.session import Session
from ajpq.errors import AjpqError
from tests.hil.qemu_models import random_skynet

pytestmark = pytest.mark.hil

SIZE = (16, 32)


@pytest.fixture(scope="module")
def artifact(board_id: str, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return random_skynet(board_id, tmp_path_factory.mktemp("check") / "model", SIZE, seed=1)[1]


def symbol_address(elf: Path, name: str) -> int:
    nm = shutil.which("arm-none-eabi-nm") or "nm"
    listing = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} is not in {elf}")


def file_offset(elf: bytes, address: int) -> int:
    """Where the loadable segment holding ``address`` keeps it in the ELF32 file."""
    (phoff,) = struct.unpack_from("<I", elf, 0x1C)
    size, count = struct.unpack_from("<HH", elf, 0x2A)
    for k in range(count):
        kind, offset, vaddr, _, filesz = struct.unpack_from("<IIIII", elf, phoff + k * size)
        if kind == 1 and vaddr <= address < vaddr + filesz:
            return offset + address - vaddr
    raise AssertionError(f"{address:#x} is in no loadable segment")


def flipped(artifact: Artifact, symbol: str, at: int, out: Path) -> Path:
    assert artifact.elf is not None
    image = bytearray(artifact.elf.read_bytes())
    image[file_offset(bytes(image), symbol_address(artifact.elf, symbol) + at)] ^= 0x10
    out.write_bytes(bytes(image))
    return out


def shapes(artifact: Artifact) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(artifact.input_shape), tuple(artifact.output_shape)


def test_the_intact_image_passes_its_check(artifact: Artifact) -> None:
    assert artifact.elf is not None
    with QemuBoard(artifact.elf) as board, board.open_session(*shapes(artifact)) as session:
        info = session.info()
        image = np.zeros(artifact.input_shape, np.uint8)
        assert np.array_equal(session.infer(image), artifact.run_host(image)[0])
    assert info["model_check"] == "verified"
    assert info["weights_crc"] == info["expected_weights_crc"] == artifact.report["weights_crc"]


@pytest.mark.parametrize(
    ("symbol", "at"),
    [("ajpq_w0_g0_bits", 3), ("ajpq_w0_g0_table_lookup", 1), ("ajpq_w0_bias", 0)],
)
def test_a_flipped_byte_is_caught_at_boot(
    artifact: Artifact, symbol: str, at: int, tmp_path: Path
) -> None:
    elf = flipped(artifact, symbol, at, tmp_path / "flipped.elf")
    with QemuBoard(elf) as board, board.open_session(*shapes(artifact)) as session:
        with pytest.raises(AjpqError) as caught:
            session.info()
        with pytest.raises(BoardProtocolError) as refused:
            session.link.request(CMD_RUN, struct.pack("<HH", 1, 0))
        assert board.port is not None
        lines = EembcClient(board.port).command("infer 1 0")
    message = str(caught.value)
    print(message)
    crc = artifact.report["weights_crc"]
    assert re.fullmatch(
        r"the firmware on socket://127\.0\.0\.1:\d+ failed its check of flash at boot \(the "
        rf"weights in flash do not match their CRC: CRC [0-9a-f]{{8}}, built {crc}\); flash "
        r"the artifact again",
        message,
    )
    assert str(refused.value) == (
        "the board rejected RUN: its model failed its check of flash (INFO says which)"
    )
    assert lines == ["m-error-model-failed-verification"]


def test_the_host_refuses_a_board_that_runs_another_artifact(artifact: Artifact) -> None:
    assert artifact.elf is not None
    other = {"model_hash": artifact.model_hash, "weights_crc": "0badc0de"}
    with QemuBoard(artifact.elf) as board:
        session = Session(board.link(), *shapes(artifact), expect=other)
        with pytest.raises(AjpqError) as caught:
            session.info()
        session.close()
    assert re.fullmatch(
        r"the board on socket://127\.0\.0\.1:\d+ runs weights crc [0-9a-f]{8}, not the "
        r"flashed artifact's 0badc0de; flash the artifact again",
        str(caught.value),
    )
