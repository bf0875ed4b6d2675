"""Likely label errors in the gold set: confident learning on out-of-fold predictions.

Used by ``stancelab label review``. The out-of-fold probabilities come from cross-validating a
configured model on the gold set (``cross_validate``: each sentence scored by a model that
never saw it) or from an evaluation's ``predictions.jsonl`` (``read_oof``: one source per
model, so two models can confirm each other).

Confident learning (Northcutt, Jiang and Chuang, 2021) is applied to each label as a binary
problem. Per source and label, the confident thresholds are the average probability the model
gives the gold side: ``t_yes`` = mean p over sentences whose gold has the label, ``t_no`` = mean
(1 - p) over those without. A gold *yes* is flagged when 1 - p >= t_no (the model is as sure of
*no* as it typically is for a true *no*), a gold *no* when p >= t_yes; when the gold side
passes its own threshold as well, the more probable side wins. Thresholds per label
matter here: a rare label's probabilities are low across the board, and one global cut-off
would flag every rare positive and no negative.

A sentence's suspicion is ranked by: how many sources flag its most suspect label (two models
confidently disagreeing with gold first), then the mean probability of the side opposite gold.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stancelab.data.labelled import LabelledSet, label_matrix, load_augmentation
from stancelab.errors import InputError
from stancelab.files import iter_jsonl, read_json_object
from stancelab.labels import LABELS, normalize


@dataclass(frozen=True)
class Source:
    """Out-of-fold probabilities (n, L) and thresholded labels (n, L) of one model."""

    name: str
    proba: np.ndarray
    pred: np.ndarray


@dataclass
class Suspect:
    index: int  # row of the gold set
    votes: int  # sources flagging the most suspect label
    score: float  # mean probability of the side opposite gold, on that label
    labels: list[dict] = field(default_factory=list)  # every flagged label, most suspect first

    @property
    def key(self) -> tuple[int, float]:
        return (self.votes, self.score)


def confident_thresholds(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label: mean p over gold positives (``t_yes``), mean 1 - p over gold negatives."""
    y = np.asarray(y, dtype=bool)
    proba = np.asarray(proba, dtype=float)
    t_yes = np.full(y.shape[1], np.nan)
    t_no = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        if y[:, j].any():
            t_yes[j] = proba[y[:, j], j].mean()
        if (~y[:, j]).any():
            t_no[j] = (1 - proba[~y[:, j], j]).mean()
    return t_yes, t_no


