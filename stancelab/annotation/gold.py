"""The gold set, derived from Label Studio full-JSON exports.

Run it as ``stancelab label gold`` (or through ``label pull`` / ``label import``): it reads
every export in ``labels/exports/`` and writes ``labels/gold.jsonl`` plus the agreement report
``labels/agreement.json`` and ``labels/agreement.md`` beside it.

Rules, in order:
- Validation is strict: an unknown label, a result from another control than ``labels``, a
  malformed annotation or a task without a sentence id (``data.id``) is an error that names
  the file, the task and the annotation. Nothing is dropped or coerced. A sentence id with
  another text than in a stored export is an error too: the votes would not be on one sentence.
- An annotation with no choice means *none*; a cancelled (skipped) annotation is not a label.
- One vote per annotator and sentence, across all exports: the annotator's latest annotation
  of the sentence by the annotation's own time (``updated_at``, else ``created_at``; at equal
  times the higher annotation id, then the later-stored export). When an export was stored
  does not matter: re-importing an old export changes nothing (but for the deleted votes it
  holds, below), and votes from different projects (a ``label review`` project, a second
  team's project) are added to the others, not put in their place.
- An annotator an export names by user id only (downloaded from the UI) is the email a pull
  gives the same annotation (``votes.named_annotators``), so one person is one annotator.
- An annotation deleted in Label Studio is not counted once a later ``label pull`` of its
  project shows it gone (``deleted_annotations``); the report says how many. An export
  without a pull record (imported, or pulled by an older stancelab) still counts every
  annotation it holds, and the report counts the deleted ones it keeps (``README.md``).
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stancelab.annotation.exports import PullRecord
from stancelab.annotation.votes import (
    ADJUDICATOR_PREFIX,
    AnnotatedSentence,
    Vote,
    deleted_annotations,
    merge,
    parse_export,
)
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
from stancelab.paths import EXPORTS_DIR, GOLD_PATH

POLICY = (  # written into agreement.json: the shipped one must stay what the exports derive
    "one vote per annotator (their latest annotation); cancelled annotations are not votes, nor "
    "are those a later pull shows deleted in Label Studio; an "
    f"annotator whose email starts with '{ADJUDICATOR_PREFIX}' decides; otherwise per-label "
    "majority, and a label with exactly half of the votes is a tie listed for adjudication"
)


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
    deleted: dict[str, int] = field(default_factory=lambda: {"dropped": 0, "still_counted": 0})

    @property
    def unnamed(self) -> list[str]:
        """Annotators no export names by email (``user <id>``): none can be an adjudicator."""
        votes = (v for s in self.sentences.values() for v in s.votes.values())
        return sorted({v.annotator for v in votes if v.unnamed})


def derive(
    exports: Sequence[tuple[str, dict[str, AnnotatedSentence]]],
    pulls: Mapping[str, PullRecord] | None = None,
    shown: Mapping[str, str] | None = None,
) -> GoldResult:
    """Gold from the exports (name, sentences) in the order they were stored; ``pulls``: the
    pull records of those ``label pull`` took, by name; ``shown``: how errors name an export
    not stored yet."""
    deleted = deleted_annotations(exports, pulls or {})
    merged = merge(exports, deleted, shown)
    gone = {  # (sentence, annotation) a later pull shows deleted
        (sid, aid)
        for name, sentences in exports
        if deleted.get(name)
        for sid, sentence in sentences.items()
        for aid in sentence.times().keys() & deleted[name]
    }
    kept = sum(aid in merged[sid].times() for sid, aid in gone)  # held by an unrecorded export
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
    counts = {"dropped": len(gone) - kept, "still_counted": kept}
    return GoldResult(rows, ties, merged, [name for name, _ in exports], counts)


@dataclass
class GoldUpdate:
    result: GoldResult
    report: dict  # the agreement report (stancelab.annotation.agreement)
    paths: dict[str, Path]
    stored: Path | None = None  # the export file this update added
    duplicate_of: Path | None = None  # the stored export with the same bytes, if any
    recovered: list[str] = field(default_factory=list)  # what ``exports.recover`` did or kept


def update_gold(
    exports_dir: str | Path,
    gold_path: str | Path = GOLD_PATH,
    new: tuple[str, bytes] | None = None,
    inputs: Sequence[str | Path] = (),
    origin: str | None = None,
    pull: PullRecord | None = None,
) -> GoldUpdate:
    """Derive gold from the stored exports plus ``new`` (a name and raw bytes), then write.

    Everything is validated before anything is written, so an error (a malformed or
    modified export, an unknown label, an exports folder that is a file, a gold set or
    agreement report that would land in the exports folder or on one of ``inputs``, the
    file ``new`` was read from) leaves every file as it was. Errors in ``new`` name
    ``origin`` (the imported file, the project pulled), not the name it would be stored as.
    A ``new`` export whose bytes are already stored is not stored again; ``pull`` is stored
    beside it when ``label pull`` took it.
    """
    exports_dir, gold_path = Path(exports_dir), Path(gold_path)
    check_gold_paths(exports_dir, gold_path, inputs, storing=new is not None)
    created = []  # folders this call makes, leaf first: removed again if it fails
    if new is not None:
        created = [p for p in (exports_dir, *exports_dir.parents) if not p.exists()]
        exports_dir.mkdir(parents=True, exist_ok=True)
    if not exports_dir.is_dir():
        return _update_gold(exports_dir, gold_path, new, origin, pull)
    busy = (
        f"{exports_dir}: another stancelab label import/pull/gold is using this exports "
        "folder; wait for it to finish and run the command again"
    )
    try:
        with exclusive_lock(exports_dir, busy):  # one writer of the exports and the gold set
            return _update_gold(exports_dir, gold_path, new, origin, pull)
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
    derivation) or on an input file, or cannot be written (a folder, under a file), or would
    replace a file that no derivation wrote."""
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
        check_output_path(target, "--gold", jsonl=target == gold_path)
        if target.is_file() and not _written_by_gold(target, target == gold_path):
            what = "--gold" if target == gold_path else f"the agreement report beside {gold_path}"
            raise InputError(
                f"{target}: exists and is not a {'gold set' if target == gold_path else 'report'}"
                f" that `stancelab label gold` wrote; {what} would replace it: move it aside or "
                "choose another --gold (a file of yours is never overwritten)"
            )


