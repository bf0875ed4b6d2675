"""Fold construction for multi-label data: iterative stratification, seeded.

Used for the models' inner cross-validation (thresholds, calibration, grid search) and by
the evaluation harness, so every fold in the project is built the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def multilabel_kfold(
    y: np.ndarray, n_splits: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (train, test) index arrays of an iteratively stratified k-fold split.

    ``n_splits`` is lowered to the number of rows when the data are tinier than that.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    y = np.asarray(y)
    n_splits = max(2, min(n_splits, len(y)))
    splitter = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    # A column of all zeros breaks nothing, but an all-zero row needs a stand-in column so
    # that "none" sentences are spread evenly too.
    y_strat = np.hstack([y, (y.sum(axis=1) == 0).astype(y.dtype)[:, None]])
    yield from splitter.split(np.zeros(len(y)), y_strat)


def repeated_multilabel_kfold(
    y: np.ndarray, n_splits: int, n_repeats: int, seed: int = 0
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield (repeat, fold, train, test) for ``n_repeats`` differently seeded k-fold splits."""
    for repeat in range(n_repeats):
        for fold, (train, test) in enumerate(multilabel_kfold(y, n_splits, seed=seed + repeat)):
            yield repeat, fold, train, test


def leave_one_group_out(groups: list[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (group, train, test): each group (e.g. an article) held out in turn."""
    groups_arr = np.asarray(groups)
    for group in sorted(set(groups)):
        test = np.flatnonzero(groups_arr == group)
        train = np.flatnonzero(groups_arr != group)
        yield group, train, test


def stratified_group_kfold(
    y: np.ndarray, groups: list[str], n_splits: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (train, test) with whole groups (articles, dyads) on one side only.

    Folds are balanced on each row's rarest label (or "none"), a single-label stand-in for
    the label set that scikit-learn's ``StratifiedGroupKFold`` can use.
    """
    import warnings

    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    y = np.asarray(y)
    rarity = np.argsort(y.sum(axis=0), kind="stable")
    strata = [next((int(j) for j in rarity if row[j]), -1) for row in y]
    n_splits = max(2, min(n_splits, len(set(groups))))
    if np.unique(strata, return_counts=True)[1].max() < n_splits:  # too few rows to stratify
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a rare label in fewer groups than folds is expected
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        yield from splitter.split(np.zeros(len(y)), strata, groups=list(groups))


def multilabel_kfold_by_key(
    y: np.ndarray, folds: int, seed: int, keys: Sequence | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``multilabel_kfold`` of the rows, the rows of one key (a text and its copies,
    ``data.corpus_repeat``) always in one fold; without repeated keys the plain split."""
    keys = list(keys) if keys is not None else list(range(len(y)))
    unique = first_rows(keys)
    for _, apply_u in multilabel_kfold(y[unique], folds, seed=seed):
        held = {keys[i] for i in unique[apply_u]}
        apply_rows = np.asarray([i for i, key in enumerate(keys) if key in held], dtype=int)
        yield np.setdiff1d(np.arange(len(y)), apply_rows), apply_rows


def first_rows(keys: Sequence) -> np.ndarray:
    """The row of each key's first appearance, in row order: the rows once, copies aside."""
    first: dict = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    return np.asarray(sorted(first.values()), dtype=int)
