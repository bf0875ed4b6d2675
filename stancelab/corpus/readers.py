"""One reader for the ``.txt``, ``.jsonl`` and ``.csv`` inputs of ingestion and predict."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from stancelab.corpus.text import first_names, text_problem, undecoded_byte, unicode_problem
from stancelab.errors import InputError
from stancelab.files import NOT_UTF8_ADVICE, iter_csv, not_text, read_text

SUFFIXES = (".txt", ".jsonl", ".csv")


def skipped_advice(skipped: list[str]) -> str:
    """What to do about files a folder input skipped, by their kind: a table of records is
    read when given as a path of its own; anything else (an .md article) is read once saved
    as .txt."""
    advice = []
    if any(name.lower().endswith((".jsonl", ".csv")) for name in skipped):
        advice.append("give a .jsonl or .csv as a path of its own")
    if any(not name.lower().endswith((".jsonl", ".csv")) for name in skipped):
        advice.append("save articles as UTF-8 .txt files")
    return "; ".join(advice)


def skipped_warning(folder: Path, skipped: list[str], suffixes: tuple[str, ...]) -> str:
    """The warning for the files a folder input did not read (``skipped``, paths relative to
    ``folder``) as it reads only files ending in ``suffixes``: ``corpus FOLDER`` (.txt) and
    ``predict --input FOLDER`` (.txt, .jsonl, .csv) say it alike."""
    return (
        f"{folder}: skipped {len(skipped)} file(s) that are not {_either(suffixes, 'or')} "
        f"({first_names(skipped)}): a folder's {_either(suffixes, 'and')} files are read; "
        f"{skipped_advice(skipped)}"
    )


def _either(suffixes: tuple[str, ...], word: str) -> str:
    """(".txt", ".jsonl", ".csv") as ".txt, .jsonl or .csv" (``word``: "or", "and")."""
    return ", ".join(suffixes[:-1]) + f" {word} {suffixes[-1]}" if suffixes[1:] else suffixes[0]


# The keys of an input record that predict reads; every other one is the record's ``meta``.
READ_KEYS = ("id", "text")


@dataclass
class Record:
    line: int
    id: str | None
    text: str | None
    error: str | None = None
    # The record's other fields (a CSV's other columns, a JSON line's other keys), which
    # predict carries to the record's output rows; None when there are none.
    meta: dict | None = None


def read_records(
    path: Path, documents: bool = False, meta: tuple[str, ...] | None = None
) -> Iterator[Record]:
    """Yield records lazily; per-record problems become ``Record.error``.

    ``.txt``: one record per non-blank line, or the whole file as one record with
    ``documents=True``; ``.jsonl``: ``text`` and optional ``id``; ``.csv``: a ``text`` column
    and an optional ``id`` column. A JSON line's other keys and a CSV's other columns (those
    with a name) are the record's ``meta``: all of them, or only those named in ``meta``
    (``predict --meta``; empty: none).
    """
    suffix = path.suffix.lower()
    if path.is_dir():  # whatever its name: a folder of articles too
        raise InputError(f"{path}: a folder, not a file")
    refuse_unless_file(path)  # missing, or a FIFO: said so whatever its name
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported input type; expected .txt, .jsonl or .csv")
    if suffix == ".txt" and documents:
        yield check(Record(1, path.stem, read_text(path)))
        return
    # utf-8-sig: a byte order mark at the start (before a CSV header or the first JSON
    # line) is not part of the data
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        yield from parse_records(handle, suffix, str(path), meta)


def not_standard_input(advice: str) -> InputError:
    """The error for ``-`` given as an input where no file of that name exists: a shell
    user's "standard input", which stancelab never reads; ``advice`` says what to give
    instead (it differs by command)."""
    return InputError(f"'-' is not read from standard input: {advice}")


def refuse_unless_file(path: Path) -> None:
    """InputError unless ``path`` is a regular file: inputs are read through more than once
    (ids checked, records counted, then labelled), which a pipe or FIFO cannot give; "-",
    the shell's standard input, is said so unless a path has that name."""
    if not path.exists():
        if str(path) == "-":
            raise not_standard_input(
                "save the input to a file first and give --input FILE (.txt, .jsonl or .csv)"
            )
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(
            f"{path}: not a regular file (a pipe, FIFO or device); save the input to a file "
            "first, as it is read more than once"
        )


