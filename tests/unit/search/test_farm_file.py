"""The board farm's pure parts (issue 14): the farm file, the `ray start` it gives each host,
the boards found in a cluster's resources, and the one sentence when Ray is missing."""

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ajpq
from ajpq.cli import app
from ajpq.errors import AjpqError, ToolchainMissing
from ajpq.search import Budget
from ajpq.search.farm import FarmFile
from ajpq.search.farm.cluster import slots

EXAMPLE = Path(__file__).resolve().parents[3] / "hw" / "farms" / "example.toml"


def test_each_host_starts_its_node_with_its_boards_as_resources() -> None:
    farm = FarmFile.load(EXAMPLE)
    assert farm.address == "10.0.0.11:6379"
    head = farm.ray_start("lab-1")
    assert head[:4] == ["ray", "start", "--head", "--port=6379"]
    assert head[-1] == (
        '--resources={"board:qemu-mps2-an386": 2, "board:stm32f746g-disco": 1, '
        '"board:stm32f746g-disco:066DFF383833584B43113427": 1}'
    )
    joining = farm.ray_start("lab-2")
    assert joining[2] == "--address=10.0.0.11:6379" and "--head" not in joining
    assert farm.find("nrf52840-dk", "000683512345").probe == "000683512345"


def test_one_worker_per_physical_board_with_its_port() -> None:
    farm = FarmFile.load(EXAMPLE)
    resources = {
        "CPU": 8.0,
        "board:stm32f746g-disco": 2.0,
        "board:stm32f746g-disco:066DFF383833584B43113427": 1.0,
        "board:stm32f746g-disco:0670FF555052836687182232": 1.0,
        "board:qemu-mps2-an386": 2.0,
    }
    found = slots(resources, "stm32f746g-disco", farm)
    assert [(s.resource, s.port) for s in found] == [
        ("board:stm32f746g-disco:066DFF383833584B43113427", "/dev/ttyACM0"),
        ("board:stm32f746g-disco:0670FF555052836687182232", "/dev/ttyACM1"),
    ]
    emulated = slots(resources, "qemu-mps2-an386")
    assert [(s.resource, s.name) for s in emulated] == [
        ("board:qemu-mps2-an386", "qemu-mps2-an386#0"),
        ("board:qemu-mps2-an386", "qemu-mps2-an386#1"),
    ]
    with pytest.raises(AjpqError, match="no nrf52840-dk board"):
        slots(resources, "nrf52840-dk")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("head = 'x'\n[[host]]\nname = 'y'\n", "no host 'x'"),
        ("[[host]]\nname = 'a'\n[[host.board]]\nid = 'stm32f746g-disco'\n", "serial number"),
        ("[[host]]\nname = 'a'\n[[host.board]]\nid = 'no-such-board'\n", "no-such-board"),
        ("[[host]\n", "not a readable board farm file"),
        ("port = 1\n", "not a readable board farm file"),
    ],
)
def test_a_bad_farm_file_is_one_sentence(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "farm.toml"
    path.write_text(text)
    with pytest.raises(AjpqError, match=says):
        FarmFile.load(path)


def test_without_ray_workers_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    model = ajpq.models.skynet(0.125, (32, 64))
    train, val = ajpq.data.aerial(8, 4, input_size=(32, 64))
    with pytest.raises(ToolchainMissing) as raised:
        ajpq.search(model, train, val, budget=Budget(weight_bytes=3000), episodes=2,
                    progress=False, workers=2)  # fmt: skip
    assert str(raised.value) == (
        "a search on several workers needs Ray: pip install -c constraints.txt '.[ray]' "
        "(in a checkout of ajpq) or 'ajpq[ray]'"
    )


def test_farm_show_prints_every_host_command() -> None:
    result = CliRunner().invoke(app, ["farm", "show", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.count("RAY_AUTH_MODE=token ray start") == 2
    assert "--ray-address 10.0.0.11:6379" in result.output


def test_an_address_without_a_ray_head_fails_in_one_sentence() -> None:
    import socket

    from ajpq.search.farm.cluster import check_reachable

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AjpqError, match=f"no Ray head answers at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}", timeout_s=2)
