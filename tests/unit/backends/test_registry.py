"""The backend registry: every registered backend satisfies the one Backend protocol."""

import re
from pathlib import Path

import pytest

from ajpq.backends import BACKEND_NAMES, Backend, Cost, get
from ajpq.errors import AjpqError


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_registered_backend_satisfies_the_protocol(name: str) -> None:
    backend = get(name)
    assert isinstance(backend, Backend)
    assert backend.name == name and backend.board_kind in ("mcu", "fpga")


def test_an_unknown_backend_is_one_sentence() -> None:
    with pytest.raises(AjpqError) as caught:
        get("tpu")
    assert str(caught.value) == "unknown backend 'tpu'; available: mcu, finn, tflite"


def test_a_cost_fits_when_every_limited_resource_is_within_its_limit() -> None:
    cost = Cost(1.0, 1.0, 1.0, "cycles", {"LUT": 10.0, "DSP": 5.0}, {"LUT": 10.0, "DSP": 0.0})
    assert cost.fits and cost.over() == {}
    over = Cost(1.0, 1.0, 1.0, "cycles", {"LUT": 11.0}, {"LUT": 10.0})
    assert not over.fits and over.over() == {"LUT": (11.0, 10.0)}


def test_the_readme_lists_the_protocol_as_it_is() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    listing = re.search(r"```text\nclass Backend\(Protocol\):\n(.*?)```", readme, flags=re.S)
    assert listing is not None
    listed = re.findall(r"def (\w+)\(self", listing.group(1))
    methods = [name for name in vars(Backend) if not name.startswith("_")]
    assert sorted(listed) == sorted(m for m in methods if callable(getattr(Backend, m)))
