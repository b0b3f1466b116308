"""The finn backend's analytical cost model against finn-plus's own estimate reports.

Skynet-0.25 64x128 (untrained), ultra96-v2, 3000 fps: the model is calibrated on two
policies' finn-plus compiles and checked on a third it has not seen. Three compiles are
shared at module scope; the tests of the estimate alone need no finn-plus."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import ajpq
from ajpq.backends import Backend, Cost, get
from ajpq.boards import Measurement
from ajpq.graph.hwgraph import HwGraph
from tests.backend.tools import need_finn

BOARD, FPS = "ultra96-v2", 3000.0
POLICIES = {  # sparsity, bits of the kept channels (importance quantiles), activation bits
    "mixed": (0.3, [4, 3, 2], 4),
    "sparse": (0.5, 4, 4),
    "held_out": (0.4, [4, 2], 4),
}


def _graph(kind: str) -> HwGraph:
    torch.manual_seed(0)
    model = ajpq.models.skynet(width_mult=0.25, input_size=(64, 128))
    sparsity, bits, act_bits = POLICIES[kind]
    policy = ajpq.Policy.from_sparsity(model, sparsity, bits, act_bits=act_bits)
    return ajpq.lower(ajpq.quantize(model, policy))


@pytest.fixture(scope="module")
def measured(request, tmp_path_factory):  # noqa: ANN001, ANN201
    need_finn(request)
    finn = get("finn")
    result = {}
    for kind in POLICIES:
        graph = _graph(kind)
        out = tmp_path_factory.mktemp(kind)
        result[kind] = (graph, finn.measure(graph, BOARD, out, None, fps=FPS))
    return result


def _shape_only(graph: HwGraph) -> HwGraph:
    """What the search costs: the same nodes, zero arrays (bit-widths kept), no act_min."""
    nodes = [
        dataclasses.replace(
            node,
            attrs={k: v for k, v in node.attrs.items() if k not in ("act_min", "act_max")},
            arrays={
                k: v if k == "weight_bits" else np.zeros_like(v) for k, v in node.arrays.items()
            },
        )
        for node in graph.nodes
    ]
    return graph.replace(nodes)


def _error(estimate: float, reference: float) -> float:
    return abs(estimate / reference - 1)


def test_finn_is_a_backend() -> None:  # needs no finn-plus
    finn = get("finn")
    assert isinstance(finn, Backend)
    assert (finn.name, finn.board_kind) == ("finn", "fpga")
    assert finn.calibrate([]) == {"scale": {}, "offset": {}}


def test_measure_is_finn_plus_estimate(measured) -> None:  # noqa: ANN001
    graph, measurement = measured["mixed"]
    assert isinstance(measurement, Measurement)
    assert (measurement.unit, measurement.timer_source, measurement.output) == (
        "cycles",
        "estimate",
        None,
    )
    slowest = max(node["cycles"] for node in measurement.per_layer)
    assert measurement.count == slowest
    assert measurement.fps == pytest.approx(1e9 / (5.0 * slowest))
    totals = {k: sum(n[k] for n in measurement.per_layer) for k in ("LUT", "BRAM_18K", "DSP")}
    assert totals == {k: measurement.resources[k] for k in totals}
    assert measurement.fps >= FPS


def test_every_finn_node_pairs_with_a_model_layer(measured) -> None:  # noqa: ANN001
    finn = get("finn")
    for graph, measurement in measured.values():
        rows = finn.evidence(graph, measurement)
        json.dumps(rows)  # JSON-able
        assert len(rows) == len(measurement.per_layer)
        assert all(row["model"]["cycles"] == row["finn"]["cycles"] for row in rows)


def test_calibrated_estimate_within_ten_percent_on_held_out_policy(measured) -> None:  # noqa: ANN001
    finn = get("finn")
    rows = [row for kind in ("mixed", "sparse") for row in finn.evidence(*measured[kind])]
    calibration = finn.calibrate(rows)
    json.dumps(calibration)
    graph, reference = measured["held_out"]
    raw = finn.estimate(graph, BOARD, fps=FPS)
    cost = finn.estimate(graph, BOARD, calibration=calibration, fps=FPS)
    print(
        f"\nheld-out at {FPS:.0f} fps: finn-plus {reference.fps:.0f} fps, "
        f"LUT {reference.resources['LUT']:.0f}; model {raw.fps:.0f} fps, LUT "
        f"{raw.resources['LUT']:.0f} raw, {cost.resources['LUT']:.0f} calibrated"
    )
    assert cost.fps == pytest.approx(reference.fps)  # same folding, same cycle formulas
    assert cost.count == reference.count
    assert _error(cost.resources["LUT"], reference.resources["LUT"]) < 0.10
    assert _error(cost.resources["LUT"], reference.resources["LUT"]) <= _error(
        raw.resources["LUT"], reference.resources["LUT"]
    )
    assert cost.resources["DSP"] == reference.resources["DSP"]
    assert cost.fits


def test_estimate_needs_no_weights_and_no_act_min() -> None:
    finn = get("finn")
    graph = _graph("mixed")
    shape_only = _shape_only(graph)
    cost = finn.estimate(shape_only, BOARD, fps=FPS)
    assert isinstance(cost, Cost)
    assert cost == finn.estimate(graph, BOARD, fps=FPS)
    assert (cost.unit, cost.count, round(cost.fps)) == ("cycles", 65_536, 3052)
    assert finn.stored_weight_bytes(shape_only) == finn.stored_weight_bytes(graph) == 8128
    limits = {"LUT": 0.85 * 70_560, "BRAM_18K": 0.85 * 432, "DSP": 0.85 * 360}
    assert cost.limits == pytest.approx(limits)


def test_unfolded_estimate_is_every_pe_simd_one() -> None:
    cost = get("finn").estimate(_graph("mixed"), BOARD)
    folds = [
        v for layer in cost.per_layer.values() for k, v in layer.items() if k in ("PE", "SIMD")
    ]
    assert set(folds) == {1}
    assert round(cost.fps) == 259  # bottleneck: bundle5.pw, 90 x 67 MACs x 128 pixels
    assert cost.count == 90 * 67 * 128


def test_load_artifact_reads_back_the_build_dir(measured) -> None:  # noqa: ANN001
    finn = get("finn")
    _, measurement = measured["sparse"]
    loaded = finn.load_artifact(measurement.info["build_dir"])
    assert (loaded.cost.fps, loaded.cost.resources) == (measurement.fps, measurement.resources)
    assert [n["name"] for n in measurement.per_layer] == list(loaded.cost.per_layer)
    assert finn.describe(loaded).startswith(f"FINN build dir {loaded.out_dir} (")
    assert finn.calibration_key().startswith("finn-plus-1.6.1-")
