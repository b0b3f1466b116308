"""Boards: hardware descriptions read from hw/boards/<id>.toml."""

from ajpq.boards.spec import BoardSpec, get, list_ids

__all__ = ["BoardSpec", "get", "list_ids"]