def parse_records(
    handle: TextIO, suffix: str, name: str, meta: tuple[str, ...] | None = None
) -> Iterator[Record]:
    """Records from one open ``.txt``, ``.jsonl`` or ``.csv`` file (not a ``documents``
    ``.txt``: that is one record), for ``read_records`` and the Ray engine's datasource
    (``prediction.cluster``), with the other fields named in ``meta`` (None: all) as
    ``read_records``. Open it with ``errors="surrogateescape"`` and ``newline=""``.
    A file with a NUL byte (UTF-16, or binary) is refused as a whole, as ``read_text``
    refuses it, when the reader meets it: before any record for a UTF-16 file.
    """
    handle = _TextOnly(handle, name)
    if suffix == ".csv":
        for lineno, row, problem in iter_csv(name, handle):
            fields = _meta({k: v for k, v in row.items() if k.strip()}, meta)
            record = Record(lineno, row.get("id") or None, row.get("text"), problem, fields)
            yield check(record, from_file=True)  # a CSV has no escapes: any such byte is read
        return
    for lineno, line in enumerate(_lines(handle), start=1):
        if suffix == ".txt":
            if line.strip():
                yield check(Record(lineno, None, line.rstrip("\r\n")), from_file=True)
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Record(lineno, None, None, f"invalid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            yield Record(lineno, None, None, "expected a JSON object")
            continue
        fields = _meta(row, meta)
        try:
            record_id, problem = id_text(row.get("id")), None
        except ValueError as exc:
            record_id, problem = None, str(exc)
        if problem is None and "text" not in row:  # {"body": ...}: not "must be a string"
            others = [k for k in row if k != "id"]
            shown = first_names([writable(k) for k in others])  # a key's bytes spelled out
            problem = "no 'text' field" + (f" (its fields: {shown})" if others else "")
        text = None if problem else row.get("text")
        # a "\udce9" escape is no byte of the file's: only a line holding one was misread
        # (an ASCII line, most of them, holds none: isascii is a flag, not a scan)
        from_file = not line.isascii() and undecoded_byte(line) is not None
        yield check(Record(lineno, record_id, text, problem, fields), from_file)


def id_text(raw_id: object) -> str | None:
    """A JSON record's ``id`` as text: a string as given, a whole number as its digits
    (``{"id": 7}``: "7"; 7.0, as pandas writes ids), None for none; ValueError for anything
    else: ``str()`` would write ``true`` as "True" and an object as a Python repr."""
    if raw_id is None or isinstance(raw_id, str):
        return raw_id
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        return str(raw_id)
    if isinstance(raw_id, float) and raw_id.is_integer():
        return str(int(raw_id))
    kind = type(raw_id).__name__.replace("dict", "object").replace("list", "array")
    raise ValueError(f"'id' must be a string or a whole number, not {kind}")


def _meta(row: dict, meta: tuple[str, ...] | None = None) -> dict | None:
    """The fields of an input row other than those predict reads (only those named in
    ``meta``, in the row's order, unless it is None), or None; a field keeps its key."""
    return {
        k: v
        for k, v in row.items()
        if k not in READ_KEYS and (meta is None or meta_name(k, meta) is not None)
    } or None


def meta_name(key: str, meta: tuple[str, ...]) -> str | None:
    """The ``--meta`` name (of ``meta``) that the field ``key`` is, or None: a name matches
    a field with white space around it (a spreadsheet's header `date, source`)."""
    name = key.strip()
    return name if name in meta else None


class _TextOnly:
    """A text handle that raises ``files.not_text`` as soon as what it reads holds a NUL."""

    def __init__(self, handle: TextIO, name: str) -> None:
        self.handle, self.name = handle, name

    def _checked(self, text: str) -> str:
        if "\x00" in text:
            raise not_text(self.name)
        return text

    def read(self, size: int = -1) -> str:
        return self._checked(self.handle.read(size))

    def __iter__(self) -> _TextOnly:
        return self

    def __next__(self) -> str:
        return self._checked(next(self.handle))


def _lines(handle: TextIO) -> Iterator[str]:
    """The lines of a ``.txt`` or ``.jsonl`` file, ended by "\n" only: a lone "\r" (which a
    handle opened with ``newline=""`` also breaks at), U+2028 and the like are ordinary
    characters, as everywhere else in stancelab."""
    pending: list[str] = []
    while chunk := handle.read(1 << 16):
        start = 0
        while (end := chunk.find("\n", start)) >= 0:
            pending.append(chunk[start : end + 1])
            yield "".join(pending)
            pending, start = [], end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield "".join(pending)


def check(record: Record, from_file: bool = False) -> Record:
    """Set ``record.error`` (and drop the text) unless the text is a non-empty string and
    the id, if any, can be written (valid Unicode; an id that is not is dropped). The other
    fields are predict's to write (``writable``): ingestion does not read them.
    ``from_file``: the record's line was read as it is in a file, so a byte that was not
    UTF-8 in its text or id (``undecoded_byte``) says that line or the whole file is in
    another encoding (a cp1252 CSV from Excel), and the error says how to mend it."""
    bad_id = None if record.id is None else unicode_problem(record.id)
    if not record.error:
        problem = text_problem(record.text)  # the same rules as predict() on a list
        if problem is not None:
            record.error = f"'text' {_read_problem(record.text, problem, from_file)}"
        elif bad_id is not None:
            record.error = f"'id' {_read_problem(record.id, bad_id, from_file)}"
        if record.error:
            record.text = None
    if bad_id is not None:
        record.id = None  # it could not be written in the error row either
    return record


def _read_problem(value: object, problem: str, from_file: bool) -> str:
    """``problem``, the phrase for a text or id, told as the file's when ``from_file`` and
    ``value`` holds a byte that was not UTF-8 there: that line, or the whole file, is in
    another encoding."""
    at = undecoded_byte(value) if from_file and isinstance(value, str) else None
    if at is None:
        return problem
    return (
        f"has a byte that is not UTF-8 (0x{ord(value[at]) - 0xDC00:02x} at character {at}): "
        f"this line, or the whole file, is in another encoding; {NOT_UTF8_ADVICE}"
    )


def writable(value):
    """``value`` (a record's other field: text, number, list, object) with every string that
    cannot be written as UTF-8 spelled out instead: the bytes a file could not decode as
    ``\\xff`` (they were read as lone surrogates), any other lone surrogate (a JSON
    ``"\\ud800"`` escape) as ``\\ud800``; and a number that JSON has no form for (``NaN``,
    ``Infinity``, which Python's JSON reader takes in) as ``null``, as JavaScript's
    ``JSON.stringify`` and pandas' ``to_json`` write it: the output stays strict JSON, which
    ``jq``, browsers and Label Studio read. Such a field is one predict does not read: the
    record is still labelled, and the escapes show what was there."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        if unicode_problem(value) is None:
            return value
        try:  # bytes that were not UTF-8, as surrogateescape read them
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {writable(k): writable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [writable(v) for v in value]
    return value
