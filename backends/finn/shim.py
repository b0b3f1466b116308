"""Import finn-plus without Vivado: the one place that knows how.

finn-plus expects to be started by its CLI with Vivado sourced. The estimate-only steps
(qonnx_to_finn … generate_estimate_reports) need neither, once the global settings exist,
``XILINX_VIVADO`` holds some path (read only as a version string), the FINN build dir
exists and the XSI simulator's lazy names are bound (``finn.builder.build_dataflow_steps``
imports ``SimEngine`` at module level).
"""

import importlib
import os
import tempfile
from pathlib import Path
from types import ModuleType

from ajpq.errors import ToolchainMissing

MISSING = "finn-plus is not installed: pip install 'ajpq[fpga]' or make setup"

_ready = False


def available() -> bool:
    """Whether finn-plus can be imported here."""
    try:
        importlib.import_module("finn")
    except ImportError:
        return False
    return True


def load() -> None:
    """Prepare finn-plus for use without Vivado (idempotent); ToolchainMissing if absent."""
    global _ready
    if _ready:
        return
    if not available():
        raise ToolchainMissing(MISSING)
    build_dir = Path(os.environ.get("FINN_BUILD_DIR") or Path(tempfile.gettempdir()) / "ajpq-finn")
    build_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(build_dir)
    os.environ.setdefault("XILINX_VIVADO", "/opt/Xilinx/Vivado/2024.2")

    import finn.xsi
    from finn.util import settings

    settings.initialize_dummy_settings()
    for name in finn.xsi._LAZY_NAMES:
        setattr(finn.xsi, name, None)
    _ready = True


def builder() -> ModuleType:
    """``finn.builder.build_dataflow_steps``, importable once the shim is loaded."""
    load()
    return importlib.import_module("finn.builder.build_dataflow_steps")
