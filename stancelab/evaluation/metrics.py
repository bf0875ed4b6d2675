"""Evaluation figures for multi-label stance predictions, each with its uncertainty.

Used by the evaluation harness (``python -m training.evaluate``); nothing here knows which
model produced the predictions.

Inputs are the gold matrix ``y`` (n, L), and per repeat of the protocol the probabilities
``proba`` and thresholded predictions ``pred``, shape (R, n, L). A figure over repeats is the
mean of the per-repeat figures.

* ``summarize``: per label precision, recall, F1, support and PR-AUC (average precision);
  overall macro-F1, micro-F1, exact-set accuracy, accuracy on sentences with no label and
  expected calibration error; each with a seeded 95% percentile bootstrap interval. With one
  repeat it resamples sentences, or whole groups when given (``groups``: the harness draws
  whole dyads when leaving dyads out, whose figures are for unseen conflicts). With several,
  each resample also draws R repeats with replacement (``repeat_picks``) and averages the
  figures of those on its sentences: a
  figure over repeats estimates the mean over seeds and splits, so how much another repeat
  would move it belongs in its interval (a two-level bootstrap, as the active-learning
  benchmark's over seeds and sentences).
* ``paired_bootstrap``: the difference of one figure between two models scored on the same
  sentences, with its interval and a two-sided p-value (the bootstrap distribution of the
  difference, shifted to zero, against the observed difference). Repeats are drawn the same
  for both models, as repeat r of each shares its folds.
* ``mcnemar``: the exact McNemar test per label (binomial test on the discordant pairs).
* ``repeat_spread``: mean, standard deviation and range of a figure across repeats.

Every resample is expressed as a vector of per-sentence counts (weights), so all figures
are computed for all resamples at once with matrix products instead of Python loops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stancelab.labels import LABELS

OVERALL = ("macro_f1", "micro_f1", "exact_match", "none_accuracy", "ece")
PER_LABEL = ("precision", "recall", "f1", "pr_auc")
N_BOOT = 2000
ECE_BINS = 10


def resample_weights(
    n: int, n_boot: int, seed: int = 0, groups: Sequence | None = None
) -> np.ndarray:
    """(n_boot, n) counts: how often each sentence is drawn in each bootstrap resample.

    With ``groups`` (one key per sentence, such as its dyad), whole groups are drawn with
    replacement and a sentence counts as often as its group was drawn: a cluster bootstrap,
    for figures that claim to hold for unseen groups, whose sentences are not independent.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return _counts(rng.integers(0, n, size=(n_boot, n)), n)
    keys, member = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return _counts(rng.integers(0, len(keys), size=(n_boot, len(keys))), len(keys))[:, member]


def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """(n_boot, n) counts of each index among each row of ``draws``."""
    flat = (draws + n * np.arange(len(draws))[:, None]).ravel()
    return np.bincount(flat, minlength=len(draws) * n).reshape(len(draws), n).astype(float)


