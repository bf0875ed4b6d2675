"""``benchmarks/label_prior.py``: its pieces, on a real baseline fit of the tiny set (seconds)
or on fake fits; its full run fits transformers and is not run here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
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


def test_the_prior_rule_counts_copies_of_a_sentence_once_as_the_tuned_rule_does(label_prior):
    # One sentence of the first label held out three times (data.corpus_repeat): as one
    # positive, too few to tune on; as three, a threshold tuned on that sentence alone.
    y = np.zeros((9, 4), dtype=int)
    y[:3, 0] = 1
    y[3:, 1:] = np.eye(3, dtype=int)[np.arange(6) % 3]
    proba = np.where(y == 1, 0.3, 0.1)
    keys = ["copied"] * 3 + [f"s{i}" for i in range(6)]
    tuned = tune_thresholds(y, proba, keys=keys)
    assert tuned[0] == 0.5
    # At the held-out rows' own label shares every weight is 1: the rules must then agree.
    assert label_prior.reweighted_thresholds(y, proba, y.mean(axis=0), keys) == tuned


def _dyads_fit(model: str) -> dict:
    y = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]]
    return {
        "scheme": "dyads",
        "fold": "d1",
        "model": model,
        "test_dyads": ["A–B", "A–B", "C–D", "C–D", "E–F", "E–F"],
        "y": y,
        "proba": y,
        "tuned": [0.5] * 4,
        "prior": [0.5] * 4,
    }


def test_the_dyads_scheme_is_bootstrapped_over_whole_dyads(label_prior):
    # Its figures claim to hold for unseen conflicts: resampling its sentences one by one
    # treats the sentences of one conflict as independent and narrows the interval.
    summary = label_prior.summarise(
        [_dyads_fit("baseline"), _dyads_fit("mpnet")], ["baseline", "mpnet"]
    )
    tests = [summary["dyads"][m]["prior_minus_tuned"] for m in ("baseline", "mpnet")]
    tests += [summary["dyads"][f"mpnet_minus_baseline_{r}"] for r in ("tuned", "prior")]
    assert [t["resampled"] for t in tests] == ["whole dyads"] * 4
