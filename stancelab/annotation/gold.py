"""The gold set, derived from Label Studio full-JSON exports.

Run it as ``stancelab label gold`` (or through ``label pull`` / ``label import``): it reads
every export in ``labels/exports/`` and writes ``labels/gold.jsonl`` plus the agreement report
``labels/agreement.json`` and ``labels/agreement.md`` beside it.

Rules, in order:
- Validation is strict: an unknown label, a result from another control than ``labels``, a
  malformed annotation or a task without a sentence id (``data.id``) is an error that names
  the file, the task and the annotation. Nothing is dropped or coerced.
- An annotation with no choice means *none*; a cancelled (skipped) annotation is not a label.
- One vote per annotator and sentence, across all exports: the annotator's latest annotation
  of the sentence by the annotation's own time (``updated_at``, else ``created_at``; at equal
  times the higher annotation id, then the later-stored export). When an export was stored
  does not matter: re-importing an old export changes nothing, and votes from different
  projects (a ``label review`` project, a second team's project) are added to the others, not
  put in their place.
- An annotation deleted in Label Studio stays in gold as long as an export holding it is
  stored (a known limit; ``README.md`` says how to withdraw a vote).
- Resolution: if an adjudicator (an annotator whose email starts with ``adjudicator``, see
  ``ADJUDICATOR_PREFIX``) labelled the sentence, that label is gold (``adjudicated: true``).
  Otherwise each label is decided by majority of the annotators; a label with exactly half of
  the votes is a tie, and the sentence is listed for adjudication instead of guessed.

A gold row: ``id``, ``doc_id``, ``text``, ``labels``, ``provenance`` (``export`` file,
``annotators``, ``adjudicated``, ``resolution``). It is the ``text`` + ``labels`` format every
training and evaluation command reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stancelab.annotation.interface import CONTROL_NAME, RESULT_TYPE, TEXT_NAME
from stancelab.errors import InputError
from stancelab.files import (
    atomic_open,
    check_output_path,
    exclusive_lock,
    read_text,
    refuse_input_as_output,
    write_json,
    write_jsonl,
)
from stancelab.labels import LABELS
from stancelab.paths import GOLD_PATH

ADJUDICATOR_PREFIX = "adjudicator"  # e.g. adjudicator@team.org, adjudicator.lee@team.org
POLICY = (  # written into agreement.json: the shipped one must stay what the exports derive
    "one vote per annotator (their latest annotation); cancelled annotations are not votes; an "
    f"annotator whose email starts with '{ADJUDICATOR_PREFIX}' decides; otherwise per-label "
    "majority, and a label with exactly half of the votes is a tie listed for adjudication"
)


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


@dataclass(frozen=True)
class Decision:
    labels: tuple[str, ...] | None  # None: a tie to adjudicate
    resolution: str  # single | unanimous | majority | adjudicated | tie | adjudicators disagree
    tied_labels: tuple[str, ...] = ()


def resolve(votes: Sequence[Vote]) -> Decision:
    """The gold labels of one sentence from its votes (at least one)."""
    adjudicators = [v for v in votes if v.adjudicator]
    if adjudicators:
        sets = {v.labels for v in adjudicators}
        if len(sets) == 1:
            return Decision(adjudicators[0].labels, "adjudicated")
        return Decision(None, "adjudicators disagree")
    if len(votes) == 1:
        return Decision(votes[0].labels, "single")
    n = len(votes)
    chosen, tied = [], []
    for name in LABELS:
        yes = sum(name in v.labels for v in votes)
        if 2 * yes == n:
            tied.append(name)
        elif 2 * yes > n:
            chosen.append(name)
    if tied:
        return Decision(None, "tie", tuple(tied))
    unanimous = len({v.labels for v in votes}) == 1
    return Decision(tuple(chosen), "unanimous" if unanimous else "majority")


@dataclass
class GoldResult:
    rows: list[dict]
    ties: list[dict]
    sentences: dict[str, AnnotatedSentence]
    exports: list[str]


def derive(exports: Sequence[tuple[str, dict[str, AnnotatedSentence]]]) -> GoldResult:
    merged = merge(exports)
    rows, ties = [], []
    for sid in sorted(merged):
        sentence = merged[sid]
        if not sentence.votes:
            continue
        votes = sorted(sentence.votes.values(), key=lambda v: v.annotator)
        decision = resolve(votes)
        if decision.labels is None:
            ties.append(
                {
                    "id": sid,
                    "doc_id": sentence.doc_id,
                    "text": sentence.text,
                    "export": sentence.export,
                    "reason": decision.resolution,
                    "tied_labels": list(decision.tied_labels),
                    "votes": {v.annotator: list(v.labels) for v in votes},
                }
            )
            continue
        rows.append(
            {
                "id": sid,
                "doc_id": sentence.doc_id,
                "text": sentence.text,
                "labels": list(decision.labels),
                "provenance": {
                    "export": sentence.export,
                    "annotators": [v.annotator for v in votes],
                    "adjudicated": decision.resolution == "adjudicated",
                    "resolution": decision.resolution,
                },
            }
        )
    return GoldResult(rows, ties, merged, [name for name, _ in exports])


@dataclass
class GoldUpdate:
    result: GoldResult
    report: dict  # the agreement report (stancelab.annotation.agreement)
    paths: dict[str, Path]
    stored: Path | None = None  # the export file this update added
    duplicate_of: Path | None = None  # the stored export with the same bytes, if any


def update_gold(
    exports_dir: str | Path,
    gold_path: str | Path = GOLD_PATH,
    new: tuple[str, bytes] | None = None,
    inputs: Sequence[str | Path] = (),
    origin: str | None = None,
) -> GoldUpdate:
    """Derive gold from the stored exports plus ``new`` (a name and raw bytes), then write.

    Everything is validated before anything is written, so an error (a malformed or
    modified export, an unknown label, an exports folder that is a file, a gold set or
    agreement report that would land in the exports folder or on one of ``inputs``, the
    file ``new`` was read from) leaves every file as it was. Errors in ``new`` name
    ``origin`` (the imported file, the project pulled), not the name it would be stored as.
    A ``new`` export whose bytes are already stored is not stored again.
    """
    exports_dir, gold_path = Path(exports_dir), Path(gold_path)
    check_gold_paths(exports_dir, gold_path, inputs, storing=new is not None)
    created = []  # folders this call makes, leaf first: removed again if it fails
    if new is not None:
        created = [p for p in (exports_dir, *exports_dir.parents) if not p.exists()]
        exports_dir.mkdir(parents=True, exist_ok=True)
    if not exports_dir.is_dir():
        return _update_gold(exports_dir, gold_path, new, origin)
    busy = (
        f"{exports_dir}: another stancelab label import/pull/gold is using this exports "
        "folder; wait for it to finish and run the command again"
    )
    try:
        with exclusive_lock(exports_dir, busy):  # one writer of the exports and the gold set
            return _update_gold(exports_dir, gold_path, new, origin)
    except BaseException:
        with contextlib.suppress(OSError):  # a failed first import leaves no empty folder
            for folder in created:
                folder.rmdir()
        raise


def check_gold_paths(
    exports_dir: Path, gold_path: Path, inputs: Sequence[str | Path], storing: bool = False
) -> None:
    """InputError when the exports folder is a file (or, when ``storing`` an export, cannot
    be written), or when the gold set or its agreement report would land inside the exports
    folder (its exports are immutable, and any other ``.json`` there stops every later
    derivation) or on an input file, or cannot be written (a folder, under a file)."""
    if storing:
        check_output_path(exports_dir, "--exports", folder=True)
    elif exports_dir.exists() and not exports_dir.is_dir():
        raise InputError(f"{exports_dir}: is a file; --exports needs a folder")
    folder = exports_dir.resolve()
    if gold_path.name in ("agreement.json", "agreement.md"):
        raise InputError(f"{gold_path}: the agreement report's name; choose another --gold")
    for target in gold_paths(gold_path).values():
        if folder == target.resolve() or folder in target.resolve().parents:
            raise InputError(
                f"{target}: would be inside the exports folder {exports_dir}, which holds "
                "exports only; choose a --gold outside it"
            )
        refuse_input_as_output(target, inputs)
        check_output_path(target, "--gold")


def gold_paths(gold_path: Path) -> dict[str, Path]:
    """The gold JSONL and, beside it, the agreement report as JSON and as Markdown."""
    return {
        "gold": gold_path,
        "agreement": gold_path.with_name("agreement.json"),
        "markdown": gold_path.with_name("agreement.md"),
    }


def _update_gold(
    exports_dir: Path, gold_path: str | Path, new: tuple[str, bytes] | None, origin: str | None
) -> GoldUpdate:
    from stancelab.annotation.exports import list_exports, new_export_path, recover, store_export

    recover(exports_dir)  # debris of a killed import: we hold the lock, so nobody else's
    stored_exports = list_exports(exports_dir)
    parsed = [(e.path.name, parse_export(read_text(e.path), e.path.name)) for e in stored_exports]
    target = duplicate = None
    if new is not None:
        name, data = new
        digest = hashlib.sha256(data).hexdigest()
        duplicate = next((e.path for e in stored_exports if e.sha256 == digest), None)
        if duplicate is None:
            target = new_export_path(exports_dir, name)
            parsed.append((target.name, parse_export(data, target.name, origin)))
    if not parsed:
        raise InputError(
            f"{exports_dir}: no exports yet; `stancelab label pull` or "
            "`stancelab label import FILE` first"
        )
    result = derive(parsed)
    report = gold_report(result)
    if target is not None:
        store_export(target, new[1])
    return GoldUpdate(result, report, write_gold(result, report, gold_path), target, duplicate)


def gold_report(result: GoldResult) -> dict:
    from stancelab.annotation.agreement import agreement_report

    return {**agreement_report(result), "policy": POLICY}


def write_gold(result: GoldResult, report: dict, gold_path: str | Path = GOLD_PATH) -> dict:
    """Write the gold JSONL and the agreement report beside it (each file atomically)."""
    from stancelab.annotation.agreement import report_markdown

    paths = gold_paths(Path(gold_path))
    write_jsonl(paths["gold"], result.rows)
    write_json(paths["agreement"], report)
    with atomic_open(paths["markdown"]) as handle:
        handle.write(report_markdown(report))
    return paths
