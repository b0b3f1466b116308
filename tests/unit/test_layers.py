"""The imports point one way (README, "The flow, in order"): every module of ``ajpq`` imports only
from its own layer or the layers below it, the SDK reaches a backend through the registry
(``ajpq.backends``) alone, and no module imports another module's private names."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. graph.requant is the integer arithmetic that QAT and the HwGraph share, so it
# sits below quant while the rest of graph (lowering a QAT model) sits above it.
LAYERS = (
    ("errors",),
    ("metrics", "resources", "boards", "data", "models"),
    ("tasks",),
    ("graph.requant",),
    ("quant",),
    ("graph",),
    ("train", "backends"),
    ("deploy", "search"),
    ("__init__",),
    ("demo", "demo_finn", "demo_report", "cli", "cli_farm", "cli_model", "cli_user"),
)


def module_name(path: Path) -> str:
    """``sdk/search/ajpq.py`` -> ``ajpq.search.ajpq``; ``backends/mcu/x.py`` ->
    ``ajpq.backends.mcu.x``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = "ajpq" if parts[0] == "sdk" else "ajpq.backends"
    return ".".join(parts).removesuffix(".__init__") or "ajpq"


def layer(module: str) -> int:
    """The index in LAYERS of the longest unit that ``module`` is or lies in."""
    inner = module.removeprefix("ajpq").removeprefix(".") or "__init__"
    units = [(unit, i) for i, units in enumerate(LAYERS) for unit in units]
    found = [(len(u), i) for u, i in units if inner == u or inner.startswith(u + ".")]
    if not found:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return max(found)[1]


def is_module(name: str) -> bool:
    """Whether ``name`` (``ajpq.x.y``) is a module or package of this tree."""
    parts = name.split(".")[1:]
    if parts[:1] == ["backends"]:
        folder, parts = ROOT / "backends", parts[1:]
    else:
        folder = ROOT / "sdk"
    path = folder.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(source: str) -> list[tuple[str, list[str]]]:
    """Every ``ajpq`` module the source imports, with the names it takes from it (``from
    ajpq import boards`` imports the module ``ajpq.boards``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "ajpq"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "ajpq":
                continue
            names = [a.name for a in node.names]
            modules = [f"{node.module}.{n}" for n in names if is_module(f"{node.module}.{n}")]
            found += [(m, []) for m in modules]
            if len(modules) < len(names):
                found.append(
                    (node.module, [n for n in names if f"{node.module}.{n}" not in modules])
                )
    return found


def violations(module: str, source: str) -> list[str]:
    """What in ``source`` (the text of ``module``) breaks the rules, one line each."""
    found = []
    for target, names in imports(source):
        if layer(target) > layer(module):
            found.append(f"{module} imports {target}, a layer above it")
        inside = target.startswith("ajpq.backends.")
        if inside and not module.startswith("ajpq.backends"):
            found.append(f"{module} imports {target}: use the registry, ajpq.backends")
        private = [n for n in names if n.startswith("_")]
        if private:
            found.append(f"{module} imports private {', '.join(private)} from {target}")
    return found


def sources() -> list[Path]:
    return sorted([*(ROOT / "sdk").rglob("*.py"), *(ROOT / "backends").rglob("*.py")])


def test_the_imports_point_down() -> None:
    assert len(sources()) > 100  # else the walk found nothing to check
    found = [line for p in sources() for line in violations(module_name(p), p.read_text())]
    assert found == []


@pytest.mark.parametrize(
    "module, source, message",
    [
        ("ajpq.quant.qat", "from ajpq.cli import app", "a layer above it"),
        ("ajpq.search.cost", "import ajpq.backends.mcu.emit", "use the registry"),
        ("ajpq.graph.lower", "from ajpq.quant.quantize import _key", "private _key"),
        ("ajpq.quant.qat", "from ajpq.graph.lower import lower", "a layer above it"),
        ("ajpq.boards.qemu", "from ajpq import search", "a layer above it"),
    ],
)
def test_a_wrong_import_is_named(module: str, source: str, message: str) -> None:
    assert [message in line for line in violations(module, source)] == [True]


def test_the_layers_allow_what_they_say() -> None:
    assert violations("ajpq.quant.qat", "from ajpq.graph.requant import rescale") == []
    assert violations("ajpq.search.cost", "from ajpq.backends import get") == []
    assert violations("ajpq.cli", "import ajpq") == []
    assert violations("ajpq.backends.finn", "from ajpq import boards") == []
