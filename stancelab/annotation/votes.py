"""Votes: what a Label Studio full-JSON export says about each sentence, and their merge
across exports.

``parse_export`` validates an export strictly (an unknown label, a result from another control
than ``labels``, a malformed annotation or a task without a sentence id is an error that names
the file, the task and the annotation) and reads every annotation; the vote of an annotator
on a sentence is their latest annotation by its own time. ``merge`` combines exports the same
way across all of them, leaving out the annotations ``deleted_annotations`` finds deleted in
Label Studio. ``stancelab.annotation.gold`` turns the merged votes into gold labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stancelab.annotation.interface import CONTROL_NAME, RESULT_TYPE, TEXT_NAME
from stancelab.corpus.text import one_line, preview
from stancelab.errors import InputError
from stancelab.labels import LABELS

if TYPE_CHECKING:
    from stancelab.annotation.exports import PullRecord

ADJUDICATOR_PREFIX = "adjudicator"  # e.g. adjudicator@team.org, adjudicator.lee@team.org
FULL_JSON = (  # the remedy for an export in another format than the one gold reads
    "export the project as full 'JSON' (JSON_MIN, CSV and TSV flatten the annotations and "
    "drop skipped tasks) or use `stancelab label pull`"
)

# Top-level keys of a JSON_MIN export's row (one per annotation, the task's data flattened
# into it) that a full-JSON task lacks; older Label Studio versions' rows lack annotation_id.
JSON_MIN_KEYS = frozenset({"annotation_id", "annotator", "lead_time"})


@dataclass(frozen=True)
class Vote:
    annotator: str  # email when the export carries it, else "user <id>"
    labels: tuple[str, ...]
    annotation_id: int
    updated: str  # ISO time, orders an annotator's annotations
    export: str = ""  # the export file it was read from
    user_id: int | None = None  # Label Studio's id of the annotator, when the export gives it
    created: str = ""  # the annotation's creation time, which an edit leaves as it was

    @property
    def unnamed(self) -> bool:
        """Known by user id only: an export downloaded from the UI gives no emails."""
        return self.user_id is not None and self.annotator == f"user {self.user_id}"

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
    first_export: str  # the export file it was first read from
    history: dict[str, dict[int, Vote]] = field(default_factory=dict)  # annotator -> by id
    skips: dict[str, dict[int, Vote]] = field(default_factory=dict)  # cancelled annotations

    def add(self, vote: Vote, cancelled: bool = False) -> None:
        """Read one annotation. The same annotation seen again keeps the export it was first
        read from, unless it changed; at equal order with other labels (exports without
        times) the one read later wins."""
        seen = (self.skips if cancelled else self.history).setdefault(vote.annotator, {})
        previous = seen.get(vote.annotation_id)
        if (
            previous is None
            or vote.order > previous.order
            or (vote.order == previous.order and vote.labels != previous.labels)
        ):
            seen[vote.annotation_id] = vote

    def held(self) -> Iterator[tuple[Vote, bool]]:
        """Every annotation held, cancelled ones too, each with whether it was cancelled."""
        for cancelled, held in ((False, self.history), (True, self.skips)):
            for seen in held.values():
                for vote in seen.values():
                    yield vote, cancelled

    def times(self) -> dict[int, str]:
        """Every annotation held, cancelled ones too, with its own time."""
        return {vote.annotation_id: vote.updated for vote, _ in self.held()}

    @property
    def votes(self) -> dict[str, Vote]:
        """Annotator -> their latest annotation (``Vote.order``): the vote that counts."""
        return {
            who: max(seen.values(), key=lambda v: v.order)
            for who, seen in self.history.items()
            if seen
        }

    @property
    def skipped_by(self) -> set[str]:
        return {who for who, seen in self.skips.items() if seen}

    @property
    def export(self) -> str:
        """The export file of the sentence's latest vote."""
        votes = self.votes.values()
        return max(votes, key=lambda v: v.order).export if votes else self.first_export

    @property
    def superseded(self) -> int:
        """Older annotations of the same annotator, not counted (each annotation once, in
        however many exports it appears)."""
        return sum(len(seen) - 1 for seen in self.history.values() if seen)


