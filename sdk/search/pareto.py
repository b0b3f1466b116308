"""How a search compares with its baselines: a Pareto plot (accuracy vs weight bytes and vs
latency), a table and a JSON dump."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.table import Table

from ajpq.search.candidates import Candidate


def latency_of(candidate: Candidate) -> tuple[float, bool]:
    """(seconds, measured?): the board measurement where there is one, else the estimate."""
    if candidate.measured_latency is not None:
        return candidate.measured_latency, True
    return candidate.estimated_latency, False


def pareto_front(
    candidates: Sequence[Candidate], cost: Callable[[Candidate], float]
) -> list[Candidate]:
    """The candidates no other beats on both accuracy (higher) and ``cost`` (lower), by cost."""
    ordered = sorted(candidates, key=lambda c: (cost(c), -c.accuracy))
    front: list[Candidate] = []
    for candidate in ordered:
        if not front or candidate.accuracy > front[-1].accuracy:
            front.append(candidate)
    return front


def label(candidate: Candidate) -> str:
    return candidate.name or f"episode {candidate.episode}"


def pareto_plot(
    candidates: Sequence[Candidate],
    baselines: Sequence[Candidate],
    path: str | Path,
    metric: str = "mean IoU",
) -> Path:
    """Two panels, accuracy vs weight bytes and vs latency (filled markers measured on the
    board, hollow ones estimated); the search's Pareto front drawn as a line, baselines
    labelled (an infeasible one crossed out). Writes a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4.5))
    panels = (
        ("weight bytes", lambda c: float(c.weight_bytes)),
        ("latency (s)", lambda c: latency_of(c)[0]),
    )
    for axis, (title, cost) in zip(axes, panels, strict=True):
        for measured in (False, True):
            chosen = [c for c in candidates if (c.measured_latency is not None) == measured]
            if not chosen:
                continue
            axis.scatter(
                [cost(c) for c in chosen],
                [c.accuracy for c in chosen],
                s=18,
                facecolors="tab:blue" if measured else "none",
                edgecolors="tab:blue",
                label=f"search ({'measured' if measured else 'estimated'} latency)",
            )
        front = pareto_front(candidates, cost)
        if front:
            axis.plot(
                [cost(c) for c in front],
                [c.accuracy for c in front],
                "-o",
                color="tab:red",
                label="search Pareto front",
            )
        for baseline in baselines:
            marker = "s" if baseline.feasible else "x"
            axis.scatter([cost(baseline)], [baseline.accuracy], marker=marker, color="tab:green")
            text = label(baseline) + ("" if baseline.feasible else " (over budget)")
            axis.annotate(text, (cost(baseline), baseline.accuracy), fontsize=7)
        axis.set_xlabel(title)
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    pyplot.close(figure)
    return out


def budget_share(candidate: Candidate) -> str:
    """The candidate's largest share of a limited resource and which one ("-": none limited)."""
    if not candidate.budget_use:
        return "-"
    resource, share = max(candidate.budget_use.items(), key=lambda item: item[1])
    return f"{100 * share:.0f}% {resource}"


def report_table(
    candidates: Sequence[Candidate], baselines: Sequence[Candidate], metric: str = "mean IoU"
) -> Table:
    """One row per baseline, then per search candidate (best accuracy first); ``metric`` is
    the task's metric name (``SearchResult.metric``)."""
    table = Table(title="search vs baselines")
    columns = ("name", metric, "weight B", "stored B", "BOPs", "latency", "budget", "fits")
    for column in columns:
        table.add_column(column, justify="left" if column == "name" else "right")
    ranked = sorted(candidates, key=lambda c: -c.accuracy)
    for candidate in [*baselines, *ranked]:
        seconds, measured = latency_of(candidate)
        table.add_row(
            label(candidate),
            f"{candidate.accuracy:.4f}",
            f"{candidate.weight_bytes:,}",
            "-" if candidate.stored_bytes is None else f"{candidate.stored_bytes:,}",
            f"{candidate.bops:,}",
            f"{seconds * 1e3:.3f} ms {'(measured)' if measured else '(est.)'}",
            budget_share(candidate),
            "yes" if candidate.feasible else "no",
        )
    return table


def dump_json(
    candidates: Sequence[Candidate], baselines: Sequence[Candidate], path: str | Path
) -> Path:
    """``{"baselines": [...], "candidates": [...]}`` with ``Candidate.to_dict`` entries."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        "baselines": [c.to_dict() for c in baselines],
        "candidates": [c.to_dict() for c in candidates],
    }
    out.write_text(json.dumps(raw, indent=1))
    return out
