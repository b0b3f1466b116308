"""The libFuzzer targets of the firmware sources (tests/fuzz/), run briefly on every test run
(AJPQ_FUZZ_SECONDS each, 30 by default; `make fuzz` runs 1,000,000 executions each). A
sanitizer report or a broken property fails with the reproducer's path."""

import os
import shutil
from pathlib import Path

import pytest

from tests.fuzz import run as fuzz

SECONDS = int(os.environ.get("AJPQ_FUZZ_SECONDS", "30"))
REGRESSIONS = sorted((fuzz.HERE / "corpus" / "fuzz_huffman_table").glob("regression-*"))


@pytest.fixture(scope="module", autouse=True)
def need_clang(pytestconfig: pytest.Config) -> None:
    if shutil.which("clang") is None:
        message = "clang is missing (run make setup); the fuzz targets need it"
        if os.environ.get("CI") or pytestconfig.getoption("--strict-hardware"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("name", list(fuzz.TARGETS))
def test_target_survives_its_budget(name: str, tmp_path: Path) -> None:
    result = fuzz.run(name, seconds=SECONDS, out_dir=tmp_path)
    print(result)
    assert result.crash is None, f"{name} failed: reproduce with {tmp_path / name} {result.crash}"
    assert result.executions >= 100 * SECONDS  # it ran: the slowest makes ~2,000 a second


def test_the_damaged_tables_crashed_the_decoder_before_it_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The regression inputs of the corpus, run by a table target that skips validation as
    the firmware once did: each is reported with a reproducer (and each is harmless to the
    real target, which runs them first in test_target_survives_its_budget)."""
    table = fuzz.TARGETS["fuzz_huffman_table"]
    unvalidated = fuzz.Target(table.harness, table.sources, ("AJPQ_FUZZ_SKIP_VALIDATE",))
    monkeypatch.setitem(fuzz.TARGETS, "fuzz_huffman_table", unvalidated)
    assert len(REGRESSIONS) == 4
    crashed = []
    for regression in REGRESSIONS:
        seeds = tmp_path / "seeds" / regression.name
        seeds.mkdir(parents=True)
        shutil.copy(regression, seeds)
        result = fuzz.run("fuzz_huffman_table", runs=1, out_dir=tmp_path, seeds=seeds)
        crashed.append(result.crash is not None and Path(result.crash).read_bytes())
    assert crashed == [regression.read_bytes() for regression in REGRESSIONS]
