"""The package's layers (DESIGN.md): no import runs back up, and siblings do not lean on each other.

    cli/, runner, loggers          the loop and the entry points, on top
    train/                         training the synthetic backbone (may use method/ and data/)
    method/   eval/                the paper's stages | metrics, results, reports (knows no method)
    data/     models/              datasets | networks
    errors, sample, seeding, ...   the vocabulary every layer uses

Every import of every module counts, those inside functions and under ``TYPE_CHECKING`` too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "amodal"

LAYER = {  # the first name after ``amodal.`` → its layer
    **dict.fromkeys(["__init__", "errors", "sample", "seeding", "morphology", "config", "memory", "lock"],
                    "vocabulary"),
    "data": "data",
    "models": "models",
    "method": "method",
    "eval": "eval",
    "train": "train",
    **dict.fromkeys(["runner", "loggers", "cli"], "top"),
}
MAY_IMPORT = {
    "vocabulary": {"vocabulary"},
    "data": {"vocabulary", "data"},
    "models": {"vocabulary", "models"},
    "method": {"vocabulary", "data", "models", "method"},
    "eval": {"vocabulary", "data", "eval"},
    "train": {"vocabulary", "data", "models", "method", "train"},
    "top": {"vocabulary", "data", "models", "method", "eval", "train", "top"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def amodal_imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for each import of an ``amodal`` module in ``source``, wherever it stands; relative
    imports are resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "amodal":  # from amodal import method: the name is the module
                found += [(node.lineno, f"amodal.{a.name}" if a.name in LAYER else name) for a in node.names]
            else:
                found += [(node.lineno, name)]
    return [(line, name) for line, name in found if name == "amodal" or name.startswith("amodal.")]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return LAYER.get(parts[1] if len(parts) > 1 else "__init__")


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in MODULES if layer_of(module_name(p)) is None]
    assert not unplaced, f"put {', '.join(unplaced)} in a layer: LAYER in tests/test_layers.py"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_back_up(path):
    module = module_name(path)
    layer = layer_of(module)
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for line, name in amodal_imports(path.read_text(), module, path.name == "__init__.py")
        if layer_of(name) not in MAY_IMPORT[layer]
    ]
    assert not wrong, "\n".join([*wrong, f"({layer} may import {', '.join(sorted(MAY_IMPORT[layer]))})"])


def test_imports_are_found_inside_functions_and_relative_ones_resolved():
    source = """import os
from . import metrics
def f():
    from ..method.area import HullArea
    import amodal.cli.run
    from amodal import method, __version__
"""
    assert amodal_imports(source, "amodal.eval.report") == [
        (2, "amodal.eval"), (4, "amodal.method.area"), (5, "amodal.cli.run"), (6, "amodal.method"), (6, "amodal"),
    ]
    assert layer_of("amodal.method.area") == "method" and "method" not in MAY_IMPORT["eval"]
