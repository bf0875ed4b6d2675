"""Corpus ingestion: documents in, clean and traceable sentences out.

Run it as ``stancelab corpus [PATH ...] [--out FILE]`` (defaults: ``seeds/`` and
``data/sentences.jsonl``). Inputs are a folder of ``.txt`` files, ``.txt`` files, JSONL files
(``text``, optional ``id``) or CSV files (``text`` column, optional ``id``).

Each output row has a stable ``id`` (document id + a hash of the sentence's own text), the
``doc_id``, the ``index`` in the document, the ``text``, ``start``/``end`` offsets such that
``document[start:end] == text``, and ``headline``. Page furniture is dropped by the explicit
rules in ``FURNITURE``; every dropped line goes to a side file with its reason, so nothing
disappears silently.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from stancelab.corpus.paragraphs import paragraphs
from stancelab.corpus.readers import read_records
from stancelab.corpus.splitting import ends_like_sentence, split_sentences
from stancelab.corpus.text import one_line, text_problem
from stancelab.files import (
    InputError,
    check_output_path,
    followed,
    output_lock,
    read_text,
    refuse_existing,
    refuse_input_as_output,
    write_jsonl,
)
from stancelab.paths import SENTENCES_PATH


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    source: str  # the file it came from, for error messages


@dataclass(frozen=True)
class Sentence:
    id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int
    headline: bool


@dataclass(frozen=True)
class Dropped:
    doc_id: str
    reason: str
    text: str
    start: int
    end: int


# Page furniture: (reason, pattern matched against a whole stripped line).
FURNITURE: tuple[tuple[str, re.Pattern], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        ("read-more link", r"(read more|also read|read also|see also)\s*:.*"),
        (
            "share widget",
            r"share( this( article)?)?( and analy[sz]e with ai)?|share and analy[sz]e with ai",
        ),
        ("author widget", r"\+\s*posts?|\d+\s+posts?|view all posts.*"),
        (
            "related posts",
            r"related (posts|articles|stories|news)|more stories|recommended( for you)?",
        ),
        ("search widget", r"search|search (for|here|this site)\s*:?"),
        (
            "bookmark widget",
            r"saved articles|browse articles|bookmarks?|"
            r"you have not yet added any articles? to your bookmarks!?",
        ),
        (
            "desk byline",
            r"([A-Z][\w.]*\s+){0,3}(desk|bureau|staff|correspondent|reporter|newsroom)",
        ),
        (
            "byline",
            r"(by|written by|reporting by|edited by)\s+[A-Z][\w.'’-]*(\s+[A-Z][\w.'’-]*){0,3}",
        ),
        (
            "photo credit",
            r".*\((?:[A-Z][\w.]*\s+)*(?:photo|photograph|image|file photo)s?\)|"
            r"(photo|image|credit)\s*:.*|.*\b(getty images|reuters photo|afp photo|ap photo)\b.*",
        ),
        ("tag list", r"[^\W\d][^.!?,:;]{0,40}(,\s*[^.!?,:;\s][^.!?,:;]{0,40}){3,}"),
    )
)
_UNPUNCTUATED = frozenset({"tag list", "byline", "desk byline"})
# A dateline such as "Islamabad (TDI): " opens the first sentence; it is cut off, not kept.
DATELINE = re.compile(r"^[A-Z][A-Za-z .'-]{1,40}\s\([A-Z]{2,}[A-Za-z]*\)\s*[:—–-]\s*")
# The version of the rules that split a document into sentences; a resumed ``predict
# --documents`` run must have begun under the same (2: hard-wrapped lines are joined).
SPLITTING = 2
SHORT_TAG_MAX_WORDS = 3  # "Pakistan", "Khawaja Asif-Pakistan": a label line, not prose


def classify_line(line: str, *, first: bool) -> str | None:
    """Return the furniture reason for a whole line, or None if it is text to keep."""
    reason = _furniture_rule(line)
    if reason is not None:
        return reason
    stripped = line.strip()
    if (
        not first
        and not ends_like_sentence(stripped)
        and len(stripped.split()) <= SHORT_TAG_MAX_WORDS
    ):
        return "short tag line"
    return None


def is_furniture(line: str) -> bool:
    """Whether one line matches a ``FURNITURE`` rule (for ``corpus.paragraphs``)."""
    return _furniture_rule(line) is not None


def _furniture_rule(line: str) -> str | None:
    """The reason of the ``FURNITURE`` rule a whole line matches, or None."""
    stripped = line.strip()
    for reason, pattern in FURNITURE:
        if pattern.fullmatch(stripped):
            if reason in _UNPUNCTUATED and ends_like_sentence(stripped):
                continue  # a real sentence that happens to look like a byline or a list
            return reason
    return None


def sentence_id(doc_id: str, text: str, occurrence: int = 1) -> str:
    digest = hashlib.sha256(one_line(text).encode("utf-8")).hexdigest()[:12]
    return f"{doc_id}-{digest}" + (f"-{occurrence}" if occurrence > 1 else "")


def segment_document(doc: Document) -> tuple[list[Sentence], list[Dropped]]:
    """Split one document into sentences, dropping and recording page furniture."""
    sentences: list[Sentence] = []
    dropped: list[Dropped] = []
    seen: Counter[str] = Counter()
    first = True
    for offset, stop in paragraphs(doc.text, is_furniture):
        line = doc.text[offset:stop]
        # A paragraph joined from wrapped lines is furniture as one line would be.
        reason = classify_line(one_line(line), first=first)
        if reason is not None:
            dropped.append(Dropped(doc.doc_id, reason, line.strip(), offset, stop))
            first = False
            continue
        dateline = DATELINE.match(line)
        if dateline:
            dropped.append(
                Dropped(
                    doc.doc_id,
                    "dateline",
                    dateline.group().strip(),
                    offset,
                    offset + dateline.end(),
                )
            )
        body_start = dateline.end() if dateline else 0
        # A wrapped paragraph's line breaks are spaces to the splitter (same offsets).
        spans = split_sentences(re.sub(r"[\r\n]", " ", line[body_start:]))
        is_headline = len(spans) == 1 and not ends_like_sentence(line)
        for start, end in spans:
            start, end = start + offset + body_start, end + offset + body_start
            text = doc.text[start:end]
            seen[text] += 1
            sentences.append(
                Sentence(
                    id=sentence_id(doc.doc_id, text, seen[text]),
                    doc_id=doc.doc_id,
                    index=len(sentences),
                    text=text,
                    start=start,
                    end=end,
                    headline=is_headline,
                )
            )
        first = False
    return sentences, dropped


def read_documents(paths: Iterable[str | Path]) -> list[Document]:
    """Read documents from folders, .txt, .jsonl and .csv files; InputError on bad input."""
    documents: list[Document] = []
    for path in map(Path, paths):
        if path.is_dir():
            files, others = folder_files(path), _other_files(path)
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            if not files:
                held = f"; it holds {shown}: save articles as UTF-8 .txt files" if others else ""
                raise InputError(f"{path}: folder has no .txt files{held}")
            if others:  # an analyst's .md or .csv beside the .txt files: not read, never unsaid
                warnings.warn(
                    f"{path}: skipped {len(others)} file(s) that are not .txt ({shown}): a "
                    "folder's .txt files are read; give a .jsonl or .csv as a path of its own",
                    stacklevel=2,
                )
            documents.extend(_read_txt(p, p.relative_to(path).with_suffix("")) for p in files)
        elif not path.exists():
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


def folder_files(folder: Path) -> list[Path]:
    """The ``.txt`` files of a folder and its subfolders, in name order; hidden files and
    folders (a name starting with ".", such as editor lock files) are skipped."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() == ".txt"
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _other_files(folder: Path) -> list[str]:
    """The files of a folder that ``folder_files`` does not read (not ``.txt``), hidden ones
    aside, as paths within it, in name order."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.suffix.lower() != ".txt"
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def input_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every file that ``read_documents(paths)`` reads."""
    out: list[Path] = []
    for path in map(Path, paths):
        out.extend(folder_files(path) if path.is_dir() else [path])
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