def repeat_picks(repeats: int, n_boot: int, seed: int = 1) -> np.ndarray:
    """(n_boot, repeats) indices: the repeats each bootstrap resample draws, with replacement.

    Seeded apart from the sentences' draws (``resample_weights`` with the protocol's seed),
    so one repeat's intervals are those of a bootstrap over sentences alone."""
    return np.random.default_rng(seed).integers(0, repeats, size=(n_boot, repeats))


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _average_precision(y: np.ndarray, scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted average precision of one label for every weight row; NaN without positives.

    Same definition as scikit-learn's ``average_precision_score``: the sum over distinct
    score thresholds of (recall step) x (precision at that threshold).
    """
    order = np.argsort(-scores, kind="stable")
    s, ys = scores[order], y[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last row of each tie group
    wo = w[:, order]
    tp = np.cumsum(wo * ys, axis=1)[:, ends]
    seen = np.cumsum(wo, axis=1)[:, ends]
    positives = tp[:, -1:]
    precision = _ratio(tp, seen)
    recall = _ratio(tp, positives)
    steps = np.diff(np.hstack([np.zeros((len(w), 1)), recall]), axis=1)
    ap = (steps * precision).sum(axis=1)
    return np.where(positives[:, 0] > 0, ap, np.nan)


def label_f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Per-label F1 of ``pred`` (..., n, L) against ``y`` (n, L); per weight row if ``w`` (R, n).

    Returns (..., L), or (R, ..., L) with weights. A label with no positive and no predicted
    positive scores 0.
    """
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    weighted = w is not None
    w = np.atleast_2d(w) if weighted else np.ones((1, y.shape[0]))
    tp = np.einsum("rn,...nl->r...l", w, pred * y)
    fp = np.einsum("rn,...nl->r...l", w, pred * (1 - y))
    fn = np.einsum("rn,...nl->r...l", w, (1 - pred) * y)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return f1 if weighted else f1[0]


def macro_f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 (the mean of ``label_f1`` over labels), with the same shapes."""
    return label_f1(y, pred, w).mean(axis=-1)


def micro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 over every (sentence, label) pair."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    tp, fp, fn = (pred * y).sum(), (pred * (1 - y)).sum(), ((1 - pred) * y).sum()
    return float(_ratio(2 * tp, 2 * tp + fp + fn))


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE over all (sentence, label) probabilities, equal-width bins."""
    y = np.asarray(y, dtype=float)
    proba = np.asarray(proba, dtype=float)
    if y.ndim == 1:
        y, proba = y[:, None], proba[:, None]
    return float(_ece(y, proba, np.ones((1, len(y))), n_bins)[0])


def _ece(y: np.ndarray, proba: np.ndarray, w: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Weighted ECE over all (sentence, label) pairs, for every weight row."""
    bins = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    gap = np.zeros((len(y), n_bins))  # per sentence and bin: sum over labels of (p - y)
    for j in range(y.shape[1]):
        np.add.at(gap, (np.arange(len(y)), bins[:, j]), proba[:, j] - y[:, j])
    total = w.sum(axis=1) * y.shape[1]
    return _ratio(np.abs(w @ gap).sum(axis=1), total, np.nan)


def figures(
    y: np.ndarray,
    proba: np.ndarray,
    pred: np.ndarray,
    w: np.ndarray,
    picks: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every figure for every weight row, averaged over repeats.

    Returns overall figures of shape (W,) and per-label figures of shape (W, L); ``support``
    is the weighted count of positives. ``picks`` (W, R), if given, are the repeats each
    weight row averages (``repeat_picks``; a repeat drawn twice counts twice), else every
    repeat once.
    """
    y = np.asarray(y, dtype=float)
    proba = np.asarray(proba, dtype=float).reshape(-1, *y.shape)
    pred = np.asarray(pred, dtype=float).reshape(-1, *y.shape)
    w = np.atleast_2d(np.asarray(w, dtype=float))
    gold_none = (y.sum(axis=1) == 0).astype(float)
    runs = []
    for p, hat in zip(proba, pred, strict=True):
        tp, fp, fn = w @ (y * hat), w @ ((1 - y) * hat), w @ (y * (1 - hat))
        f1 = label_f1(y, hat, w)
        exact = (hat == y).all(axis=1).astype(float)
        pred_none = (hat.sum(axis=1) == 0).astype(float)
        runs.append(
            {
                "precision": _ratio(tp, tp + fp),
                "recall": _ratio(tp, tp + fn),
                "f1": f1,
                "pr_auc": np.stack(
                    [_average_precision(y[:, j], p[:, j], w) for j in range(y.shape[1])], axis=1
                ),
                "macro_f1": f1.mean(axis=1),
                "micro_f1": _ratio(2 * tp.sum(1), (2 * tp + fp + fn).sum(1)),
                "exact_match": _ratio(w @ exact, w.sum(axis=1), np.nan),
                "none_accuracy": _ratio(w @ (gold_none * pred_none), w @ gold_none, np.nan),
                "ece": _ece(y, p, w),
            }
        )
    if picks is None:
        out = {key: np.mean([r[key] for r in runs], axis=0) for key in runs[0]}
    else:  # row b averages the figures of repeats picks[b] on its own weights w[b]
        rows = np.arange(len(w))[:, None]
        out = {key: np.stack([r[key] for r in runs])[picks, rows].mean(axis=1) for key in runs[0]}
    out["support"] = w @ y
    return out


def _interval(values: np.ndarray) -> list[float | None]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return [None, None]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def summarize(
    y: np.ndarray,
    proba: np.ndarray,
    pred: np.ndarray,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    groups: Sequence | None = None,
    unit: str = "groups",
) -> dict:
    """All figures with 95% bootstrap intervals, as plain JSON-ready data.

    ``groups`` (one key per sentence), when given, are resampled whole instead of sentences
    (``resample_weights``); ``unit`` names them in ``"resampled"`` (``"dyads"``).

    ``{"sentences", "overall": {name: {"value", "ci"}}, "per_label": {label: {name: {"value",
    "ci"}, "support": int}}, "per_repeat": {"macro_f1": [...], "micro_f1": [...]},
    "labels_without_examples": [...]}``. Macro-F1 counts a label with no gold positive among
    these sentences as 0 (``label_f1``), so when there are such labels the summary also holds
    ``"macro_f1_labels_with_examples": {"value", "ci", "labels"}``, the mean F1 over the
    others (value None when no label has an example).
    """
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float).reshape(-1, *y.shape)
    pred = np.asarray(pred).reshape(-1, *y.shape)
    point = figures(y, proba, pred, np.ones((1, len(y))))
    w = resample_weights(len(y), n_boot, seed, groups)
    boot = figures(y, proba, pred, w, _picks(proba, n_boot, seed))
    overall = {k: {"value": _value(point[k][0]), "ci": _interval(boot[k])} for k in OVERALL}
    per_label = {}
    for j, name in enumerate(LABELS):
        row = {
            k: {"value": _value(point[k][0, j]), "ci": _interval(boot[k][:, j])} for k in PER_LABEL
        }
        row["support"] = int(point["support"][0, j])
        per_label[name] = row
    per_repeat = {
        k: [
            float(figures(y, p[None], h[None], np.ones((1, len(y))))[k][0])
            for p, h in zip(proba, pred, strict=True)
        ]
        for k in ("macro_f1", "micro_f1")
    }
    out = {
        "sentences": int(len(y)),
        "repeats": int(len(proba)),
        "n_boot": n_boot,
        "seed": seed,
        "resampled": _resampled(len(proba), None if groups is None else unit),
        "overall": overall,
        "per_label": per_label,
        "per_repeat": per_repeat,
    }
    present = point["support"][0] > 0
    out["labels_without_examples"] = [
        name for name, p in zip(LABELS, present, strict=True) if not p
    ]
    if not present.all():
        # The labels with examples are those of the data, not of each resample: a resample
        # without a positive of one of them scores it 0, as it would score a missed label.
        out["macro_f1_labels_with_examples"] = {
            "value": float(point["f1"][0, present].mean()) if present.any() else None,
            "ci": _interval(boot["f1"][:, present].mean(axis=1)) if present.any() else [None, None],
            "labels": [name for name, p in zip(LABELS, present, strict=True) if p],
        }
    return out


def _picks(proba: np.ndarray, n_boot: int, seed: int) -> np.ndarray | None:
    """The repeats each resample draws; None with one repeat (nothing to draw)."""
    return repeat_picks(len(proba), n_boot, seed + 1) if len(proba) > 1 else None


def _resampled(repeats: int, unit: str | None = None) -> str:
    """What each resample draws: the sentences (or whole ``unit``), and the repeats."""
    drawn = "sentences" if unit is None else f"whole {unit}"
    return f"{drawn} and repeats" if repeats > 1 else drawn


def paired_bootstrap(
    y: np.ndarray,
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    *,
    metric: str = "macro_f1",
    n_boot: int = N_BOOT,
    seed: int = 0,
    groups: Sequence | None = None,
    unit: str = "groups",
) -> dict:
    """Difference a − b of an overall figure on the same sentences, its 95% interval and p-value.

    ``a`` and ``b`` are (proba, pred) pairs, each (R, n, L) or (n, L). The p-value is
    two-sided: the share of resampled differences at least as far from the observed
    difference as the observed difference is from zero (the bootstrap distribution shifted to
    the null), with the usual +1 correction. Both models' repeats are drawn alike (repeat r of
    each was fitted on the same folds); models with different numbers of repeats are drawn
    apart. ``groups`` and ``unit`` as in ``summarize``: both models on the same resamples.
    """
    y = np.asarray(y)
    a, b = (tuple(np.asarray(x).reshape(-1, *y.shape) for x in pair) for pair in (a, b))
    w = resample_weights(len(y), n_boot, seed, groups)
    picks_a = _picks(a[0], n_boot, seed)
    picks_b = picks_a if len(b[0]) == len(a[0]) else _picks(b[0], n_boot, seed + 1)
    ones = np.ones((1, len(y)))
    value_a, value_b = (float(figures(y, *m, ones)[metric][0]) for m in (a, b))
    observed = value_a - value_b
    diffs = figures(y, *a, w, picks_a)[metric] - figures(y, *b, w, picks_b)[metric]
    diffs = diffs[~np.isnan(diffs)]
    extreme = int(np.sum(np.abs(diffs - observed) >= abs(observed) - 1e-12))
    return {
        "metric": metric,
        "a": value_a,  # each model's figure on these sentences
        "b": value_b,
        "difference": observed,
        "ci": _interval(diffs),
        "p_value": float((1 + extreme) / (1 + len(diffs))),
        "n_boot": n_boot,
        # Resamples where the figure is undefined (no gold-none sentence drawn, for
        # none_accuracy) are dropped: p's floor is 1/(1 + this), not 1/(1 + n_boot).
        "resamples": len(diffs),
        "resampled": _resampled(max(len(a[0]), len(b[0])), None if groups is None else unit),
    }


def mcnemar(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, dict]:
    """Exact McNemar test per label on one set of predictions per model.

    ``a_only`` counts sentences where only model a is right on the label, ``b_only`` where
    only b is; the p-value is the two-sided binomial test of ``a_only`` out of the discordant
    pairs at 0.5 (1.0 when there are none). ``p_holm`` adjusts across the labels (Holm).
    """
    from scipy.stats import binomtest

    y, pred_a, pred_b = (np.asarray(x).astype(int) for x in (y, pred_a, pred_b))
    out = {}
    for j, name in enumerate(LABELS):
        right_a, right_b = pred_a[:, j] == y[:, j], pred_b[:, j] == y[:, j]
        a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
        discordant = a_only + b_only
        p = binomtest(a_only, discordant, 0.5).pvalue if discordant else 1.0
        out[name] = {"a_only": a_only, "b_only": b_only, "p_value": float(p)}
    for name, p in zip(out, holm([r["p_value"] for r in out.values()]), strict=True):
        out[name]["p_holm"] = p
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def repeat_spread(values: list[float]) -> dict:
    """Mean, sample standard deviation and range of a figure across repeats."""
    arr = np.asarray(values, dtype=float)
    return {
        "repeats": int(arr.size),
        "values": [float(v) for v in arr],
        "mean": float(arr.mean()) if arr.size else None,
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "min": float(arr.min()) if arr.size else None,
        "max": float(arr.max()) if arr.size else None,
    }
