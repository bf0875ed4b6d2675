"""``benchmarks/label_prior.py``: its pieces on a real baseline fit of the tiny set (seconds;
its full run fits transformers and is not run here)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from conftest import TINY

from stancelab.config import BaselineParams
from stancelab.models.baseline import BaselineModel
from stancelab.models.calibration import tune_thresholds

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def label_prior(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("label_prior", None)
    return importlib.import_module("label_prior")


def test_heldout_rows_of_a_baseline_are_the_rows_it_tuned_its_thresholds_on(label_prior):
    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [labels for _, labels in TINY])
    y, proba = label_prior.heldout_rows(model, None, None)[:2]  # the baseline needs neither
    assert y.shape == proba.shape == (len(TINY), 4)
    assert tune_thresholds(y, proba) == list(model.thresholds_)