def dropped_path(out: str | Path) -> Path:
    """The side file of the lines dropped beside the output ``out`` (``corpus`` and
    ``predict --documents``): ``.dropped`` before a ``.jsonl`` suffix (``OUT.jsonl`` ->
    ``OUT.dropped.jsonl``), else after the whole name (``run.v1`` -> ``run.v1.dropped``), so
    that no two outputs share one. Cutting any last suffix gave ``run.v1`` and ``run.v2``
    the same side file; adding ``.dropped.jsonl`` would give ``run`` that of ``run.jsonl``."""
    out = Path(out)
    if out.suffix.lower() == ".jsonl":
        return out.with_name(f"{out.stem}.dropped{out.suffix}")
    return out.with_name(f"{out.name}.dropped")


def holds_own_side_file(out: Path) -> bool:
    """Whether the file at ``dropped_path(out)`` is provably the side file written with the
    output ``out``: ``out`` holds sentences as ``corpus`` and ``predict --documents`` write
    them (its first row has a ``doc_id``, which no line-mode row has), and the side file is
    a regular file holding only dropped lines as they write them (or none). An empty ``out``
    is a ``--documents`` run's that dropped every line: its side file holds them (an empty
    one beside it proves nothing). A file of the user's, or a line-mode output, given that
    name is not one."""
    side = dropped_path(out)
    if side.is_symlink() or not side.is_file():
        return False
    try:
        with open(out, encoding="utf-8") as rows:
            first = rows.readline()
        if first and "doc_id" not in _object(first):
            return False
        held = 0
        with open(side, encoding="utf-8") as lines:
            for line in lines:
                if set(_object(line)) - {"line"} != _DROPPED_KEYS:
                    return False
                held += 1
        return bool(first) or held > 0
    except (OSError, UnicodeDecodeError, ValueError):
        return False


_DROPPED_KEYS = {f.name for f in fields(Dropped)}  # predict --documents adds the input "line"


def _object(line: str) -> dict:
    found = json.loads(line)
    if not isinstance(found, dict):
        raise ValueError("not a JSON object")
    return found


def ingest(
    paths: Iterable[str | Path], out: str | Path = SENTENCES_PATH, *, overwrite: bool = False
) -> tuple[list[Sentence], list[Dropped]]:
    """Segment all documents and write the sentences and the dropped lines atomically.

    An output (or its side file of dropped lines) that is one of the inputs is refused, even
    with ``overwrite``; one that exists is refused unless ``overwrite``; so is one that is a
    folder or cannot be written, and a second writer of the same output at once. All is
    checked before anything is written."""
    paths, out = list(paths), followed(out)
    targets = (out, dropped_path(out))
    for target in targets:
        refuse_input_as_output(target, input_files(paths))
    documents = read_documents(paths)
    for target in targets:
        check_output_path(target, "--out", jsonl=True)
    sentences: list[Sentence] = []
    dropped: list[Dropped] = []
    for doc in documents:
        kept, lost = segment_document(doc)
        sentences.extend(kept)
        dropped.extend(lost)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out, "stancelab corpus", "--out"):
        if not overwrite:
            for target in targets:
                refuse_existing(target, "--out")
        write_jsonl(targets[1], (asdict(d) for d in dropped))
        write_jsonl(out, (asdict(s) for s in sentences))
    return sentences, dropped
