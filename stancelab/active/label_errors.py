"""Likely label errors in the gold set: cleanlab's multi-label method on out-of-fold predictions.

Used by ``stancelab label review``. The out-of-fold probabilities come from cross-validating a
configured model on the gold set (``cross_validate``: each sentence scored by a model that
never saw it) or from an evaluation's ``predictions.jsonl`` (``read_oof``: one source per
model, so two models can confirm each other).

The scoring is cleanlab's (``cleanlab.multilabel_classification``), per source:
``find_multilabel_issues_per_class`` flags the (sentence, label) pairs whose gold side is
likely wrong (confident learning, one-vs-rest per label, so a rare label gets its own
thresholds), and ``get_label_quality_scores`` scores each sentence's whole label set (0 to 1,
low = likely wrong). A sentence is a suspect when a source flags any of its labels. Suspects
are ranked by how many sources flag their most suspect label (two models confidently
disagreeing with gold first), then by 1 - the label quality score averaged over sources; with
one source this is cleanlab's own ranking of its label issues (``find_label_issues`` with
``return_indices_ranked_by="self_confidence"``).

cleanlab is imported only when ``find_suspects`` runs.
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
    score: float  # 1 - cleanlab's label quality score of the sentence (mean over sources)
    labels: list[dict] = field(default_factory=list)  # every flagged label, most suspect first


def _cleanlab():
    try:
        import cleanlab.multilabel_classification.filter as cl_filter
        import cleanlab.multilabel_classification.rank as cl_rank
    except ImportError:
        raise InputError(
            "finding label errors needs cleanlab, a stancelab dependency: pip install -e ."
        ) from None
    return cl_filter, cl_rank


def find_suspects(y: np.ndarray, sources: list[Source]) -> list[Suspect]:
    """Gold rows cleanlab flags in at least one source, most likely mislabelled first."""
    if not sources:
        raise ValueError("no out-of-fold predictions to compare the gold labels with")
    cl_filter, cl_rank = _cleanlab()
    y = np.asarray(y, dtype=bool)
    given = [np.flatnonzero(row).tolist() for row in y]  # cleanlab's multi-label format
    flagged = np.array(
        # n_jobs=1: cleanlab forks workers by default, and a fork of a process running torch's
        # threads can deadlock.
        [cl_filter.find_multilabel_issues_per_class(given, s.proba, n_jobs=1) for s in sources]
    )  # (sources, n, L)
    # Per label, cleanlab's self-confidence: the probability of the gold side.
    gold_side = np.mean(
        [cl_rank.get_label_quality_scores_per_class(given, s.proba) for s in sources], axis=0
    )
    quality = np.mean([cl_rank.get_label_quality_scores(given, s.proba) for s in sources], axis=0)
    votes = flagged.sum(axis=0)  # (n, L)
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
                        s.name for s, f in zip(sources, flagged, strict=True) if f[i, j]
                    ],
                    "opposite": float(1 - gold_side[i, j]),
                    "proba": {s.name: float(s.proba[i, j]) for s in sources},
                }
            )
        labels.sort(key=lambda x: (x["votes"], x["opposite"]), reverse=True)
        suspects.append(Suspect(int(i), labels[0]["votes"], float(1 - quality[i]), labels))
    suspects.sort(key=lambda s: (-s.votes, -s.score, s.index))
    return suspects


def cross_validate(
    config,
    gold: LabelledSet,
    folds: int = 5,
    seed: int = 0,
    log=print,
    notes: list[str] | None = None,
) -> Source:
    """Out-of-fold probabilities of a configured model on the gold set (k-fold, stratified).

    Training folds get the augmentation set when the config asks for it (minus sentences
    repeating a gold sentence, counted in a note in ``notes``); test folds are gold
    sentences only.
    """
    from stancelab.evaluation.crossval import out_of_fold

    aug = load_augmentation(config.data.augment_dir) if config.data.augment else None
    proba, pred = out_of_fold(config, gold, aug, folds, seed, log, notes)
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
