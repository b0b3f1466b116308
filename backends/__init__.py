"""Backends, registered explicitly by name. Each provides ``compile(hw, board, out_dir)``."""

from types import ModuleType

from ajpq.errors import AjpqError

BACKEND_NAMES = ("mcu", "finn")


def get(name: str) -> ModuleType:
    """The backend module called ``name``."""
    if name == "mcu":
        from ajpq.backends import mcu

        return mcu
    if name == "finn":
        from ajpq.backends import finn

        return finn
    raise AjpqError(f"unknown backend '{name}'; available: {', '.join(BACKEND_NAMES)}")
