"""Label Studio tasks and pre-annotations built from sentences (pure Python, no server).

A task's data: ``text`` (the sentence), ``id`` (the stable sentence id: the key that makes
pushes idempotent and exports mergeable), ``doc_id``, ``index``, and ``context``: up to
``CONTEXT_SENTENCES`` sentences before and after it in the same document, with the sentence
itself marked » «. A sentence whose row has a ``meta`` object (the record's other fields, as
``stancelab predict --input`` writes them) also gets ``meta``, as given, and ``meta_line``: the
fields on one line, "source: Dawn · date: 2026-10-12", which the interface shows above the
sentence (``meta_line`` says how long and nested values are kept short). A row without it gets
neither key, so its task is the same as before.

A pre-annotation (Label Studio "prediction") carries the chosen labels as one ``choices``
result, the per-label probabilities under the result's ``scores`` key, the ``model_version``,
and an overall ``score``: the probability of the whole predicted label set, treating labels as
independent (the product of p for chosen labels and 1 - p for the others), so Label Studio's
"prediction score" ordering puts the least certain sentences first.
Predictions come from a model directory (``ModelPredictor``) or a JSONL file written by a
predict run (``read_predictions``). Annotations made outside the browser come as JSONL rows
``{"id": sentence id, "labels": [...]}`` (``read_annotation_file``).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stancelab.annotation.interface import (
    CONTEXT_MARK,
    CONTEXT_NAME,
    CONTROL_NAME,
    META_LINE_NAME,
    META_NAME,
    RESULT_TYPE,
    TEXT_NAME,
)
from stancelab.corpus.readers import writable
from stancelab.corpus.text import first_names, preview
from stancelab.errors import InputError
from stancelab.files import iter_jsonl
from stancelab.labels import LABELS, UnknownLabelError, normalize
from stancelab.paths import SENTENCES_PATH

CONTEXT_SENTENCES = 2  # on each side
# The fields line stays one short line whatever the record holds: the full fields are in
# the task's ``meta`` (the Data Manager shows them).
META_KEY_CHARS = 30
META_VALUE_CHARS = 60
META_LINE_CHARS = 160
META_SEPARATOR = " · "
# A task whose meta is larger than this gets a note at push (a record's raw HTML, say, in
# every one of its sentence tasks).
META_NOTE_BYTES = 10_000


@dataclass(frozen=True)
class PreAnnotation:
    labels: tuple[str, ...]
    scores: dict[str, float] | None  # per label, scheme order; None if the source had none
    model_version: str


def _unique_ids(
    path: str | Path,
    bad_id: str,
    duplicate: Callable[[str], str],
    skip: Callable[[dict], str | None] = lambda row: None,
) -> Iterator[tuple[str, str, dict]]:
    """``(where, id, row)`` per JSONL row; an error for a missing, empty or repeated ``id``.
    A row for which ``skip`` gives a reason is passed over first."""
    seen: set[str] = set()
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if skip(row):
            continue
        sid = row.get("id")
        if not isinstance(sid, str) or not sid:
            raise InputError(f"{where}: {bad_id}")
        if sid in seen:
            raise InputError(f"{where}: {duplicate(sid)}")
        seen.add(sid)
        yield where, sid, row


def _not_a_sentence(row: dict) -> str | None:
    """Why a row of a predict output is no sentence to push: an error row (nothing was
    labelled), or a row without an id (its input had none: no key to match a task on)."""
    if row.get("error"):  # as read_predictions: "error": null (a Parquet output's) is none
        return "an error (predict could not label them)"
    if row.get("id") is None and "model_version" in row:
        return "no id (their input records had none; give them an id field to push them)"
    return None


def read_sentences(path: str | Path = SENTENCES_PATH, notes: list[str] | None = None) -> list[dict]:
    """The corpus file (``stancelab corpus``) or a predict output: rows with ``id`` and
    ``text``, unique ids, and a ``meta`` object where the row has a non-empty one, with
    ``readers.writable``'s repairs (NaN as null, broken Unicode spelled out), as predict
    writes it. A predict output's error rows and rows without an id are passed over, and a
    note in ``notes`` counts them."""
    rows = []
    skipped: Counter[str] = Counter()

    def skip(row: dict) -> str | None:
        reason = _not_a_sentence(row)
        skipped[reason] += reason is not None
        return reason

    ids = _unique_ids(
        path,
        "'id' must be a non-empty string",
        lambda sid: f"duplicate sentence id {sid!r}",
        skip,
    )
    for where, sid, row in ids:
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: 'text' must be a non-empty string")
        index = row.get("index", len(rows))
        if not isinstance(index, int) or isinstance(index, bool):
            raise InputError(f"{where}: 'index' must be an integer")
        meta = row.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise InputError(
                f"{where}: 'meta' must be a JSON object of the record's other fields "
                "(as `stancelab predict` writes it)"
            )
        sentence = {"id": sid, "doc_id": str(row.get("doc_id") or ""), "index": index, "text": text}
        if meta:
            sentence["meta"] = writable(meta)  # strict JSON and UTF-8, which the SDK sends
        rows.append(sentence)
    for reason, count in skipped.items():
        if count and notes is not None:
            notes.append(f"skipped {count} row(s) of {path} with {reason}")
    if not rows:
        raise InputError(
            f"{path}: no sentences"
            + (
                f" (skipped: {', '.join(f'{n} with {r}' for r, n in skipped.items())})"
                if skipped
                else "; run `stancelab corpus` first"
            )
        )
    return rows


def contexts(sentences: Sequence[dict], k: int = CONTEXT_SENTENCES) -> dict[str, str]:
    """Sentence id -> its neighbours in the same document (by index), the sentence marked."""
    by_doc: dict[str, list[dict]] = defaultdict(list)
    for s in sentences:
        by_doc[s["doc_id"] or s["id"]].append(s)  # no doc_id: the sentence is its own document
    out = {}
    for doc in by_doc.values():
        doc.sort(key=lambda s: s["index"])
        for i, s in enumerate(doc):
            before = [x["text"] for x in doc[max(0, i - k) : i]]
            after = [x["text"] for x in doc[i + 1 : i + 1 + k]]
            out[s["id"]] = " ".join(
                [*before, f"{CONTEXT_MARK[0]}{s['text']}{CONTEXT_MARK[1]}", *after]
            )
    return out


def meta_line(meta: dict) -> str:
    """The fields on one line for annotators: "source: Dawn · date: 2026-10-12".

    In the record's order; a string as it is, any other value as compact JSON (a list, an
    object, ``true``, ``null``); white space runs and line breaks become one space. A key is cut
    to ``META_KEY_CHARS`` and a value to ``META_VALUE_CHARS`` with "...", and the fields that
    would take the line past ``META_LINE_CHARS`` are left out, counted as "+N more".
    """
    parts: list[str] = []
    for key, value in meta.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{preview(key, META_KEY_CHARS)}: {preview(shown, META_VALUE_CHARS)}")
        if len(META_SEPARATOR.join(parts)) > META_LINE_CHARS:
            break  # the line is full: the fields after these are only counted
    if len(META_SEPARATOR.join(parts)) <= META_LINE_CHARS:
        return META_SEPARATOR.join(parts)
    kept = len(parts)
    while kept > 1:  # fewest fields cut that leave room for "+N more"
        kept -= 1
        line = META_SEPARATOR.join([*parts[:kept], f"+{len(meta) - kept} more"])
        if len(line) <= META_LINE_CHARS:
            return line
    return META_SEPARATOR.join([parts[0], f"+{len(meta) - 1} more"]) if len(meta) > 1 else parts[0]


def meta_notes(
    sentences: Sequence[dict], pushed: dict[str, dict], config: str, source: str | Path
) -> list[str]:
    """Notes for a push of ``sentences`` into a project holding ``pushed`` (sentence id -> task
    data) with the interface ``config``.

    A pushed task's data is never rewritten (its annotations were made on what it showed): it
    keeps the ``meta`` it was pushed with (none, if from a corpus file or an older stancelab),
    and a note counts those whose ``meta`` differs from the file's. An interface from before
    ``meta_line`` (the project made by an older stancelab) does not show the new tasks' meta.
    """
    notes = []
    kept = [
        s["id"]
        for s in sentences
        if s.get("meta") and s["id"] in pushed and pushed[s["id"]].get(META_NAME) != s["meta"]
    ]
    if kept:
        notes.append(
            f"{len(kept)} task(s) already in the project keep the meta they were pushed with, "
            f"which differs from {source}'s (first: sentence {kept[0]}); a pushed task's data "
            "is never rewritten: push into a new project to show the new meta"
        )
    new_meta = any(s.get("meta") and s["id"] not in pushed for s in sentences)
    if new_meta and f"${META_LINE_NAME}" not in config:
        notes.append(
            "the new tasks' meta is in their data, but this project's labelling interface "
            "does not show it; to show it, paste labels/label_config.xml into the project's "
            "Settings > Labeling Interface"
        )
    sizes = [
        (len(json.dumps(s["meta"], ensure_ascii=False).encode()), s["id"])
        for s in sentences
        if s.get("meta") and s["id"] not in pushed
    ]
    large = [(size, sid) for size, sid in sizes if size > META_NOTE_BYTES]
    if large:
        notes.append(
            f"{len(large)} new task(s) carry more than {META_NOTE_BYTES // 1000} kB of meta each "
            f"(first: sentence {large[0][1]}, {large[0][0] / 1000:.0f} kB), in full in the "
            "server's database; `stancelab predict --meta FIELD,...` keeps only the fields "
            "annotators need"
        )
    return notes


def set_score(labels: Sequence[str], scores: dict[str, float] | None) -> float | None:
    if not scores:
        return None
    chosen = set(labels)
    return float(math.prod(p if name in chosen else 1.0 - p for name, p in scores.items()))


def model_versions(preds: dict[str, PreAnnotation]) -> str:
    """The models that made ``preds`` (the pre-annotations pushed), for the summary line of
    ``label push --predictions``: sorted, the first few (``first_names``)."""
    return first_names(sorted({p.model_version for p in preds.values()}))


def prediction_payload(pred: PreAnnotation) -> dict:
    item = {
        "from_name": CONTROL_NAME,
        "to_name": TEXT_NAME,
        "type": RESULT_TYPE,
        "value": {"choices": list(pred.labels)},
    }
    if pred.scores is not None:
        item["scores"] = {name: round(float(p), 6) for name, p in pred.scores.items()}
    payload = {
        "model_version": pred.model_version,
        "result": [item],
        "score": set_score(pred.labels, pred.scores),
    }
    return payload


def build_tasks(
    all_sentences: Sequence[dict],
    selected: Sequence[dict],
    predictions: dict[str, PreAnnotation] | None = None,
) -> list[dict]:
    """Import payloads for ``selected``; context is taken from ``all_sentences``."""
    context = contexts(all_sentences)
    tasks = []
    for s in selected:
        task = {
            "data": {
                TEXT_NAME: s["text"],
                "id": s["id"],
                "doc_id": s["doc_id"],
                "index": s["index"],
                CONTEXT_NAME: context[s["id"]],
            }
        }
        if s.get("meta"):
            task["data"][META_NAME] = s["meta"]
            task["data"][META_LINE_NAME] = meta_line(s["meta"])
        pred = (predictions or {}).get(s["id"])
        if pred is not None:
            task["predictions"] = [prediction_payload(pred)]
        tasks.append(task)
    return tasks


def _scores(raw: object, where: str) -> dict[str, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InputError(f"{where}: 'scores' must be an object of label -> probability")
    unknown = sorted(set(raw) - set(LABELS))
    if unknown:
        raise InputError(f"{where}: unknown label(s) in 'scores': {', '.join(unknown)}")
    out = {}
    for name in LABELS:
        if name in raw:
            p = raw[name]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise InputError(f"{where}: score of {name} must be a number in [0, 1]")
            out[name] = float(p)
    return out


def read_predictions(path: str | Path) -> tuple[dict[str, PreAnnotation], dict[str, int]]:
    """Predictions by sentence id from a predict run's JSONL.

    Rows with an ``error`` and rows without a sentence ``id`` (nothing to match a task on) are
    skipped and counted; returns the predictions and those counts.
    """
    preds: dict[str, PreAnnotation] = {}
    skipped = {"error": 0, "no id": 0}
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if row.get("error"):
            skipped["error"] += 1
            continue
        sid, labels, version = row.get("id"), row.get("labels"), row.get("model_version")
        if sid is None or sid == "":
            skipped["no id"] += 1
            continue
        if not isinstance(sid, str):
            raise InputError(f"{where}: 'id' must be the sentence id (a string)")
        if sid in preds:
            raise InputError(f"{where}: a second prediction for sentence {sid}")
        if not isinstance(labels, list):
            raise InputError(f"{where}: 'labels' must be a list of label names")
        if not isinstance(version, str) or not version:
            raise InputError(f"{where}: 'model_version' must be a non-empty string")
        try:
            chosen = normalize(labels, where=where)
        except UnknownLabelError as exc:
            raise InputError(str(exc)) from None
        preds[sid] = PreAnnotation(chosen, _scores(row.get("scores"), where), version)
    return preds, skipped


def read_annotation_file(path: str | Path) -> list[tuple[str, tuple[str, ...]]]:
    """``{"id": sentence id, "labels": [...]}`` rows, every label validated before any write."""
    rows = []
    ids = _unique_ids(
        path,
        "'id' must be the sentence id (a non-empty string)",
        lambda sid: f"sentence {sid} appears twice",
    )
    for where, sid, row in ids:
        labels = row.get("labels")
        if not isinstance(labels, list):
            raise InputError(f"{where}: 'labels' must be a list of label names ([] = none)")
        try:
            rows.append((sid, normalize(labels, where=where)))
        except UnknownLabelError as exc:
            raise InputError(str(exc)) from None
    if not rows:
        raise InputError(f"{path}: no annotation rows")
    return rows


class ModelPredictor:
    """Pre-annotations from a saved model: one ``predict_proba``, labels from its thresholds."""

    def __init__(self, model_dir: str | Path) -> None:
        from stancelab.models.registry import load_model

        self.model = load_model(model_dir)
        self.model_version = self.model.model_version  # kind plus a fingerprint of the model

    def __call__(self, sentences: Sequence[dict]) -> dict[str, PreAnnotation]:
        texts = [s["text"] for s in sentences]
        proba = self.model.predict_proba(texts)
        chosen = self.model.labels_from_proba(proba)
        return {
            s["id"]: PreAnnotation(
                tuple(labels), dict(zip(LABELS, map(float, row), strict=True)), self.model_version
            )
            for s, labels, row in zip(sentences, chosen, proba, strict=True)
        }
