"""Likely label errors (``stancelab label review``): cleanlab's multi-label method on out-of-fold
probabilities, ranked with two models confirming each other first. The Label Studio push of
the ranking is tested in test_active.py against the real server."""

from __future__ import annotations

import numpy as np
import pytest

from stancelab.active.label_errors import Source, find_suspects
from stancelab.labels import LABELS


def test_sentences_both_models_flag_rank_first():
    y = np.zeros((30, 4), dtype=int)
    y[:6, 0], y[6:12, 2], y[12:15, 1], y[15:20, 3] = 1, 1, 1, 1
    clean = np.where(y == 1, 0.8, 0.1)
    a, b = clean.copy(), clean.copy()
    a[3, 0], b[3, 0] = 0.05, 0.08  # gold threat; both models confidently say no
    a[25, 2], b[25, 2] = 0.95, 0.5  # gold no; only model a is confident of accusation
    a[12, 1], b[12, 1] = 0.01, 0.3  # gold yes on a rare label; only a is confident of no
    a[20, 3] = b[20, 3] = 0.55  # gold no; below what a true denial gets (0.8): not flagged
    suspects = find_suspects(y, [Source("a", a, a > 0.5), Source("b", b, b > 0.5)])
    assert [(s.index, s.votes) for s in suspects] == [(3, 2), (12, 1), (25, 1)]
    top = suspects[0].labels[0]
    assert top["label"] == "threat" and top["gold"] is True and top["flagged_by"] == ["a", "b"]
    assert top["opposite"] == pytest.approx(0.935)  # mean P(no) of the two models
    assert top["proba"] == {"a": 0.05, "b": 0.08}
    assert all(0 < s.score <= 1 for s in suspects)


def _noisy(seed: int = 0, n: int = 300, flips: int = 12):
    """A multi-label set with some gold labels flipped, and a decent model's probabilities."""
    rng = np.random.default_rng(seed)
    true = (rng.random((n, len(LABELS))) < [0.2, 0.08, 0.25, 0.08]).astype(int)
    proba = np.clip(np.where(true == 1, 0.75, 0.12) + rng.normal(0, 0.08, true.shape), 0, 1)
    gold = true.copy()
    rows = rng.choice(n, flips, replace=False)
    gold[rows, rng.integers(0, len(LABELS), flips)] ^= 1
    return gold, proba, set(rows.tolist())


def test_one_source_ranks_exactly_as_cleanlab_and_flags_only_flipped_labels():
    from cleanlab.multilabel_classification.filter import find_label_issues

    gold, proba, flipped = _noisy()
    suspects = find_suspects(gold, [Source("m", proba, proba > 0.5)])
    given = [np.flatnonzero(row).tolist() for row in gold]
    expected = find_label_issues(  # n_jobs=1: a forked pool can deadlock beside torch threads
        given, proba, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    assert [s.index for s in suspects] == expected.tolist()
    found = {s.index for s in suspects}
    assert found <= flipped and len(found) >= 2 * len(flipped) // 3  # here 8 of the 12


def test_a_label_gold_never_uses_is_never_flagged():
    gold, proba, _ = _noisy(seed=1)
    gold[:, 3] = 0  # no sentence has denial
    suspects = find_suspects(gold, [Source("m", proba, proba > 0.5)])
    assert suspects and all(item["label"] != "denial" for s in suspects for item in s.labels)


def test_no_source_is_an_error():
    with pytest.raises(ValueError, match="no out-of-fold predictions"):
        find_suspects(np.zeros((3, 4)), [])
