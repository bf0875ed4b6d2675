"""Every script in benchmarks/ still imports against the library: README quotes their figures
with the command that reruns them, so a helper that moved must not leave a script that no
longer starts, nor one that fails after an hour of fits (imports inside functions, such as
``main``'s). Only imported here, and the names of the imports inside functions looked up (no
``main`` is run, no model is fit)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))  # some import a sibling (label_prior)
    sys.modules.pop(script.stem, None)
    module = importlib.import_module(script.stem)
    assert callable(module.main)


OURS = ("stancelab", *(p.stem for p in SCRIPTS))  # the library and the sibling scripts


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_imports_inside_functions_resolve(script, monkeypatch):
    # Importing the module runs only its top-level imports; these are every one of ours.
    monkeypatch.syspath_prepend(str(script.parent))
    missing = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or (node.module or "").split(".")[0] not in OURS:
            continue
        module = importlib.import_module(node.module)
        for alias in node.names:  # a name in the module, or a submodule of it
            name = f"{node.module}.{alias.name}"
            if not hasattr(module, alias.name) and importlib.util.find_spec(name) is None:
                missing.append(f"{name} (line {node.lineno})")
    assert not missing
