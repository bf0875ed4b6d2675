"""The augmentation set in an evaluation: what may join a training fold, and whether the
configs compared can share folds of its dyads.

``unseen`` keeps a copy of a corpus sentence out of training (it could leak a test sentence):
the same words, with case, quotes, punctuation and look-alike letters set aside, or at least
``NEAR_COPY`` of its distinct words shared with one corpus sentence. ``augmentation_set`` loads
a config's set without such copies, noting how many were left out (``unseen_noted``, which a
training run applies too, ``stancelab.models.fit.training_data``); ``dyads_problem`` and
``different_sets`` say why leave-dyads-out cannot run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stancelab.config import RunConfig
from stancelab.corpus.text import copy_key
from stancelab.data.labelled import LabelledSet, augmentation_files, load_augmentation

NEAR_COPY = 0.8  # share of words (Jaccard) from which a sentence counts as a copy of another


def unseen(aug: LabelledSet, corpus: LabelledSet) -> list[int]:
    """Indices of the augmentation sentences that do not copy a corpus sentence (a copy could
    leak a test sentence into training): not the same words in the same order, and fewer than
    ``NEAR_COPY`` of their distinct words shared with any corpus sentence."""
    same = {copy_key(t) for t in corpus.texts}
    sets = [set(w) for w in same]
    keep = []
    for i, text in enumerate(aug.texts):
        words = copy_key(text)
        mine = set(words)
        if words in same or any(
            len(mine & other) >= NEAR_COPY * len(mine | other)
            for other in sets
            if NEAR_COPY * max(len(mine), len(other)) <= min(len(mine), len(other))
        ):
            continue
        keep.append(i)
    return keep


def augmentation_set(
    config: RunConfig, corpus: LabelledSet, notes: list[str], seed: int
) -> LabelledSet | None:
    """The augmentation set minus any sentence that copies a corpus sentence (it could leak)."""
    directory = Path(config.data.augment_dir)
    if not config.data.augment and not augmentation_files(directory):
        return None
    aug = load_augmentation(directory)
    keep = unseen_noted(aug, corpus, notes, "every training fold")
    return aug.subset(np.random.default_rng(seed).permutation(keep))


def unseen_noted(aug: LabelledSet, corpus: LabelledSet, notes: list[str], where: str) -> list[int]:
    """``unseen(aug, corpus)``, with a note in ``notes`` of how many sentences were left out
    of ``where``: the rule and its wording for the harness's folds and a training run alike."""
    keep = unseen(aug, corpus)
    if len(keep) < len(aug):
        notes.append(
            f"{len(aug) - len(keep)} augmentation sentence(s) copy a corpus sentence (the "
            f"same words, or at least {NEAR_COPY:.0%} of them) and were left out of {where}."
        )
    return keep


def dyads_problem(aug: LabelledSet | None) -> str | None:
    """Why the augmentation set cannot be split into folds of whole dyads, if it cannot."""
    if aug is None:
        return "it needs a config that trains on an augmentation set with dyads"
    missing = [row_id for row_id, dyad in zip(aug.ids, aug.dyads, strict=True) if not dyad]
    if missing:
        return f"{len(missing)} augmentation row(s) have no dyad, the first {missing[0]!r}"
    if len(set(aug.dyads)) < 2:
        return f"it needs at least two dyads, and the augmentation set has {len(set(aug.dyads))}"
    return None


def different_sets(
    configs: list[RunConfig], augs: list[LabelledSet | None], trained_on: list[int]
) -> str | None:
    """The configs and their folders, when the configs that train on augmentation do not all
    train on the same set."""

    def content(aug: LabelledSet) -> tuple:
        order = np.argsort(aug.ids, kind="stable")
        return tuple((aug.ids[i], aug.texts[i], aug.dyads[i], tuple(aug.y[i])) for i in order)

    if len({content(augs[i]) for i in trained_on}) < 2:
        return None
    return ", ".join(
        f"{configs[i].name}: {configs[i].data.augment_dir}, {len(augs[i])} sentences"
        for i in trained_on
    )
