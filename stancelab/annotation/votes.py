"""Votes: what a Label Studio full-JSON export says about each sentence, and their merge
across exports.

``parse_export`` validates an export strictly (an unknown label, a result from another control
than ``labels``, a malformed annotation or a task without a sentence id is an error that names
the file, the task and the annotation) and reads one vote per annotator and sentence: their
latest annotation by its own time. ``merge`` combines exports the same way across all of them.
``stancelab.annotation.gold`` turns the merged votes into gold labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stancelab.annotation.interface import CONTROL_NAME, RESULT_TYPE, TEXT_NAME
from stancelab.errors import InputError
from stancelab.labels import LABELS

ADJUDICATOR_PREFIX = "adjudicator"  # e.g. adjudicator@team.org, adjudicator.lee@team.org


@dataclass(frozen=True)
class Vote:
    annotator: str  # email when the export carries it, else "user <id>"
    labels: tuple[str, ...]
    annotation_id: int
    updated: str  # ISO time, orders an annotator's annotations
    export: str = ""  # the export file it was read from

    @property
    def adjudicator(self) -> bool:
        return self.annotator.lower().startswith(ADJUDICATOR_PREFIX)

    @property
    def order(self) -> tuple[datetime, int]:
        """Which of an annotator's annotations is the latest: its time, then its id."""
        return (_time(self.updated), self.annotation_id)


_NO_TIME = datetime.min.replace(tzinfo=UTC)  # an annotation without a time: the oldest


def _time(value: str) -> datetime:
    if not value:
        return _NO_TIME
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@dataclass
class AnnotatedSentence:
    id: str
    doc_id: str
    text: str
    export: str  # the export file of the sentence's latest vote
    votes: dict[str, Vote] = field(default_factory=dict)  # annotator -> latest vote
    skipped_by: set[str] = field(default_factory=set)
    annotations: dict[str, set[int]] = field(default_factory=dict)  # annotator -> ids seen

    @property
    def superseded(self) -> int:
        """Older annotations of the same annotator, not counted (each annotation once, in
        however many exports it appears)."""
        return sum(len(ids) - 1 for ids in self.annotations.values())


def _annotator(completed_by: object, where: str) -> str:
    if isinstance(completed_by, dict):
        email, uid = completed_by.get("email"), completed_by.get("id")
        if isinstance(email, str) and email:
            return email
        if isinstance(uid, int):
            return f"user {uid}"
    elif isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return f"user {completed_by}"
    raise InputError(f"{where}: 'completed_by' is missing or malformed")


def _labels_of(result: object, where: str) -> tuple[str, ...]:
    if not isinstance(result, list):
        raise InputError(f"{where}: 'result' must be a list")
    found: list[str] | None = None
    for item in result:
        if not isinstance(item, dict):
            raise InputError(f"{where}: a result item is not an object")
        if item.get("from_name") != CONTROL_NAME:
            raise InputError(
                f"{where}: result from unexpected control from_name="
                f"{item.get('from_name')!r} (expected {CONTROL_NAME!r})"
            )
        if item.get("type") != RESULT_TYPE or item.get("to_name") != TEXT_NAME:
            raise InputError(
                f"{where}: result of type {item.get('type')!r} to "
                f"{item.get('to_name')!r} (expected {RESULT_TYPE!r} to {TEXT_NAME!r})"
            )
        value = item.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise InputError(f"{where}: 'value.choices' must be a list of label names")
        if found is not None:
            raise InputError(f"{where}: more than one result for {CONTROL_NAME!r}")
        unknown = sorted(set(choices) - set(LABELS))
        if unknown:
            raise InputError(
                f"{where}: unknown label(s) {', '.join(map(repr, unknown))}; "
                f"expected any of {', '.join(LABELS)}"
            )
        found = choices
    present = set(found or [])
    return tuple(name for name in LABELS if name in present)