def _annotator(completed_by: object, where: str) -> tuple[str, int | None]:
    """The annotator's name (their email, else ``user <id>``) and user id."""
    if isinstance(completed_by, dict):
        email, uid = completed_by.get("email"), completed_by.get("id")
        uid = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        if isinstance(email, str) and email:
            return email, uid
        if uid is not None:
            return f"user {uid}", uid
    elif isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return f"user {completed_by}", completed_by
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
        raise InputError(f"{shown}: not valid JSON ({exc}); {FULL_JSON}") from None
    if not isinstance(tasks, list):
        raise InputError(f"{shown}: expected a list of tasks (Label Studio 'JSON' export)")
    out: dict[str, AnnotatedSentence] = {}
    for n, task in enumerate(tasks):
        tid = task.get("id", f"#{n}") if isinstance(task, dict) else f"#{n}"
        where = f"{shown}: task {tid}"
        if isinstance(task, dict) and not ({"data", "annotations"} & task.keys()):
            if JSON_MIN_KEYS & task.keys():
                what = "a row of a JSON_MIN export (one row per annotation, no 'data')"
                raise InputError(f"{where}: {what}; {FULL_JSON}")
            if TEXT_NAME in task:  # [{"text": ...}]: a file to import into Label Studio
                what = "a task to import (its text, no 'data' or annotations), not an export"
                raise InputError(f"{where}: {what}; {FULL_JSON}")
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
            raise InputError(f"{where}: no 'annotations' list; {FULL_JSON}")
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
            who, uid = _annotator(ann.get("completed_by"), at)
            labels = _labels_of(ann.get("result"), at)
            created = ann.get("created_at") or ""
            updated = ann.get("updated_at") or created
            for key, value in (("updated_at", updated), ("created_at", created)):
                if not isinstance(value, str):
                    raise InputError(f"{at}: {key!r} must be an ISO time")
                try:
                    _time(value)
                except ValueError:
                    raise InputError(f"{at}: {key!r} {value!r} is not an ISO time") from None
            sentence.add(Vote(who, labels, aid, updated, source, uid, created), cancelled)
    return out


def merge(
    exports: Sequence[tuple[str, dict[str, AnnotatedSentence]]],
    deleted: Mapping[str, set[int]] | None = None,
    shown: Mapping[str, str] | None = None,
) -> dict[str, AnnotatedSentence]:
    """Exports in the order they were stored. Per sentence, every annotation of any export
    (``AnnotatedSentence.add``) but those ``deleted`` (by export name, from
    ``deleted_annotations``): each annotator's latest counts, the others are superseded. An
    annotator an export knows by user id only is counted under the email another export
    gives them (``named_annotators``).

    One sentence id with two texts in two exports (another team's corpus whose ids are
    ``1``, ``2``, ...) is an InputError naming both, as it is within one export: merged, the
    votes on one sentence would decide another's gold labels. Errors name an export as
    ``shown`` gives it (the file being imported, not yet stored under its name)."""
    merged: dict[str, AnnotatedSentence] = {}
    names = named_annotators(exports)
    for name, sentences in exports:
        gone = (deleted or {}).get(name, set())
        alias = names.get(name, {})
        for sid, sentence in sentences.items():
            into = merged.get(sid)
            if into is None:
                into = merged[sid] = AnnotatedSentence(
                    sid, sentence.doc_id, sentence.text, sentence.first_export
                )
            elif one_line(into.text) != one_line(sentence.text):  # what the id stands for
                raise InputError(
                    _other_text(sid, into, sentence, name, (shown or {}).get(name, name), shown)
                )
            for vote, cancelled in sentence.held():
                if vote.annotation_id in gone:
                    continue
                if vote.annotator in alias:
                    vote = replace(vote, annotator=alias[vote.annotator])
                into.add(vote, cancelled)
    return merged


