"""Model-assisted annotation: ``stancelab label suggest`` and ``stancelab label review``.

``suggest`` scores the sentences of a sentences file that are neither in the gold set nor
annotated (or skipped) in the project, chooses K with ``stancelab.active.selection.select``
(uncertainty
with a diversity penalty by default) and pushes them, best first, with the model's
pre-annotations. ``review`` ranks the gold sentences most likely mislabelled
(``stancelab.active.label_errors``) and pushes them to a review project with the gold labels, each
model's out-of-fold labels and probabilities, and why the sentence was flagged; each model's
out-of-fold labels are also its pre-annotation. The pushing itself is
``stancelab.annotation.ranked``.

A reviewer who corrects a label there and pulls the review project
(``stancelab label pull --project <project>-review``) changes gold by the usual rules of
``stancelab.annotation.gold``: the newest export covering a sentence supplies its votes, and an
annotator
whose email starts with ``adjudicator`` decides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stancelab.annotation.client import api_errors, connect, project_for, project_lock
from stancelab.annotation.credentials import Credentials
from stancelab.annotation.interface import CONTEXT_MARK, label_config
from stancelab.annotation.ranked import (
    RANKED_DESCRIPTION,
    REVIEW_KEYS,
    REVIEW_VIEW,
    SUGGEST_KEYS,
    SUGGEST_VIEW,
    RankedReport,
    annotated,
    existing_tasks,
    push_ranked,
    review_config,
)
from stancelab.annotation.tasks import (
    ModelPredictor,
    PreAnnotation,
    build_tasks,
    contexts,
    meta_notes,
    prediction_payload,
    read_sentences,
)
from stancelab.data.labelled import LabelledSet, load_labelled
from stancelab.errors import InputError
from stancelab.labels import LABELS, display, from_vector


@dataclass
class SuggestResult:
    push: RankedReport
    strategy: str
    candidates: int
    in_gold: int
    already_annotated: int
    model_version: str | None
    chosen: list[dict] = field(default_factory=list)  # rank, id, score, text

    def lines(self) -> list[str]:
        r = self.push
        out = [
            f"{self.candidates} candidate sentence(s): not in gold ({self.in_gold} are) and not "
            f"annotated or skipped in the project ({self.already_annotated} are)",
            r.summary(f"ranked by {self.strategy}", "earlier suggestion(s) no longer ranked"),
        ]
        if not self.candidates:
            out.append(
                "nothing left to suggest: every sentence of the file is in gold or annotated; "
                "add documents with `stancelab corpus` (or pass --sentences FILE)"
            )
        if self.model_version:
            out.append(
                f"pre-annotations ({self.model_version}): {r.predictions_with_new_tasks} with "
                f"new tasks, {r.predictions_added} added to existing tasks"
            )
        return out + r.footer(SUGGEST_VIEW, self.chosen)


def check_gold(gold_path: str | Path | None) -> None:
    """InputError when a gold set is given (``None``: there is none yet) but is not there:
    a typo would go on as if there were no gold set and suggest sentences already labelled.
    ``suggest`` checks it, and the command before it loads the model."""
    if gold_path is not None and not Path(gold_path).is_file():
        raise InputError(
            f"{gold_path}: no such file (--gold); leave it out while there is no gold set"
        )


def suggest(
    creds: Credentials,
    project: str,
    sentences_path: str | Path,
    *,
    predictor: ModelPredictor | None,
    k: int,
    strategy: str,
    gold_path: str | Path | None,
    seed: int = 0,
) -> SuggestResult:
    """Choose the K sentences to label next and push them in that order (idempotent).
    ``gold_path`` None: no gold set yet; a path given must be there (``check_gold``)."""
    from stancelab.active.selection import select

    if k < 1:
        raise InputError("--k must be at least 1")
    if strategy == "uncertainty" and predictor is None:
        raise InputError("--strategy uncertainty needs a model (--model DIR)")
    check_gold(gold_path)
    skipped: list[str] = []  # a predict output's error rows and rows without an id
    sentences = read_sentences(sentences_path, skipped)
    gold = load_labelled(gold_path) if gold_path is not None else None
    gold_ids = set(gold.ids) if gold else set()
    with api_errors(creds, "suggesting tasks"), project_lock(creds, project):
        ls = connect(creds)
        proj, created = project_for(ls, project, label_config(), RANKED_DESCRIPTION)
        present = existing_tasks(ls, proj.id)
        done = {sid for sid, tasks in present.items() if any(annotated(t) for t in tasks)}
        candidates = [s for s in sentences if s["id"] not in gold_ids and s["id"] not in done]
        preds = predictor(candidates) if predictor is not None and candidates else {}
        proba = None
        if preds:
            proba = np.array([[preds[s["id"]].scores[n] for n in LABELS] for s in candidates])
        labelled = (gold.texts if gold else []) + [
            present[sid][0].data["text"] for sid in sorted(done) if present[sid][0].data.get("text")
        ]
        picks = []
        if candidates:
            picks = select(
                strategy,
                [s["text"] for s in candidates],
                k,
                proba=proba,
                thresholds=predictor.model.thresholds_ if predictor is not None else None,
                labelled_texts=labelled,
                seed=seed,
            )
        chosen = [candidates[p.index] for p in picks]
        payloads = build_tasks(sentences, chosen, preds)
        for payload, pick in zip(payloads, picks, strict=True):
            payload["data"].update(rank=pick.rank, strategy=strategy)
            if pick.score is not None:
                payload["data"]["priority_score"] = round(pick.score, 4)
        report = push_ranked(
            ls, proj, created, payloads, "rank", SUGGEST_KEYS, SUGGEST_VIEW, present
        )
    report.notes[:0] = skipped
    pushed = {sid: tasks[0].data or {} for sid, tasks in present.items()}
    report.notes += meta_notes(chosen, pushed, proj.label_config, sentences_path)
    if proj.label_config.strip() != label_config().strip():
        report.notes.append(
            "the project's labelling interface differs from labels/label_config.xml"
        )
    return SuggestResult(
        report,
        strategy,
        len(candidates),
        sum(1 for s in sentences if s["id"] in gold_ids),
        sum(1 for s in sentences if s["id"] in done and s["id"] not in gold_ids),
        predictor.model_version if predictor is not None else None,
        [
            {"rank": p.rank, "id": s["id"], "score": p.score, "text": s["text"]}
            for p, s in zip(picks, chosen, strict=True)
        ],
    )


@dataclass
class ReviewResult:
    push: RankedReport
    sources: list[str]
    scored: int  # gold sentences every source has a prediction for
    flagged: int
    shown: list[dict] = field(default_factory=list)  # rank, id, suspect, votes, score

    def lines(self) -> list[str]:
        r = self.push
        return [
            f"out-of-fold predictions from {', '.join(self.sources)} on {self.scored} gold "
            f"sentence(s): {self.flagged} flagged as likely mislabelled",
            r.summary("ranked", "task(s) no longer flagged")
            + f", {r.skipped_annotated} already reviewed",
            *r.footer(REVIEW_VIEW, self.shown),
        ]


def _version(source, gold: LabelledSet) -> str:
    """``oof-<model>-<digest>``: a new prediction set gets a new version, never an overwrite."""
    digest = hashlib.sha256()
    digest.update("\n".join(gold.ids).encode("utf-8"))
    digest.update(np.round(np.nan_to_num(source.proba), 4).tobytes())
    slug = "".join(c if c.isalnum() else "-" for c in source.name).strip("-")
    slug = "-".join(part for part in slug.split("-") if part)
    return f"oof-{slug}-{digest.hexdigest()[:8]}"


def _why(item: dict, n_sources: int) -> str:
    side = "yes" if item["gold"] else "no"
    other = "no" if item["gold"] else "yes"
    return (
        f"{item['label']}: gold {side}, models say {other} "
        f"(P({other}) {item['opposite']:.2f}; {item['votes']} of {n_sources} model(s) confident)"
    )


def review(
    creds: Credentials,
    review_project: str,
    gold: LabelledSet,
    sources: list,
    *,
    k: int,
    sentences_path: str | Path | None = None,
) -> ReviewResult:
    """Push the K gold sentences most likely mislabelled, ranked, to ``review_project``."""
    from stancelab.active.label_errors import covered, find_suspects

    if k < 1:
        raise InputError("--k must be at least 1")
    rows = np.flatnonzero(covered(sources))
    if rows.size == 0:
        raise InputError("no gold sentence has an out-of-fold prediction from every model")
    subset = [type(s)(s.name, s.proba[rows], s.pred[rows]) for s in sources]
    suspects = find_suspects(gold.y[rows], subset)
    top = suspects[:k]
    known = (
        read_sentences(sentences_path) if sentences_path and Path(sentences_path).exists() else []
    )
    context, index = contexts(known), {s["id"]: s["index"] for s in known}
    versions = [_version(s, gold) for s in sources]
    payloads, shown = [], []
    for rank, suspect in enumerate(top, start=1):
        i = int(rows[suspect.index])
        sid, text = gold.ids[i], gold.texts[i]
        predicted = "; ".join(f"{s.name}: {display(from_vector(s.pred[i]))}" for s in sources)
        why = "; ".join(_why(item, len(sources)) for item in suspect.labels)
        probabilities = "\n".join(
            f"{s.name}: "
            + ", ".join(f"{n} {p:.2f}" for n, p in zip(LABELS, s.proba[i], strict=True))
            for s in sources
        )
        data = {
            "text": text,
            "id": sid,
            "doc_id": gold.doc_ids[i],
            "index": index.get(sid, 0),
            "context": context.get(sid, f"{CONTEXT_MARK[0]}{text}{CONTEXT_MARK[1]}"),
            "review_rank": rank,
            "error_score": round(suspect.score, 4),
            "flagged_by": suspect.votes,
            "gold": display(gold.labels[i]),
            "predicted": predicted,
            "suspect": why,
            "review": f"Gold: {display(gold.labels[i])}\nPredicted (out-of-fold): {predicted}\n"
            f"Why flagged: {why}\nProbabilities: {probabilities}",
        }
        predictions = [
            prediction_payload(
                PreAnnotation(
                    from_vector(s.pred[i]),
                    dict(zip(LABELS, map(float, s.proba[i]), strict=True)),
                    version,
                )
            )
            for s, version in zip(sources, versions, strict=True)
        ]
        payloads.append({"data": data, "predictions": predictions})
        more = f" (+{len(suspect.labels) - 1} more)" if len(suspect.labels) > 1 else ""
        brief = _why(suspect.labels[0], len(sources)) + more
        shown.append({"rank": rank, "id": sid, "suspect": brief, "text": text})
    with api_errors(creds, "pushing review tasks"), project_lock(creds, review_project):
        ls = connect(creds)
        proj, created = project_for(ls, review_project, review_config(), RANKED_DESCRIPTION)
        report = push_ranked(ls, proj, created, payloads, "review_rank", REVIEW_KEYS, REVIEW_VIEW)
    return ReviewResult(report, [s.name for s in sources], int(rows.size), len(suspects), shown)


def load_sources(
    gold: LabelledSet,
    *,
    predictions: str | Path | None = None,
    config_path: str | Path | None = None,
    folds: int = 5,
    seed: int = 0,
    log=print,
) -> tuple[list, list[str]]:
    """Out-of-fold sources: read from an evaluation's predictions, or by cross-validation."""
    from stancelab.active.label_errors import cross_validate, read_oof

    if predictions is not None:
        return read_oof(predictions, gold)
    from stancelab.config import load_config

    config = load_config(config_path)
    notes: list[str] = []  # augmentation sentences left out of training, as a training run's
    return [cross_validate(config, gold, folds=folds, seed=seed, log=log, notes=notes)], notes