def _written_by_gold(path: Path, gold: bool) -> bool:
    """Whether ``path`` is a file this module wrote (a derivation replaces its own files):
    gold rows each carry ``provenance``, agreement.json its ``policy``, agreement.md its
    title. Anything else there (an augmentation file, notes) is a user's file."""
    try:
        text = read_text(path)
        if gold:
            rows = [json.loads(line) for line in text.split("\n") if line.strip()]
            return all(isinstance(r, dict) and isinstance(r.get("provenance"), dict) for r in rows)
        if path.suffix == ".json":
            report = json.loads(text)
            return isinstance(report, dict) and {"policy", "labels"} <= report.keys()
        return text.startswith("# Annotation agreement\n")
    except (InputError, ValueError):
        return False


def gold_paths(gold_path: Path) -> dict[str, Path]:
    """The gold JSONL and, beside it, the agreement report as JSON and as Markdown."""
    return {
        "gold": gold_path,
        "agreement": gold_path.with_name("agreement.json"),
        "markdown": gold_path.with_name("agreement.md"),
    }


def _update_gold(
    exports_dir: Path,
    gold_path: str | Path,
    new: tuple[str, bytes] | None,
    origin: str | None,
    pull: PullRecord | None,
) -> GoldUpdate:
    from stancelab.annotation.exports import list_exports, new_export_path, recover, store_export

    recovered = recover(exports_dir)  # a killed import's debris (we hold the lock: none is running)
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
    pulls = {e.path.name: e.pull for e in stored_exports if e.pull is not None}
    if target is not None and pull is not None:
        pulls[target.name] = pull
    result = derive(parsed, pulls, {target.name: origin} if target and origin else None)
    report = gold_report(result)
    if target is not None:
        store_export(target, new[1], pull)
    paths = write_gold(result, report, gold_path, exports_dir)
    return GoldUpdate(result, report, paths, target, duplicate, recovered)


def gold_report(result: GoldResult) -> dict:
    from stancelab.annotation.agreement import agreement_report

    return {**agreement_report(result), "policy": POLICY}


def write_gold(
    result: GoldResult,
    report: dict,
    gold_path: str | Path = GOLD_PATH,
    exports_dir: str | Path = EXPORTS_DIR,
) -> dict:
    """Write the gold JSONL and the agreement report beside it (each file atomically)."""
    from stancelab.annotation.agreement import report_markdown

    paths = gold_paths(Path(gold_path))
    write_jsonl(paths["gold"], result.rows)
    write_json(paths["agreement"], report)
    with atomic_open(paths["markdown"]) as handle:
        handle.write(report_markdown(report, exports_dir))
    return paths
