"""Calibration and thresholds shared by both models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reliability_common import BAD_CALIBRATIONS, edit_calibration

from stancelab.evaluation.metrics import expected_calibration_error
from stancelab.models.calibration import (
    PlattCalibrator,
    reliability_table,
    tune_thresholds,
)


def test_platt_recovers_a_known_logistic_map():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 2)) * 3
    true_p = 1 / (1 + np.exp(-(0.5 * scores - 1.0)))
    y = (rng.random(true_p.shape) < true_p).astype(int)
    cal = PlattCalibrator().fit(scores, y)
    assert np.allclose(cal.a, 0.5, atol=0.08) and np.allclose(cal.b, -1.0, atol=0.15)
    assert expected_calibration_error(y, cal.transform(scores)) < 0.03
    again = PlattCalibrator.from_dict(cal.to_dict(), labels=2)
    np.testing.assert_array_equal(again.transform(scores), cal.transform(scores))


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    from conftest import TINY

    from stancelab.config import BaselineParams
    from stancelab.models.baseline import BaselineModel

    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("run") / "baseline")


@pytest.mark.parametrize("edit,what", BAD_CALIBRATIONS)
def test_a_manifest_with_bad_calibration_does_not_load(baseline_run, tmp_path, edit, what):
    """A NaN loaded and scored every text NaN; a short list failed with a numpy broadcast
    error at predict time. (The transformer's case: test_fastpath.py.)"""
    from reliability_common import one_error_line, stancelab

    from stancelab.errors import ModelLoadError
    from stancelab.models.registry import load_model

    run = edit_calibration(baseline_run, tmp_path / "run", edit)
    with pytest.raises(ModelLoadError, match=f"stancelab.json: bad entry .*{what}"):
        load_model(run)
    ran = stancelab("predict", "--model", str(run), "We will strike back.")
    assert ran.returncode == 1 and what in one_error_line(ran.stderr)
    assert load_model(baseline_run).predict("We will strike back.") is not None


def test_platt_never_inverts_the_ranking():
    scores = np.array([[3.0], [2.0], [-2.0], [-3.0]])
    y = np.array([[0], [0], [1], [1]])  # anti-correlated out-of-fold scores
    cal = PlattCalibrator().fit(scores, y)
    p = cal.transform(scores)[:, 0]
    assert np.all(np.diff(p) <= 0)  # same order as the scores


def test_thresholds_maximise_f1_and_skip_rare_labels():
    y = np.array([[1, 1], [1, 0], [1, 0], [0, 0], [0, 0], [0, 0]])
    proba = np.array([[0.9, 0.9], [0.35, 0.1], [0.4, 0.1], [0.3, 0.1], [0.1, 0.1], [0.2, 0.1]])
    cut = tune_thresholds(y, proba)
    assert 0.30 < cut[0] <= 0.35  # all three positives above, the 0.3 negative below
    assert cut[1] == 0.5  # a single positive: too few to tune


def test_ece_known_values():
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    assert abs(expected_calibration_error(np.array([0, 0]), np.array([0.95, 0.95])) - 0.95) < 1e-9
    table = reliability_table(np.array([1, 0, 1]), np.array([0.05, 0.05, 0.95]))
    assert table[0]["count"] == 2 and table[0]["observed_frequency"] == 0.5


def test_weighted_thresholds_follow_the_weights():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 2)) < 0.3).astype(int)
    proba = 1 / (1 + np.exp(-(2.0 * (2 * y - 1) + rng.normal(0, 1.5, y.shape))))  # overlapping
    plain = tune_thresholds(y, proba)
    assert tune_thresholds(y, proba, weights=np.ones(y.shape)) == plain
    # Negatives weighing ten times as much (labels ten times rarer): false alarms cost more,
    # so every cut rises.
    heavy = tune_thresholds(y, proba, weights=np.where(y == 1, 1.0, 10.0))
    assert all(h > p for h, p in zip(heavy, plain, strict=True))
