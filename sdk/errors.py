"""Every error ajpq raises on bad input: one sentence a user can act on.

The CLI prints these without a traceback and exits with status 2.
"""


class AjpqError(Exception):
    """Base class of every error ajpq raises for bad input or a missing resource."""


class UnsupportedOp(AjpqError):
    """A model or graph uses an operation or attribute that a stage cannot handle."""


class InvalidGraph(AjpqError):
    """A HwGraph file or object is malformed."""


class InvalidPolicy(AjpqError):
    """A Policy does not fit its model or holds an illegal bit-width."""


class InvalidData(AjpqError):
    """A dataset folder or file is missing or malformed."""


class ToolchainMissing(AjpqError):
    """A compiler, emulator or package a stage needs is not installed."""


class BudgetExceeded(AjpqError):
    """A model does not fit a board's flash or RAM (or an FPGA's resources)."""


def one_line(text: str, limit: int = 200) -> str:
    """text on one line of at most ``limit`` characters, to quote a library's error (zipfile,
    json, numpy) inside an AjpqError's sentence."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
