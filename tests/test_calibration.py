"""Calibration and thresholds shared by both models."""

from __future__ import annotations

import numpy as np

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
    again = PlattCalibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.transform(scores), cal.transform(scores))


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
