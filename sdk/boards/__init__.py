"""Boards: hardware descriptions read from hw/boards/<id>.toml."""

from ajpq.boards.measurement import Measurement
from ajpq.boards.spec import BoardSpec, InvalidBoard, get, list_boards, list_ids

__all__ = [
    "Board", "BoardSpec", "InvalidBoard", "Measurement", "get", "list", "list_boards", "list_ids",
]  # fmt: skip


def __getattr__(name: str) -> object:  # Board pulls in pyserial: import it when asked for
    if name == "Board":
        from ajpq.boards.board import Board

        return Board
    raise AttributeError(name)


def list() -> list[str]:  # noqa: A001 - the documented API name: ajpq.boards.list()
    """The ids of every board in hw/boards."""
    return list_ids()
