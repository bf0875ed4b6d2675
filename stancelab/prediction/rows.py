"""Output rows: what ``predict --input`` writes for each record, on either engine.

``rows_for`` turns a chunk of read records into rows in input order: a good record's text,
labels, scores, flags and model version (one row per sentence with ``documents``), a bad
record's ``error``, and either with the record's other input fields as ``meta`` (those
read, ``--meta``: ``meta_fields``; a misspelt one is refused by the first pass); with
``documents`` also the lines dropped as page furniture, for the side file. ``Summary``
(``ClusterSummary`` on Ray) counts a run's rows, error rows, flagged rows (``truncated``,
``foreign_script``) and dropped lines for the line printed at the end, and keeps the first
error row and the distinct error messages to name them on a second line (``error_rows``). Used by
``stancelab.prediction.stream`` (local files) and ``stancelab.prediction.cluster`` (Ray).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stancelab.corpus.readers import READ_KEYS, Record, meta_name, read_records, writable
from stancelab.errors import InputError
from stancelab.models.base import StanceModel, texts_flagged_by_caller
from stancelab.prediction.api import FLAGS, predictions_for
from stancelab.prediction.error_rows import distinct_messages, errors_note, first_error


@dataclass
class Summary:
    records: int = 0
    rows: int = 0
    errors: int = 0
    truncated: int = 0
    foreign_script: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    output: str = ""
    # ``documents`` only: lines dropped as page furniture per reason, the side file that
    # holds them, and the records of which every line was dropped
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_output: str = ""
    no_sentence: int = 0
    # line mode with --overwrite: the side file of the --documents output replaced, removed
    side_removed: str = ""
    # the output's first error row (where it came from and its "error") and its distinct
    # error messages (``error_rows``); None when the first error row is not known (resumed
    # from the checkpoint of an earlier stancelab, which did not record it)
    first_error: dict | None = None
    error_messages: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        # after a resume, rows, error rows and flagged rows count the whole output
        written = (
            f"{self.output} holds {self.rows} row(s)"
            if self.resumed_from
            else f"{self.rows} row(s) in {self.output}"
        )
        resumed = f" (resumed after {self.resumed_from})" if self.resumed_from else ""
        return (
            f"{self.records} record(s){resumed} -> {written}; "
            f"{self.errors} error row(s); {flags_note(self)}{dropped_note(self)}"
            f"{self.seconds:.1f} s ({rate:.1f} records/s)"
        ) + errors_note(self.errors, self.first_error, self.error_messages, self.output)


@dataclass
class ClusterSummary(Summary):
    """The summary of ``predict --engine ray`` (``stancelab.prediction.cluster``)."""

    files: int = 0
    workers: int = 0

    def __str__(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (
            f"{self.rows} row(s) -> {self.files} file(s) in {self.output}/; "
            f"{self.errors} error row(s); {flags_note(self)}{dropped_note(self)}"
            f"{self.workers} Ray worker(s); "
            f"{self.seconds:.1f} s ({rate:.1f} rows/s)"
        ) + errors_note(self.errors, self.first_error, self.error_messages, f"{self.output}/")


def dropped_note(summary: Summary) -> str:
    """The summary's words for what ``documents`` dropped: records left with no sentence,
    and the furniture lines per reason with the side file they went to; in line mode, the
    side file of the output replaced, removed with it."""
    if summary.side_removed:
        return f"removed {summary.side_removed} (the lines dropped from the output replaced); "
    if not summary.dropped_output:
        return ""
    note = ""
    if summary.no_sentence:
        note += f"{summary.no_sentence} record(s) with no sentence left (every line dropped); "
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.dropped.items()))
    note += f"{sum(summary.dropped.values())} furniture line(s) dropped"
    note += f" ({reasons})" if reasons else ""
    return note + f" -> {summary.dropped_output}; "


def flags_note(summary: Summary) -> str:
    """The summary's words for flagged rows: texts longer than the model reads, and texts
    mostly not in Latin letters."""
    note = ""
    if summary.truncated:
        note += (
            f"{summary.truncated} truncated row(s) "
            '(marked "truncated": true, labelled from their beginning); '
        )
    if summary.foreign_script:
        note += (
            f"{summary.foreign_script} row(s) mostly not in Latin letters (marked "
            '"foreign_script": true; the models learned from English only); '
        )
    return note


@dataclass
class ChunkRows:
    """What a chunk of records gives: its output ``rows`` and, with ``documents``, the lines
    dropped as page furniture (``corpus.ingest.Dropped`` with the record's ``line``) and
    the number of good records of which every line was dropped."""

    rows: list[dict]
    dropped: list[dict] = field(default_factory=list)
    no_sentence: int = 0


def count_rows(summary: Summary, chunk: ChunkRows) -> None:
    """Add a chunk's rows, error rows, flagged rows and dropped lines to ``summary``."""
    rows = chunk.rows
    summary.rows += len(rows)
    errors = [r["error"] for r in rows if "error" in r]
    if errors and not summary.errors:  # the output's first error row
        summary.first_error = first_error(rows)
    summary.error_messages = distinct_messages(summary.error_messages, errors)
    summary.errors += len(errors)
    for flag in FLAGS:
        setattr(summary, flag, getattr(summary, flag) + sum(flag in r for r in rows))
    for line in chunk.dropped:
        summary.dropped[line["reason"]] = summary.dropped.get(line["reason"], 0) + 1
    summary.no_sentence += chunk.no_sentence


def document_id(record: Record, path: Path | None = None, folder: Path | None = None) -> str:
    """A ``documents`` record's id, which begins its sentences' ids: its own ``id``, else
    ``line{N}`` for its line in the input; in a file ``path`` of an input ``folder`` (the Ray
    engine), its file's name there and its line (``2024/a/line3``), so that the records
    without an id of two files are two documents, as two ``.txt`` files are.
    ``refuse_repeated_input_ids`` refuses an input in which two records would get one."""
    if record.id:
        return record.id
    if path is not None and folder is not None:
        return f"{txt_document_id(path, folder)}/line{record.line}"
    return f"line{record.line}"


def txt_document_id(path: Path, folder: Path | None = None) -> str:
    """The id of a ``documents`` ``.txt`` file (one document): its name without the suffix,
    or in an input folder its path there (``2024/article``), as ``corpus`` names a folder's
    files, so that two subfolders' ``article.txt`` are two documents."""
    named = Path(path).relative_to(folder) if folder is not None else Path(Path(path).name)
    return named.with_suffix("").as_posix()


def meta_fields(names: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """The other fields ``--meta`` names (``"date,source"``, or a list of such), for
    ``read_records``: each once, sorted, so that one choice is recorded alike however it was
    written (rows keep each record's own order); None (every field) stays None, and no name
    at all (``--no-meta``) carries none. InputError for an empty name or one that predict
    reads itself (``id``, ``text``): those are each row's own keys."""
    if names is None:
        return None
    given = [names] if isinstance(names, str) else list(names)
    fields = [name.strip() for item in given for name in item.split(",")]
    if "" in fields:
        raise InputError(
            f"--meta {','.join(given)!r}: an empty field name; name the fields to carry as "
            "FIELD,FIELD (or carry none with --no-meta)"
        )
    own = sorted(set(fields) & set(READ_KEYS))
    if own:
        are = "is a row's own key" if len(own) == 1 else "are each row's own keys"
        raise InputError(
            f"--meta {','.join(own)}: {' and '.join(map(repr, own))} {are}, not meta; "
            "--meta names the input's other fields"
        )
    return tuple(sorted(set(fields)))


class _FieldsSeen:
    """Of the fields ``--meta`` names, those some record has, and (to name them when one is
    missing) the first 50 other field names met: never every key of a large input."""

    def __init__(self, wanted: tuple[str, ...] | None) -> None:
        self.wanted, self.found, self.others = wanted or (), set(), set()

    def add(self, record: Record) -> None:
        for name in record.meta or ():
            if (named := meta_name(name, self.wanted)) is not None:
                self.found.add(named)
            elif len(self.others) < 50:
                self.others.add(name)

    def refuse_missing(self, files: list[Path], folder: Path | None) -> None:
        missing = [name for name in self.wanted if name not in self.found]
        if not missing:
            return
        named, s = ", ".join(map(repr, missing)), "s" if len(missing) > 1 else ""
        others = ", ".join(map(repr, sorted(self.found | self.others)))
        if folder is None and files[0].suffix.lower() == ".csv":  # known from the header
            where, what = f"{files[0]}:1", f"no column{s} {named} (--meta)"
            others = f"its other columns: {others}" if others else "it has no other column"
        else:
            where, what = f"{folder or files[0]}", f"no record has the field{s} {named} (--meta)"
            others = (
                f"the other fields of its records: {others}"
                if others
                else "its records have no field but id and text"
            )
            if all(p.suffix.lower() == ".txt" for p in files):
                others = "a .txt input has no field but its text"
        raise InputError(f"{where}: {what}; {others}")


def refuse_repeated_input_ids(
    files: list[Path],
    folder: Path | None = None,
    *,
    documents: bool,
    meta: tuple[str, ...] | None = None,
) -> int:
    """InputError naming both places when two records of an input (one file, or the
    ``files`` of ``folder`` on the Ray engine) would have the same id in the output. With
    ``documents``, the same document id, so that their sentences would share ids: an ``id``
    given twice, or given as the name of a record without one (``document_id``). In line
    mode, the same ``id`` given twice: each record is one row, with its own ``id`` or none
    (a record without one is not named, so no id clashes with it), and two rows of one id
    would be matched as one (``label push --predictions`` refuses such an output; a join on
    ``id`` pairs each with both). The files are read through once for this (a ``documents``
    ``.txt`` file is named, not read), before anything is written; the ids are those of
    every run on it, a resumed one too; they are kept as hashes (8 bytes a record), and
    read again only when two hashes are alike. In the same pass, the fields named in
    ``meta`` (``--meta``): an InputError if no record of an input with records has one of
    them, which would be left out of every row in silence (a misspelt name). Returns the
    number of records, for the progress bar: counted in the same pass, so the input is not
    read a third time."""
    from stancelab.corpus.documents import refuse_repeated_ids

    records = 0
    seen = _FieldsSeen(meta)

    def ids() -> Iterator[tuple[str, str]]:  # read again only to name a repeat
        nonlocal records
        records = 0
        for path in files:
            named = _document_ids(path, folder, seen) if documents else _record_ids(path, seen)
            for name, where in named:
                records += 1
                if name is not None:
                    yield name, where

    refuse_repeated_ids(ids, documents=documents)
    if records:
        seen.refuse_missing(files, folder)
    return records


def _record_ids(path: Path, seen: _FieldsSeen) -> Iterator[tuple[str | None, str]]:
    """(id, where) of each line-mode record of one input file, in reading order; the id is
    None for a record without one (its row has none: nothing to match it on). A bad record
    with an id keeps it in its error row, so it counts. Its fields go to ``seen``."""
    for r in read_records(path):
        seen.add(r)
        yield r.id or None, f"{path}:{r.line}"


def _document_ids(
    path: Path, folder: Path | None, seen: _FieldsSeen
) -> Iterator[tuple[str | None, str]]:
    """(document id, where) of each record of one input file, in reading order; the id is
    None for a bad record without one (it gets no sentences, so no id). Its fields go to
    ``seen``."""
    if path.suffix.lower() == ".txt":
        yield txt_document_id(path, folder), str(path)
        return
    for r in read_records(path, documents=True):
        seen.add(r)
        if r.id or r.error is None:
            name = document_id(r, path, folder)
            yield name, f"{path}:{r.line}" + ("" if r.id else f" (no id: named {name})")
        else:
            yield None, f"{path}:{r.line}"


def rows_for(model: StanceModel, chunk: list[Record], documents: bool) -> ChunkRows:
    """Output rows for a chunk of records, in input order. A row whose text was longer than
    the model reads has ``"truncated": true``, one whose text is mostly not in Latin letters
    ``"foreign_script": true`` (and the warnings are not repeated for every chunk: the
    summary counts these rows)."""
    for r in chunk:
        if r.meta is not None:  # a field that cannot be written as UTF-8 is spelled out
            r.meta = writable(r.meta)
    with texts_flagged_by_caller():
        if documents:
            return _document_rows(model, chunk, model.model_version)
        return ChunkRows(_record_rows(model, chunk, model.model_version))


def _flags(prediction) -> dict:
    return {flag: True for flag in FLAGS if getattr(prediction, flag)}


def _meta(record: Record) -> dict:
    """The record's other input fields, under ``meta`` (its own key, so that a field named
    ``labels`` or ``scores``, such as an annotator's, never meets the prediction's)."""
    return {"meta": record.meta} if record.meta else {}


def _record_rows(model: StanceModel, chunk: list[Record], version: str) -> list[dict]:
    good = [r for r in chunk if r.error is None]
    preds = iter(predictions_for(model, [r.text for r in good]) if good else [])
    rows = []
    for r in chunk:
        if r.error is not None:
            rows.append({"line": r.line, "id": r.id, "error": r.error, **_meta(r)})
            continue
        p = next(preds)
        rows.append(
            {
                "line": r.line,
                "id": r.id,
                "text": r.text,
                "labels": list(p.labels),
                "scores": p.scores,
                **_flags(p),
                "model_version": version,
                **_meta(r),
            }
        )
    return rows


def _document_rows(model: StanceModel, chunk: list[Record], version: str) -> ChunkRows:
    from stancelab.corpus.ingest import Document, segment_document

    per_doc, texts, dropped, no_sentence = [], [], [], 0
    for r in chunk:
        if r.error is not None:
            per_doc.append((r, []))
            continue
        sentences, lost = segment_document(Document(document_id(r), r.text, str(r.line)))
        per_doc.append((r, sentences))
        texts.extend(s.text for s in sentences)
        dropped.extend({"line": r.line, **asdict(d)} for d in lost)
        no_sentence += not sentences
    preds = iter(predictions_for(model, texts) if texts else [])
    rows = []
    for r, sentences in per_doc:
        if r.error is not None:
            rows.append({"line": r.line, "doc_id": r.id, "error": r.error, **_meta(r)})
        for s in sentences:
            p = next(preds)
            rows.append(
                {
                    "line": r.line,
                    "doc_id": s.doc_id,
                    "id": s.id,
                    "index": s.index,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "labels": list(p.labels),
                    "scores": p.scores,
                    **_flags(p),
                    "model_version": version,
                    **_meta(r),
                }
            )
    return ChunkRows(rows, dropped, no_sentence)
