"""AJPQ search: hierarchical (layer sparsity, channel bit-width) RL search within a budget."""

from ajpq.search.ajpq import search
from ajpq.search.baselines import baselines
from ajpq.search.budget import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.candidates import Candidate, SearchResult
from ajpq.search.pareto import pareto_plot, report_table

__all__ = [
    "Budget",
    "BudgetInfeasible",
    "Candidate",
    "SearchConfig",
    "SearchResult",
    "baselines",
    "pareto_plot",
    "report_table",
    "search",
]
