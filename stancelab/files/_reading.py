"""Reading: UTF-8 text, CSV and JSONL records, JSON objects, checksums."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

from stancelab.errors import InputError

# How to mend a file with bytes that are not UTF-8: most often a Windows tool's (Excel's
# "CSV", Notepad's "ANSI"), which writes cp1252 throughout; but a UTF-8 file with a few lines
# pasted in from elsewhere would be garbled by converting all of it.
NOT_UTF8_ADVICE = (
    "a file saved on Windows is most often cp1252 throughout: "
    "iconv -f cp1252 -t utf-8 FILE > NEW (if only some lines are, mend those lines)"
)


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, or raise InputError naming the file and the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_text(raw, path)


def decode_text(raw: bytes, path: str | os.PathLike) -> str:
    """A file's bytes as text (UTF-8, BOM dropped), or InputError naming the file."""
    if b"\x00" in raw:
        raise not_text(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid UTF-8 (byte {exc.start}): the file, or part of it, is in "
            f"another encoding; {NOT_UTF8_ADVICE}"
        ) from None
    return text


def not_text(path: str | os.PathLike) -> InputError:
    """The error for a file that holds a NUL byte: never in UTF-8 text, but in every line of
    a UTF-16 file (as Windows tools save "Unicode" text) and in binary files."""
    return InputError(
        f"{path}: looks like a binary file (contains NUL bytes), expected UTF-8 text "
        "(re-save a UTF-16 file as UTF-8)"
    )


CSV_FIELD_LIMIT = 1 << 24  # characters in one CSV field: a long article, not a runaway quote


class _CsvLines:
    """The lines ``csv`` reads from a handle, counted: where the record being read began
    (its first line that is not empty), and whether the end of the file came inside it."""

    def __init__(self, handle: Iterable[str]) -> None:
        self.lines = iter(handle)
        self.number = 0  # lines read so far
        self.first: int | None = None
        self.ended = False

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self.lines)
        except StopIteration:
            self.ended = True
            raise
        self.number += 1
        if self.first is None and line.strip("\r\n"):
            self.first = self.number
        return line

    def next_record(self) -> None:
        self.first, self.ended = None, False


def _header_hint(fields: list[str] | None) -> str:
    """What a header without ``text`` most likely means: a spreadsheet saved with ';' or
    tabs between columns (a European locale's CSV), or the name in other capitals."""
    if fields and len(fields) == 1:
        for mark, name in ((";", "semicolons"), ("\t", "tabs")):
            if mark in fields[0]:
                return f"; its columns are separated by {name}: save it with commas"
    named = [f for f in fields or [] if f.strip().lower() == "text"]
    return f"; the name is 'text' exactly, not {named[0]!r}" if named else ""


def iter_csv(path: str | os.PathLike, handle: IO[str]) -> Iterator[tuple[int, dict, str | None]]:
    """Yield (line number, row, problem) for each row of a CSV with a ``text`` column; the
    line number is the row's first line (a quoted field may hold line breaks).

    ``problem`` is None for a good row. A row with more fields than the header (most often
    a text with an unquoted comma) is a problem, never silently cut to the header's width;
    so is a row too short to reach the ``text`` column.
    A header that names a column twice (blank names aside) is an InputError: only one of
    the two could be read. A quoted field whose closing quote never comes (a stray quote,
    which would swallow every row after it) is an InputError naming the line where the field
    opened, as is a field past ``CSV_FIELD_LIMIT``. Open ``handle`` with
    ``encoding="utf-8-sig"`` and ``newline=""`` (a byte order mark before the header is not
    part of the first column's name).
    """
    # A field may be a whole article: the csv module's default cap (131,072 characters) is
    # far too low. Raised for the process, never lowered.
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    lines = _CsvLines(handle)
    reader = csv.DictReader(lines)
    try:
        fields = reader.fieldnames
    except csv.Error as exc:
        raise InputError(f"{path}:{lines.number}: not a readable CSV ({exc})") from None
    if fields is None or "text" not in fields:
        raise InputError(
            f"{path}: CSV needs a 'text' column (found: {fields or 'none'}){_header_hint(fields)}"
        )
    twice = sorted({name for name in fields if name.strip() and fields.count(name) > 1})
    if twice:  # DictReader keeps the last column of a name: the others would be lost unsaid
        columns = ", ".join(
            f"{name!r} (columns {', '.join(str(i + 1) for i, f in enumerate(fields) if f == name)})"
            for name in twice
        )
        raise InputError(
            f"{path}:{lines.number}: the header names {columns} more than once; give each "
            "column its own name"
        )
    while True:
        lines.next_record()
        try:
            row = next(reader, None)
        except csv.Error as exc:  # the parser cannot go on past this point
            where = f"{lines.first}" if lines.first else f"{lines.number}"
            raise InputError(
                f"{path}:{where}: not a readable CSV ({exc}; the record that begins on line "
                f"{where} goes on to line {lines.number}: a stray quote?)"
            ) from None
        if row is None:
            return
        extra = row.pop(None, None)  # DictReader's key for fields past the header
        if lines.ended:  # the file ended inside a quoted field: its quote never closed
            parsed = [v for v in [*row.values(), *(extra or [])] if v is not None]
            opened = _opening_line(lines.number, parsed[-1])  # the last field read is open
            raise InputError(
                f"{path}:{opened}: a quoted field opens here and never closes (a stray "
                '"?); quote a whole field, and double a quote inside it ("")'
            )
        problem = None
        if extra is not None:
            problem = (
                f"{len(fields) + len(extra)} fields but the header has {len(fields)} "
                "(quote a text that contains a comma)"
            )
        elif row.get("text") is None:  # DictReader fills the fields a short row lacks with None
            given = sum(value is not None for value in row.values())
            problem = f"{given} field(s) but the header has {len(fields)}: no 'text'"
        yield lines.first or lines.number, row, problem