def parse_export(
    data: bytes | str, source: str, shown: str | None = None
) -> dict[str, AnnotatedSentence]:
    """Validate one full-JSON export; sentences by id (several tasks of one id are merged).

    ``source`` is the stored export's name, which the gold rows cite; errors name ``shown``
    when given (the file being imported, which is not stored under that name yet)."""
    shown = shown or source
    try:
        tasks = json.loads(data.decode("utf-8-sig") if isinstance(data, bytes) else data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{shown}: not valid JSON ({exc})") from None
    if not isinstance(tasks, list):
        raise InputError(f"{shown}: expected a list of tasks (Label Studio 'JSON' export)")
    out: dict[str, AnnotatedSentence] = {}
    for n, task in enumerate(tasks):
        tid = task.get("id", f"#{n}") if isinstance(task, dict) else f"#{n}"
        where = f"{shown}: task {tid}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise InputError(f"{where}: not a task object with 'data'")
        data_ = task["data"]
        sid, text = data_.get("id"), data_.get(TEXT_NAME)
        if not isinstance(sid, str) or not sid:
            raise InputError(
                f"{where}: no sentence id in data.id (was it imported by `stancelab label push`?)"
            )
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where} (sentence {sid}): no text in data.{TEXT_NAME}")
        if "annotations" not in task:
            raise InputError(
                f"{where}: no 'annotations' list; export the project as full "
                "'JSON' (JSON_MIN drops skipped tasks and reshapes labels)"
            )
        if not isinstance(task["annotations"], list):
            raise InputError(f"{where}: 'annotations' must be a list")
        sentence = out.get(sid)
        if sentence is None:
            sentence = out[sid] = AnnotatedSentence(
                sid, str(data_.get("doc_id") or ""), text, source
            )
        elif sentence.text != text:
            raise InputError(f"{where}: sentence {sid} appears with two different texts")
        for ann in task["annotations"]:
            aid = ann.get("id") if isinstance(ann, dict) else None
            at = f"{where} (sentence {sid}), annotation {aid}"
            if not isinstance(ann, dict) or not isinstance(aid, int):
                raise InputError(f"{at}: not an annotation object with an integer id")
            cancelled = ann.get("was_cancelled", False)
            if not isinstance(cancelled, bool):
                raise InputError(f"{at}: 'was_cancelled' must be true or false")
            who = _annotator(ann.get("completed_by"), at)
            labels = _labels_of(ann.get("result"), at)
            if cancelled:
                sentence.skipped_by.add(who)
                continue
            updated = ann.get("updated_at") or ann.get("created_at") or ""
            if not isinstance(updated, str):
                raise InputError(f"{at}: 'updated_at' must be an ISO time")
            try:
                _time(updated)
            except ValueError:
                raise InputError(f"{at}: 'updated_at' {updated!r} is not an ISO time") from None
            vote = Vote(who, labels, aid, updated, source)
            sentence.annotations.setdefault(who, set()).add(aid)
            previous = sentence.votes.get(who)
            if previous is not None and previous.order > vote.order:
                continue
            sentence.votes[who] = vote
    return out


def merge(
    exports: Sequence[tuple[str, dict[str, AnnotatedSentence]]],
) -> dict[str, AnnotatedSentence]:
    """Exports in the order they were stored. Per sentence, each annotator's latest vote in
    any export (``Vote.order``). The same annotation in several exports is one vote, cited
    from the first export that held it; at equal order with other labels (exports without
    times) the later-stored export's wins. An annotator's other annotations are counted as
    superseded."""
    merged: dict[str, AnnotatedSentence] = {}
    for _, sentences in exports:
        for sid, sentence in sentences.items():
            into = merged.get(sid)
            if into is None:
                into = merged[sid] = AnnotatedSentence(
                    sid, sentence.doc_id, sentence.text, sentence.export
                )
            into.skipped_by |= sentence.skipped_by
            for who, ids in sentence.annotations.items():
                into.annotations.setdefault(who, set()).update(ids)
            for who, vote in sentence.votes.items():
                previous = into.votes.get(who)
                if (
                    previous is None
                    or vote.order > previous.order
                    or (vote.order == previous.order and vote.labels != previous.labels)
                ):  # the same annotation seen again keeps the export it was first read from
                    into.votes[who] = vote
            if into.votes:
                latest = max(into.votes.values(), key=lambda v: v.order)
                into.export = latest.export
    return merged
