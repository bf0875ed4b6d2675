"""Calibration and decision thresholds, shared by both models.

Both are fitted on out-of-fold scores of the training data only (never on data that is
scored later), and saved with the model as plain JSON.

* ``PlattCalibrator``: one logistic map ``p = sigmoid(a * s + b)`` per label on a raw score
  ``s`` (a decision value or a logit).
* ``tune_thresholds``: per label, the probability cut that maximises F1 out of fold.
* ``crossfit_heldout`` / ``calibration_report``: figures on the part calibration was fitted
  on, with each row calibrated and thresholded by a map fitted on the other rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stancelab.data.folds import first_rows, multilabel_kfold_by_key
from stancelab.evaluation.metrics import expected_calibration_error, label_f1
from stancelab.labels import LABELS

DEFAULT_THRESHOLD = 0.5


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass
class PlattCalibrator:
    """Per-label Platt scaling of raw scores; fit() before transform()."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    def fit(self, scores: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        from sklearn.linear_model import LogisticRegression

        scores, y = np.asarray(scores, float), np.asarray(y, int)
        self.a, self.b = [], []
        for j in range(scores.shape[1]):
            if y[:, j].min() == y[:, j].max():  # one class only: keep the raw sigmoid
                self.a.append(1.0)
                self.b.append(0.0)
                continue
            # C=1 regularises the slope, so a perfectly separated fold still gives finite values.
            lr = LogisticRegression(C=1.0)
            lr.fit(scores[:, [j]], y[:, j])
            slope = float(lr.coef_[0, 0])
            if slope <= 0:  # out-of-fold scores carry no signal: never invert the ranking
                self.a.append(1.0)
                self.b.append(0.0)
                continue
            self.a.append(slope)
            self.b.append(float(lr.intercept_[0]))
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        if not self.a:
            raise RuntimeError("PlattCalibrator is not fitted")
        scores = np.asarray(scores, float)
        return sigmoid(scores * np.asarray(self.a) + np.asarray(self.b))

    def to_dict(self) -> dict:
        return {"method": "platt", "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict, labels: int = len(LABELS)) -> PlattCalibrator:
        """A calibrator as ``to_dict`` saved it; ValueError unless ``a`` and ``b`` each hold
        ``labels`` finite numbers (a NaN would be every text's score, a short list a
        broadcast error at predict time)."""
        if not isinstance(data, dict) or data.get("method") != "platt":
            raise ValueError(f"not a Platt calibration: {data!r}")
        for key in ("a", "b"):
            values = data[key]
            if not (
                isinstance(values, list)
                and len(values) == labels
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)
                and all(math.isfinite(x) for x in values)
            ):
                raise ValueError(
                    f"calibration {key!r} must hold {labels} finite numbers, one per label, "
                    f"got {values!r}"
                )
        return cls(a=[float(x) for x in data["a"]], b=[float(x) for x in data["b"]])


def tune_thresholds(
    y: np.ndarray,
    proba: np.ndarray,
    grid: np.ndarray | None = None,
    min_positives: int = 3,
    weights: np.ndarray | None = None,
    keys=None,
) -> list[float]:
    """Per-label threshold maximising F1 on (out-of-fold) probabilities.

    Labels with fewer than ``min_positives`` positives keep 0.5: a threshold tuned on one or
    two examples is noise. Rows of one of ``keys`` (copies of one sentence,
    ``data.corpus_repeat``) count as one positive. Ties go to the threshold closest to 0.5.
    ``weights`` (one per row and label) weigh each row's counts in the F1 of that label.
    """
    y, proba = np.asarray(y, int), np.asarray(proba, float)
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2) if grid is None else np.asarray(grid)
    once = first_rows(keys) if keys is not None else np.arange(len(y))
    out = []
    for j in range(y.shape[1]):
        if y[once, j].sum() < min_positives:
            out.append(DEFAULT_THRESHOLD)
            continue
        w = None if weights is None else np.asarray(weights, float)[None, :, j]
        best, best_f1 = DEFAULT_THRESHOLD, -1.0
        for t in sorted(grid, key=lambda t: abs(t - 0.5)):
            pred = proba[:, j] >= t
            f1 = float(label_f1(y[:, [j]], pred[:, None], w).ravel()[0])
            if f1 > best_f1 + 1e-12:
                best, best_f1 = float(t), f1
        out.append(best)
    return out


def reliability_table(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Per-bin mean confidence, observed frequency and count, for the reliability diagram."""
    y = np.asarray(y, float).ravel()
    p = np.asarray(proba, float).ravel()
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = bins == b
        rows.append(
            {
                "bin_low": b / n_bins,
                "bin_high": (b + 1) / n_bins,
                "count": int(mask.sum()),
                "mean_confidence": float(p[mask].mean()) if mask.any() else None,
                "observed_frequency": float(y[mask].mean()) if mask.any() else None,
            }
        )
    return rows


def crossfit_heldout(
    y: np.ndarray, logits: np.ndarray, seed: int, folds: int = 5, keys=None
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (probabilities, labels) with calibration and thresholds fitted on other rows.

    The shipped calibration and thresholds are fitted on the whole held-out part, so figures
    computed on that part with them would be fitted to themselves. Here each fold of the
    held-out part is calibrated and thresholded by a map fitted on the other folds; rows of
    one of ``keys`` (copies of one sentence) are in one fold.
    """
    proba = np.zeros(logits.shape)
    pred = np.zeros(logits.shape, dtype=int)
    for fit_rows, apply_rows in multilabel_kfold_by_key(y, folds, seed, keys):
        calibrator = PlattCalibrator().fit(logits[fit_rows], y[fit_rows])
        fit_keys = None if keys is None else [keys[i] for i in fit_rows]
        cut = tune_thresholds(y[fit_rows], calibrator.transform(logits[fit_rows]), keys=fit_keys)
        cut = np.asarray(cut)
        proba[apply_rows] = calibrator.transform(logits[apply_rows])
        pred[apply_rows] = proba[apply_rows] >= cut
    return proba, pred


def calibration_report(y: np.ndarray, logits: np.ndarray, crossfit: np.ndarray) -> dict:
    """ECE of the held-out part before and after Platt scaling (after: cross-fitted)."""
    return {
        "method": "platt (per label, on logits)",
        "fitted_on": "held-out validation part of the training data",
        "n": int(len(y)),
        "ece_before": expected_calibration_error(y, sigmoid(logits)),
        "ece_after": expected_calibration_error(y, crossfit),
    }