def _other_text(
    sid: str,
    first: AnnotatedSentence,
    other: AnnotatedSentence,
    name: str,
    named: str,
    shown: Mapping[str, str] | None,
) -> str:
    """The refusal of an export ``named`` that gives sentence ``sid`` another text than the
    export it was first read from: both texts from where they part (their starts may be
    alike), and a remedy that fits (an export being imported, or two stored ones)."""
    a, b = one_line(first.text), one_line(other.text)
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = max(0, at - 20)

    def around(text: str) -> str:
        return ("..." if start else "") + preview(text[start:], 60)

    where = (shown or {}).get(first.first_export, first.first_export)
    if name in (shown or {}):  # the export being imported or pulled
        remedy = (
            "a sentence id must name one sentence in every export (give the other sentences "
            "ids of their own, as `stancelab corpus` does, and push them again)"
        )
    else:
        remedy = (
            "both exports are stored: a sentence id must name one sentence in every export; "
            "remove the export that holds the wrong text from the exports folder, with its "
            ".sha256 and .pull files"
        )
    return (
        f"{named}: sentence {sid} reads {around(b)!r} from character {at + 1}, but "
        f"{around(a)!r} in {where}; {remedy}"
    )


def _every_vote(sentences: dict[str, AnnotatedSentence]) -> Iterator[tuple[str, Vote]]:
    for sid, sentence in sentences.items():
        for vote, _ in sentence.held():
            yield sid, vote


def named_annotators(
    exports: Sequence[tuple[str, dict[str, AnnotatedSentence]]],
) -> dict[str, dict[str, str]]:
    """Per export, the email of each annotator it knows by user id only (``user 2``).

    An export downloaded from Label Studio's UI gives user ids where a pull gives emails:
    counted apart, one person would be two annotators, their old vote outliving their
    change of mind and the adjudicator a plain voter. An annotation that both hold (the
    same sentence, annotation id, user id and creation time, to the microsecond) is one
    annotation of one server, so that user id is that email in the whole export. A user id
    no such annotation names stays ``user <id>`` (the summary warns of it): another server's
    user 2 in another export would be counted as the same annotator.
    """
    known: dict[tuple, str] = {}
    for _, sentences in exports:
        for sid, vote in _every_vote(sentences):
            if vote.user_id is not None and vote.created and not vote.unnamed:
                known[(sid, vote.annotation_id, vote.user_id, vote.created)] = vote.annotator
    out: dict[str, dict[str, str]] = {}
    for name, sentences in exports:
        for sid, vote in _every_vote(sentences):
            key = (sid, vote.annotation_id, vote.user_id, vote.created)
            if vote.unnamed and key in known:
                email = known[key]
                out.setdefault(name, {})[vote.annotator] = email
    return out


def deleted_annotations(
    exports: Sequence[tuple[str, dict[str, AnnotatedSentence]]], pulls: Mapping[str, PullRecord]
) -> dict[str, set[int]]:
    """Per pulled export (by name), the annotations it holds that Label Studio deleted.

    Only pulls of the same project (server, id and creation time) show it: an annotation
    is deleted when a later snapshot of the project lacks it, which began (its
    ``snapshot_created``) both after the last snapshot holding it had finished and after the
    annotation's own last change. All three times are the server's one clock, and the
    snapshot ids (never reused) order the snapshots, so neither the local clock nor overlapping
    pulls can make an annotation look deleted. Each snapshot holds every annotation of the
    project, skipped ones too. An export without a record (imported, or pulled by an older
    stancelab) shows nothing and loses nothing.
    """
    projects: dict[tuple, list[tuple[PullRecord, str, dict[int, str]]]] = {}
    for name, sentences in exports:
        if name in pulls:
            held = {aid: t for s in sentences.values() for aid, t in s.times().items()}
            projects.setdefault(pulls[name].project, []).append((pulls[name], name, held))
    out: dict[str, set[int]] = {}
    for snapshots in projects.values():
        snapshots.sort(key=lambda s: s[0].snapshot_id)
        last: dict[int, tuple[int, str]] = {}  # annotation -> latest snapshot holding it
        for n, (_, _, held) in enumerate(snapshots):
            last.update((aid, (n, t)) for aid, t in held.items())
        starts = [_time(pull.snapshot_created) for pull, _, _ in snapshots]
        began_after = [max(starts[n + 1 :], default=None) for n in range(len(snapshots))]
        deleted = {
            aid
            for aid, (n, t) in last.items()
            if began_after[n] is not None
            and t  # an annotation without a time could have been made after any snapshot
            and _time(t) < began_after[n]
            and _time(snapshots[n][0].snapshot_finished) <= began_after[n]
        }
        out.update((name, deleted & held.keys()) for _, name, held in snapshots)
    return out
