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
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from stancelab.corpus.documents import Document, document_files, read_documents
from stancelab.corpus.paragraphs import paragraphs
from stancelab.corpus.splitting import ends_like_sentence, split_sentences
from stancelab.corpus.text import one_line
from stancelab.files import (
    check_output_path,
    followed,
    output_lock,
    refuse_existing,
    refuse_input_as_output,
    write_jsonl,
)
from stancelab.paths import SENTENCES_PATH


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
        refuse_input_as_output(target, document_files(paths))
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
