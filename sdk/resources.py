"""Where ajpq's data files are: the firmware's C sources and the board descriptions.

pyproject.toml ships the checkout's firmware/ and hw/ as package data (packages
``ajpq.firmware`` and ``ajpq.hw``), so a wheel (``pip install .``) holds them inside the
installed ajpq package, found here through importlib.resources. An editable install
(``pip install -e .``, what ``make setup`` does) runs the checkout's sdk/ in place and leaves
the data where it is, beside sdk/: setuptools' editable finder cannot import a package that
has no ``__init__.py``, so there the checkout is the parent of the ajpq package's folder.
"""

from importlib.resources import files
from pathlib import Path

from ajpq.errors import ToolchainMissing


def data_root() -> Path:
    """The folder that holds firmware/ and hw/: the installed package, or the checkout."""
    package = files("ajpq")
    if not isinstance(package, Path):
        raise ToolchainMissing(
            f"ajpq is installed as {package!r}, not as files on disk; the C build needs its "
            "firmware sources as files, so install it with pip (not as a zip)"
        )
    return package if (package / "firmware").is_dir() else package.parent


FIRMWARE_DIR = data_root() / "firmware"
BOARDS_DIR = data_root() / "hw" / "boards"
