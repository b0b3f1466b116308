"""`ajpq demo --quick`: the main job end to end at tiny sizes (issue 7): every table cell is
filled, the AJPQ IoU is the board's and equals the golden executor's, the files exist."""

import json

import pytest
from rich.console import Console

from ajpq.demo import DemoConfig, run_demo
from ajpq.demo_report import COLUMNS, cells, verdict
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


def test_the_report_says_where_the_time_went(report) -> None:
    stages = report["stage_seconds"]
    assert list(stages) == [
        "data and fp32 model",
        "search and baselines",
        "int8 row",
        "Deep Compression row",
        "AJPQ row",
        "FINN estimates left",
    ]
    assert 0 < sum(stages.values()) <= report["seconds"] + 0.5  # each lap rounded to 0.1 s


def test_the_search_keeps_to_the_demo_budget_and_space(report) -> None:
    config = DemoConfig.quick()
    int8 = report["rows"][1]["weight_bytes"]
    for candidate in report["search"]["candidates"]:
        assert candidate["weight_bytes"] <= int(int8 * config.budget_fraction)
        for name, layer in candidate["policy"].items():
            bits = layer["weight_bits"]
            pruned = bits.count(0)
            assert pruned <= config.max_sparsity * len(bits) + 1, (name, bits)
            assert min(b for b in bits if b > 0) >= config.min_bits, (name, bits)


def test_the_ajpq_outputs_read_back_from_the_board_equal_golden(report) -> None:
    ajpq = report["rows"][-1]
    config = DemoConfig.quick()
    assert ajpq["board_images"] == config.ajpq_board_images
    assert ajpq["board_equals_golden"] is True
    assert ajpq["board_mean_iou"] == ajpq["golden_mean_iou_same_images"]
    assert ajpq["golden_vs_brevitas_mismatches"] == 0
    assert f"on the board, {config.ajpq_board_images} images: outputs equal to" in report["verdict"]


def test_the_best_candidate_was_measured_on_the_board_in_the_search(report) -> None:
    records = json.loads((report["out"] / "search" / "hardware.json").read_text())
    assert [r["kind"] for r in records].count("calibration") == 4
    assert any(r["kind"] == "candidate" and r["measured"] > 0 for r in records)


def rows(ajpq_bytes: int, ajpq_iou: float) -> list[dict]:
    """An int8 row and an AJPQ row, as run_demo writes them (without the board's keys)."""
    return [
        {"model": "int8", "weight_bytes": 30_819, "mean_iou": 0.3413},
        {"model": "AJPQ", "weight_bytes": ajpq_bytes, "mean_iou": ajpq_iou},
    ]


def test_the_verdict_meets_the_goal_at_2_5x_and_1_point() -> None:
    assert verdict(rows(12_327, 0.3313)) == (
        "AJPQ meets the goal: 12,327 vs 30,819 weight bytes (2.50x smaller), IoU 0.3313 vs "
        "int8 0.3413 (+1.00 points lost; goal: >= 2.5x smaller than int8 at <= 1 point below it)"
    )


def test_the_verdict_names_each_part_missed_with_its_number() -> None:
    assert verdict(rows(12_328, 0.3400)).startswith(
        "AJPQ MISSES the goal, only 2.50x smaller than int8 (goal: >= 2.5x, <= 12,327 weight "
        "bytes): 12,328 vs 30,819"
    )
    assert verdict(rows(10_000, 0.3300)).startswith(
        "AJPQ MISSES the goal, 1.13 points of IoU below int8 (goal: <= 1): 10,000 vs 30,819"
    )
    assert verdict(rows(20_905, 0.3226)).startswith(
        "AJPQ MISSES the goal, only 1.47x smaller than int8 (goal: >= 2.5x, <= 12,327 weight "
        "bytes) and 1.87 points of IoU below int8 (goal: <= 1): 20,905 vs 30,819"
    )
