"""Every script in benchmarks/ still imports against the library: README quotes their figures
with the command that reruns them, so a helper that moved must not leave a script that no
longer starts. Only imported here (no ``main``, no model is fit)."""

from __future__ import annotations

import importlib
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