def _opening_line(last: int, field: str) -> int:
    """The line on which a quoted field that ran to the end of the file (on line ``last``)
    opened: ``csv`` keeps every line break inside a quoted field as it was."""
    breaks = len(re.findall(r"\r\n|\r|\n", field))
    return last - breaks + field.endswith(("\r", "\n"))


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; InputError on malformed JSON.

    Lines end at "\n" only (a "\r" before it is white space to JSON): U+2028, U+2029 and
    U+0085, which ``str.splitlines`` would also break at, are ordinary characters inside a
    JSON string, and every writer here leaves them raw.
    """
    path = Path(path)
    text = read_text(path)
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def read_json_object(path: str | os.PathLike) -> dict:
    """Read a JSON file holding an object; InputError if it is missing or malformed."""
    path = Path(path)
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object")
    return obj


def checksum_path(path: Path) -> Path:
    """Where a file's recorded SHA-256 lives: beside it, ``<name>.sha256``, in ``sha256sum``
    format (exports of annotations, ONNX exports)."""
    return path.with_name(path.name + ".sha256")


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return sha256_digest(handle).hexdigest()


def sha256_digest(handle: IO[bytes], size: int | None = None):
    """A ``hashlib`` SHA-256 of what ``handle`` holds from where it stands, or of its next
    ``size`` bytes, read in 1 MiB blocks; it can be updated further."""
    digest = hashlib.sha256()
    left = float("inf") if size is None else size
    while left > 0 and (block := handle.read(min(left, 1 << 20))):
        digest.update(block)
        left -= len(block)
    return digest


class FolderFiles(NamedTuple):
    """A folder's files, each in name order: ``read`` has one of the suffixes asked for;
    ``skipped`` has not; ``hidden`` has a name in its path within the folder that begins
    with a hidden prefix (these are in neither of the others)."""

    read: list[Path]
    skipped: list[Path]
    hidden: list[Path]


def walk_folder(
    folder: Path, suffixes: tuple[str, ...], hidden: tuple[str, ...] = (".",)
) -> FolderFiles:
    """The files of ``folder`` and its subfolders, following links to folders (``rglob``
    does not before Python 3.13, so a linked folder's files were left out in silence); a link
    back to a folder it lies in is not followed again, so a loop of links ends. The one walk
    of an input folder, for ``corpus FOLDER`` and ``predict --engine ray --input FOLDER``."""
    read: list[Path] = []
    skipped: list[Path] = []
    hidden_files: list[Path] = []
    chains = {str(folder): {os.path.realpath(folder)}}  # a folder's real path and its parents'
    for root, folders, names in os.walk(folder, followlinks=True):
        chain = chains.pop(root)
        kept = []
        for name in folders:
            real = os.path.realpath(os.path.join(root, name))
            if real not in chain:
                kept.append(name)
                chains[os.path.join(root, name)] = chain | {real}
        folders[:] = kept
        for name in names:
            path = Path(root, name)
            if not path.is_file():  # a broken link, a FIFO
                continue
            if any(part.startswith(hidden) for part in path.relative_to(folder).parts):
                hidden_files.append(path)
            elif path.suffix.lower() in suffixes:
                read.append(path)
            else:
                skipped.append(path)
    return FolderFiles(sorted(read), sorted(skipped), sorted(hidden_files))
