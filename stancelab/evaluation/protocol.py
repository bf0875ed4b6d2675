"""The evaluation protocol's parts: training mixes, protocols, folds and training sets.

``DEFAULT`` is what ``python -m training.evaluate`` and ``python -m training.pipeline`` run:
5-fold x 1 repeat with each config's own training data, 5 fits per config, which keeps the
main job within its time budget. ``FULL`` (``--full``) is 5-fold x 3 repeats, leave one
article out, leave dyads out, the contrast (each config also trained with the augmentation
switched the other way) on both corpus schemes and a five-point curve.

Folds are built once from the corpus gold set; ``training_set`` assembles a training fold and
is the only place augmentation sentences are added, so they can never reach a test fold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stancelab.data.folds import (
    leave_one_group_out,
    repeated_multilabel_kfold,
    stratified_group_kfold,
)
from stancelab.data.labelled import LabelledSet


@dataclass(frozen=True)
class Mix:
    """What a training fold is made of: a share of the corpus fold and of the augmentation set."""

    corpus: float = 1.0
    augment: float = 0.0

    @property
    def label(self) -> str:
        corpus = "corpus" if self.corpus == 1.0 else f"{self.corpus:.0%} corpus"
        if self.augment == 1.0:
            return f"{corpus}+augment"
        return f"{corpus} + {self.augment:.0%} augment" if self.augment else corpus


CORPUS, AUGMENTED = Mix(1.0, 0.0), Mix(1.0, 1.0)


@dataclass(frozen=True)
class Protocol:
    name: str = "default"
    folds: int = 5
    repeats: int = 1
    leave_one_article_out: bool = False
    # Schemes on which each config is also trained with the augmentation switched the other way
    # (--contrast: the k-fold; --full: both corpus schemes).
    contrast: tuple[str, ...] = ()
    # Extra learning-curve training mixes, run on the first k-fold repeat only (--full; none
    # by default, so the main job stays within its time budget: README, "Evaluation").
    curve: tuple[Mix, ...] = ()
    # Folds of the augmentation set's dyads (0 = off): unseen conflicts, authored text.
    leave_dyads_out: int = 0
    n_boot: int = 2000
    seed: int = 0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["curve"] = [m.label for m in self.curve]
        return out


DEFAULT = Protocol()
FULL = Protocol(
    "full",
    repeats=3,
    leave_one_article_out=True,
    contrast=("kfold", "logo"),
    leave_dyads_out=5,
    curve=(Mix(0.25, 0.0), Mix(0.5, 0.0), Mix(1.0, 0.1), Mix(1.0, 0.25), Mix(1.0, 0.5)),
)


@dataclass(frozen=True)
class Fold:
    scheme: str  # "kfold" or "logo"
    repeat: int
    name: str  # "r0f2" or the held-out doc_id
    train: np.ndarray
    test: np.ndarray


def build_folds(corpus: LabelledSet, protocol: Protocol) -> list[Fold]:
    """The folds every config is evaluated on: k-fold repeats, then one fold per article."""
    folds = [
        Fold("kfold", r, f"r{r}f{i}", train, test)
        for r, i, train, test in repeated_multilabel_kfold(
            corpus.y, protocol.folds, protocol.repeats, protocol.seed
        )
    ]
    docs = corpus.doc_ids
    if protocol.leave_one_article_out and all(docs) and len(set(docs)) > 1:
        folds += [
            Fold("logo", 0, doc, train, test) for doc, train, test in leave_one_group_out(docs)
        ]
    return folds


def build_dyad_folds(aug: LabelledSet, protocol: Protocol) -> list[Fold]:
    """Leave dyads out: each fold tests the authored sentences of conflicts never trained on."""
    return [
        Fold("dyads", 0, f"dyads{i}", np.sort(train), np.sort(test))
        for i, (train, test) in enumerate(
            stratified_group_kfold(aug.y, aug.dyads, protocol.leave_dyads_out, protocol.seed)
        )
    ]


def folds_fingerprint(corpus: LabelledSet, folds: Sequence[Fold]) -> str:
    """SHA-256 of every fold's test ids: equal fingerprints mean identical folds."""
    rows = [[f.scheme, f.repeat, f.name, [corpus.ids[i] for i in f.test]] for f in folds]
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


def _stratified_share(y: np.ndarray, index: np.ndarray, share: float, seed: int) -> np.ndarray:
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y_strat = np.hstack([y, (y.sum(axis=1) == 0)[:, None].astype(y.dtype)])
    split = MultilabelStratifiedShuffleSplit(
        n_splits=1, train_size=share, test_size=1 - share, random_state=seed
    )
    keep, _ = next(split.split(np.zeros(len(y)), y_strat))
    return index[np.sort(keep)]


def training_set(
    corpus: LabelledSet,
    aug: LabelledSet | None,
    fold: Fold,
    mix: Mix,
    seed: int,
) -> LabelledSet:
    """The training fold for one mix; augmentation rows only ever join this side.

    ``aug`` is already shuffled: a share of it is a prefix, so shares are nested.
    """
    index = fold.train
    if mix.corpus < 1.0:
        index = _stratified_share(corpus.y[index], index, mix.corpus, seed)
    train = corpus.subset(index)
    if mix.augment > 0 and aug is not None:
        train = train.concat(aug.subset(range(round(mix.augment * len(aug)))))
    test_ids = {corpus.ids[i] for i in fold.test}
    if test_ids & set(train.ids):  # a bug, not a user error: never let it pass silently
        raise RuntimeError(f"fold {fold.name}: test sentences found in the training data")
    return train
