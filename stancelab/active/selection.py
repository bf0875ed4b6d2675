"""What to label next: uncertainty, diversity and random selection over a pool of sentences.

``select(strategy, texts, k, proba=..., thresholds=..., labelled_texts=..., seed=...)`` returns
the K chosen sentences in the order to label them (``Pick``: pool index, rank, score,
similarity). Used by ``stancelab label suggest`` (``stancelab.active.assist``) and by the simulated
benchmark ``python -m training.active_learning`` (``stancelab.active.simulation``), so the
benchmark measures exactly what the command does.

Strategies:

* ``uncertainty``: per label, how close the calibrated probability is to that label's decision
  threshold (1 at the threshold, 0 at 0 or 1; the scale is stretched separately below and
  above the threshold, since a rare label's threshold may sit at 0.2); a sentence's score is
  its most uncertain label. The maximum rather than the sum because macro-F1 weighs the rare
  labels as much as the common ones: a sentence on the edge of *denial* should not be
  outranked by one mildly unsure about three labels. Then a diversity penalty (below).
* ``diversity``: no model needed; the score is how typical a sentence is of the pool (mean
  TF-IDF cosine similarity to the others), with the same penalty, so the batch covers the
  pool's main themes instead of its outliers.
* ``random``: a seeded shuffle.

The diversity penalty is greedy and maximal-marginal-relevance style: each next pick
maximises ``score - weight * s``, where ``s`` is its highest TF-IDF cosine similarity to the
sentences already labelled and to the earlier picks, so a batch is not K near-copies.
Ties are broken by a seeded random order: the same inputs and seed give the same batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("uncertainty", "diversity", "random")
DIVERSITY_WEIGHT = 0.5  # similarity 0.9 to a labelled sentence costs 0.45 of score


@dataclass(frozen=True)
class Pick:
    index: int  # position in the pool given to ``select``
    rank: int  # 1 = label first
    score: float | None  # the strategy's own score (uncertainty or typicality); None: random
    similarity: float | None  # highest cosine similarity to labelled / earlier picks


def label_uncertainty(proba: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """(n, L) closeness of each probability to its label's threshold: 1 at it, 0 at 0 or 1."""
    p = np.asarray(proba, dtype=float)
    t = np.broadcast_to(
        np.asarray(0.5 if thresholds is None else thresholds, dtype=float), p.shape[-1:]
    )
    t = np.clip(t, 1e-6, 1 - 1e-6)
    distance = np.where(p < t, (t - p) / t, (p - t) / (1 - t))
    return 1.0 - np.clip(distance, 0.0, 1.0)


def uncertainty(proba: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """(n,) a sentence's uncertainty: that of its most uncertain label."""
    return label_uncertainty(proba, thresholds).max(axis=1)


def tfidf_vectors(texts: Sequence[str]):
    """L2-normalised word 1-2-gram TF-IDF rows (a dot product is a cosine similarity)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        lowercase=True, sublinear_tf=True, ngram_range=(1, 2), token_pattern=r"(?u)\b\w[\w’']*\b"
    )
    return vectorizer.fit_transform(list(texts))


def typicality(vectors) -> np.ndarray:
    """Mean cosine similarity of each row to the other rows, scaled so the highest is 1."""
    n = vectors.shape[0]
    if n < 2:
        return np.ones(n)
    itself = np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel()  # 1, or 0 if empty
    total = np.asarray(vectors @ vectors.sum(axis=0).T).ravel() - itself
    mean = total / (n - 1)
    top = mean.max()
    return mean / top if top > 0 else np.zeros(n)


def greedy_diverse(
    scores: np.ndarray,
    vectors,
    k: int,
    *,
    labelled=None,
    weight: float = DIVERSITY_WEIGHT,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """Pick k rows maximising ``score - weight * (max similarity to labelled and picked)``."""
    n = len(scores)
    tiebreak = np.random.default_rng(seed).permutation(n)
    if labelled is not None and labelled.shape[0] > 0:
        nearest = np.asarray((vectors @ labelled.T).max(axis=1).todense()).ravel()
    else:
        nearest = np.zeros(n)
    available = np.ones(n, dtype=bool)
    picks = []
    for _ in range(min(k, n)):
        value = np.where(available, scores - weight * nearest, -np.inf)
        best = np.flatnonzero(value >= value.max() - 1e-12)
        i = int(best[np.argmin(tiebreak[best])])
        picks.append((i, float(nearest[i])))
        available[i] = False
        nearest = np.maximum(nearest, np.asarray((vectors @ vectors[i].T).todense()).ravel())
    return picks


def select(
    strategy: str,
    texts: Sequence[str],
    k: int,
    *,
    proba: np.ndarray | None = None,
    thresholds: Sequence[float] | None = None,
    labelled_texts: Sequence[str] = (),
    seed: int = 0,
    weight: float = DIVERSITY_WEIGHT,
) -> list[Pick]:
    """The k sentences of ``texts`` to label next, best first (fewer if the pool is smaller).

    ``proba`` (n, L) calibrated probabilities and the model's ``thresholds`` are needed for
    ``uncertainty``; ``labelled_texts`` are sentences already labelled, which the diversity
    penalty keeps the picks away from.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if k < 1:
        raise ValueError("k must be at least 1")
    n = len(texts)
    if n == 0:
        return []
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(n)[:k]
        return [Pick(int(i), r, None, None) for r, i in enumerate(order, start=1)]
    vectors = tfidf_vectors([*texts, *labelled_texts])
    pool, labelled = vectors[:n], vectors[n:]
    if strategy == "uncertainty":
        if proba is None:
            raise ValueError("the uncertainty strategy needs the model's probabilities")
        proba = np.asarray(proba, dtype=float)
        if proba.ndim != 2 or len(proba) != n:
            raise ValueError(f"proba must have one row per text ({n}), got shape {proba.shape}")
        scores = uncertainty(proba, thresholds)
    else:
        scores = typicality(pool)
    chosen = greedy_diverse(scores, pool, k, labelled=labelled, weight=weight, seed=seed)
    return [Pick(i, r, float(scores[i]), similarity) for r, (i, similarity) in enumerate(chosen, 1)]
