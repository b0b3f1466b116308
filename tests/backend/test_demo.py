"""`ajpq demo --quick`: the main job end to end at tiny sizes (issue 7): every table cell is
filled, the AJPQ IoU is the board's and equals the golden executor's, the files exist."""

import json

import pytest
from rich.console import Console

from ajpq.demo import DemoConfig, run_demo
from ajpq.demo_report import COLUMNS, cells
from tests.backend.tools import need


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    need(request)
    out = tmp_path_factory.mktemp("demo")
    run_demo(DemoConfig.quick(), out, fresh=False, console=Console(quiet=True))
    return {"out": out, **json.loads((out / "report.json").read_text())}


def test_the_table_has_every_row_and_cell(report) -> None:
    rows = report["rows"]
    assert [row["model"] for row in rows] == ["fp32", "int8", "Deep Compression", "AJPQ"]
    for row in rows[1:]:
        values = cells(row, rows[0]["weight_bytes"])
        assert len(values) == len(COLUMNS) and "n/a" not in values, (row["model"], values)
    for name in ("report.md", "pareto.png", "search/hardware.json"):
        assert (report["out"] / name).is_file(), name


def test_the_ajpq_iou_is_read_back_from_the_board_and_equals_golden(report) -> None:
    ajpq = report["rows"][-1]
    config = DemoConfig.quick()
    assert ajpq["board_images"] == config.n_val
    assert ajpq["board_equals_golden"] is True
    assert ajpq["mean_iou"] == ajpq["board_mean_iou"] == ajpq["golden_mean_iou"]
    assert ajpq["golden_vs_brevitas_mismatches"] == 0
    assert "AJPQ IoU from the board's outputs" in report["verdict"]


def test_the_best_candidate_was_measured_on_the_board_in_the_search(report) -> None:
    records = json.loads((report["out"] / "search" / "hardware.json").read_text())
    assert [r["kind"] for r in records].count("calibration") == 4
    assert any(r["kind"] == "candidate" and r["measured"] > 0 for r in records)