def flags(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, L) booleans: confidently on the other side of gold; and (n, L) that probability.

    As in confident learning's confident joint: a side counts when its probability reaches
    that side's threshold; when both sides do, the more probable side wins.
    """
    y = np.asarray(y, dtype=bool)
    proba = np.asarray(proba, dtype=float)
    t_yes, t_no = confident_thresholds(y, proba)
    opposite = np.where(y, 1 - proba, proba)
    with np.errstate(invalid="ignore"):  # NaN threshold: a label one side never has; no flag
        other_side = opposite >= np.where(y, t_no, t_yes)
        own_side = (1 - opposite) >= np.where(y, t_yes, t_no)
    return other_side & (~own_side | (opposite > 0.5)), opposite


def find_suspects(y: np.ndarray, sources: list[Source]) -> list[Suspect]:
    """Gold rows flagged by at least one source, most likely mislabelled first."""
    if not sources:
        raise ValueError("no out-of-fold predictions to compare the gold labels with")
    y = np.asarray(y, dtype=bool)
    per = [flags(y, s.proba) for s in sources]
    votes = np.sum([f for f, _ in per], axis=0)  # (n, L)
    opposite = np.mean([o for _, o in per], axis=0)
    suspects = []
    for i in np.flatnonzero(votes.max(axis=1) > 0):
        labels = []
        for j in np.flatnonzero(votes[i] > 0):
            labels.append(
                {
                    "label": LABELS[j],
                    "gold": bool(y[i, j]),
                    "votes": int(votes[i, j]),
                    "flagged_by": [
                        s.name for s, (f, _) in zip(sources, per, strict=True) if f[i, j]
                    ],
                    "opposite": float(opposite[i, j]),
                    "proba": {s.name: float(s.proba[i, j]) for s in sources},
                }
            )
        labels.sort(key=lambda x: (x["votes"], x["opposite"]), reverse=True)
        suspects.append(Suspect(int(i), labels[0]["votes"], labels[0]["opposite"], labels))
    suspects.sort(key=lambda s: (-s.votes, -s.score, s.index))
    return suspects


def cross_validate(config, gold: LabelledSet, folds: int = 5, seed: int = 0, log=print) -> Source:
    """Out-of-fold probabilities of a configured model on the gold set (k-fold, stratified).

    Training folds get the augmentation set when the config asks for it (minus sentences
    repeating a gold sentence); test folds are gold sentences only.
    """
    from stancelab.evaluation.crossval import out_of_fold

    aug = load_augmentation(config.data.augment_dir) if config.data.augment else None
    proba, pred = out_of_fold(config, gold, aug, folds, seed, log)
    return Source(config.name, proba, pred)


def read_oof(path: str | Path, gold: LabelledSet) -> tuple[list[Source], list[str]]:
    """Sources from an evaluation's ``predictions.jsonl`` (k-fold rows; repeats averaged).

    Per model the primary training mix is read from ``metrics.json`` beside the file when
    present, else ``corpus+augment``, else ``corpus``. Returns the sources and notes.
    """
    path = Path(path)
    primary: dict[str, str] = {}
    metrics = path.parent / "metrics.json"
    if metrics.exists():
        models = read_json_object(metrics).get("models", {})
        primary = {n: m.get("primary") for n, m in models.items() if isinstance(m, dict)}
    index = {sid: i for i, sid in enumerate(gold.ids)}
    rows: dict[tuple[str, str], dict[int, list]] = defaultdict(lambda: defaultdict(list))
    stale, other_gold = set(), set()
    for lineno, row in iter_jsonl(path):
        if row.get("scheme") != "kfold":
            continue
        where = f"{path}:{lineno}"
        i = index.get(row.get("id"))
        if i is None:
            stale.add(row.get("id"))
            continue
        scores = row.get("proba")
        if not isinstance(scores, dict) or set(scores) != set(LABELS):
            raise InputError(f"{where}: 'proba' must give a probability for every label")
        if tuple(normalize(row.get("gold", []), where=where)) != gold.labels[i]:
            other_gold.add(gold.ids[i])
        predicted = label_matrix([row.get("predicted", [])])[0]
        rows[(str(row.get("model")), str(row.get("variant")))][i].append(
            ([float(scores[n]) for n in LABELS], predicted)
        )
    if not rows:
        raise InputError(f"{path}: no cross-validation (scheme 'kfold') predictions")
    sources, notes = [], []
    for model in sorted({m for m, _ in rows}):
        variants = {v for m, v in rows if m == model}
        wanted = [primary.get(model), "corpus+augment", "corpus"]
        variant = next((v for v in wanted if v in variants), sorted(variants)[0])
        by_row = rows[(model, variant)]
        covered = sorted(by_row)
        if len(covered) < len(gold):
            notes.append(f"{model}: {len(gold) - len(covered)} gold sentence(s) have no prediction")
        proba = np.full((len(gold), len(LABELS)), np.nan)
        pred = np.zeros((len(gold), len(LABELS)), dtype=int)
        for i in covered:
            proba[i] = np.mean([p for p, _ in by_row[i]], axis=0)
            pred[i] = np.mean([h for _, h in by_row[i]], axis=0) >= 0.5  # majority of repeats
        sources.append(Source(f"{model} ({variant})", proba, pred))
    if stale:
        notes.append(f"{len(stale)} predicted sentence id(s) are no longer in the gold set")
    if other_gold:
        notes.append(
            f"{len(other_gold)} gold sentence(s) changed labels since the evaluation; "
            "the current gold labels are reviewed"
        )
    return sources, notes


def covered(sources: list[Source]) -> np.ndarray:
    """Gold rows every source has a probability for."""
    return np.all([~np.isnan(s.proba).any(axis=1) for s in sources], axis=0)
