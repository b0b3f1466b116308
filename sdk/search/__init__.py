"""AJPQ search: hierarchical (layer sparsity, channel bit-width) RL search within a budget."""

from ajpq.search.ajpq import search
from ajpq.search.budget import Budget, BudgetInfeasible, SearchConfig
from ajpq.search.candidates import Candidate, SearchResult

__all__ = ["Budget", "BudgetInfeasible", "Candidate", "SearchConfig", "SearchResult", "search"]
