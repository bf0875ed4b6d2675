"""Documents to read: folders of ``.txt`` articles, ``.txt`` files, and JSONL or CSV files
of records (``text``, optional ``id``), each checked as it is read (``InputError`` names the
file and line); ids repeated between documents are refused (``refuse_repeated_ids``, also
used by ``predict``). ``corpus.ingest`` segments what these give."""

from __future__ import annotations

import hashlib
import warnings
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from stancelab.corpus.readers import (
    not_standard_input,
    read_records,
    skipped_advice,
    skipped_warning,
)
from stancelab.corpus.text import first_names, text_problem
from stancelab.files import InputError, read_text, walk_folder


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    source: str  # the file it came from, for error messages


def read_documents(paths: Iterable[str | Path]) -> list[Document]:
    """Read documents from folders, .txt, .jsonl and .csv files; InputError on bad input."""
    documents: list[Document] = []
    for path in map(Path, paths):
        if path.is_dir():
            files, skipped, _ = walk_folder(path, (".txt",))
            others = [p.relative_to(path).as_posix() for p in skipped]
            shown = first_names(others)
            if not files:
                held = f"; it holds {shown}: {skipped_advice(others)}" if others else ""
                raise InputError(f"{path}: folder has no .txt files{held}")
            if others:  # an analyst's .md or .csv beside the .txt files: not read, never unsaid
                warnings.warn(skipped_warning(path, others, (".txt",)), stacklevel=2)
            documents.extend(_read_txt(p, p.relative_to(path).with_suffix("")) for p in files)
        elif not path.exists():
            if str(path) == "-":
                raise not_standard_input(
                    "save the text to a file first and give files or folders (a .txt file is "
                    "one article; a .jsonl or .csv file holds one per record)"
                )
            raise InputError(f"{path}: no such file or folder")
        elif path.suffix.lower() == ".txt":
            documents.append(_read_txt(path))
        elif path.suffix.lower() in (".jsonl", ".csv"):
            documents.extend(_read_rows(path))
        else:
            raise InputError(
                f"{path}: unsupported input type; expected a folder, .txt, .jsonl or .csv"
            )
    refuse_repeated_ids((doc.doc_id, doc.source) for doc in documents)
    return documents


def refuse_repeated_ids(
    ids: Iterable[tuple[str, str]] | Callable[[], Iterable[tuple[str, str]]],
    *,
    documents: bool = True,
) -> None:
    """InputError naming both places when two documents have the same id, which begins the
    ids of their sentences (two would share an id). ``ids``: (id, where it was read) in
    reading order, or a function that gives them anew. Used by ``read_documents`` and by
    ``predict --documents``; with ``documents=False`` by line-mode ``predict``, whose
    records are rows, not documents: two output rows would share the id that ``label push``
    and joins match them on.

    Memory stays at 8 bytes per record, not the ids (an input of millions of rows): a first
    pass keeps each id's hash, and only when two hashes are alike does a second pass (the
    function called again) compare the ids that have them."""
    import numpy as np

    if not callable(ids):
        pairs = list(ids)
        ids = lambda: pairs  # noqa: E731 - the same pairs for the second pass
    hashes = np.array(array("q", (hash(doc_id) for doc_id, _ in ids())), dtype=np.int64)
    hashes.sort()
    suspects = set(hashes[1:][hashes[1:] == hashes[:-1]].tolist())
    if not suspects:
        return
    first: dict[str, str] = {}
    for doc_id, where in ids():
        if hash(doc_id) not in suspects:
            continue
        if doc_id in first:  # by id, not by place: two places may be written alike
            what, advice = (
                (
                    "document id",
                    "give each document its own id (the ids of its sentences begin with it)",
                )
                if documents
                else (
                    "id",
                    "give each record its own id (output rows are matched on it), or rename "
                    "the column or key if it is not a record's own (a speaker's, a "
                    "document's): it is then carried as meta",
                )
            )
            raise InputError(
                f"{where}: {what} {doc_id!r} is also that of {first[doc_id]}; {advice}"
            )
        first[doc_id] = where


def document_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every file that ``read_documents(paths)`` reads (the folders' .txt files, the other
    paths as given), for ``ingest`` to refuse an output that is one of them."""
    out: list[Path] = []
    for path in map(Path, paths):
        out.extend(walk_folder(path, (".txt",)).read if path.is_dir() else [path])
    return out


def _read_txt(path: Path, doc_id: Path | None = None) -> Document:
    text = read_text(path)
    if text_problem(text) is not None:
        raise InputError(f"{path}: file is empty (only white space or invisible characters)")
    # A file in a subfolder is named by its relative path: "2024/article".
    return Document((doc_id or Path(path.stem)).as_posix(), text, str(path))


def _read_rows(path: Path) -> list[Document]:
    """Documents from a .jsonl or .csv file (``corpus.readers``); any bad row is an error."""
    documents = []
    for record in read_records(path):
        where = f"{path}:{record.line}"
        if record.error:
            raise InputError(f"{where}: {record.error}")
        if record.id is not None and not record.id.strip():  # "" would name every sentence
            raise InputError(f"{where}: 'id' is blank; give a document id or leave 'id' out")
        doc_id = (
            record.id.strip()
            if record.id
            else f"{path.stem}-{hashlib.sha256(record.text.encode('utf-8')).hexdigest()[:12]}"
        )
        documents.append(Document(doc_id, record.text, where))
    if not documents:
        raise InputError(f"{path}: no documents in file")
    return documents
