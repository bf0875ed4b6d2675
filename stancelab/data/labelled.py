"""Labelled data: the gold set, the augmentation set, and any user file in the same format.

The format every training and evaluation command accepts is JSONL with ``text`` and
``labels`` (a list of label names; ``[]`` = none), plus optional ``id``, ``doc_id`` and
``source``. Labels are validated against the scheme; nothing is silently coerced.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from stancelab.corpus.readers import id_text
from stancelab.corpus.text import text_problem, unicode_problem
from stancelab.errors import InputError
from stancelab.files import TABULAR, iter_jsonl
from stancelab.labels import LABELS, UnknownLabelError, normalize
from stancelab.paths import AUGMENT_DIR


@dataclass
class LabelledSet:
    """Parallel lists of sentences and their label sets."""

    ids: list[str]
    texts: list[str]
    labels: list[tuple[str, ...]]
    doc_ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    dyads: list[str] = field(default_factory=list)  # the conflict of an authored sentence

    def __post_init__(self) -> None:
        n = len(self.texts)
        for name in ("doc_ids", "sources", "dyads"):
            if not getattr(self, name):
                setattr(self, name, [""] * n)
        if len({len(column) for column in self._columns().values()}) != 1:
            raise ValueError("LabelledSet fields have different lengths")

    def _columns(self) -> dict[str, list]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> np.ndarray:
        """Multi-hot matrix (n, len(LABELS)) in scheme order."""
        return label_matrix(self.labels)

    @property
    def groups(self) -> list[str]:
        """Where each sentence comes from, held out as a whole: its article, else its dyad;
        a sentence with neither is a group of its own, keyed by its id, so that its copies
        (``with_corpus_repeated``) share the group and are never split by it."""
        return [
            d or (f"dyad:{c}" if c else f"row:{r}" if r else f"row#{i}")
            for i, (d, c, r) in enumerate(zip(self.doc_ids, self.dyads, self.ids, strict=True))
        ]

    def subset(self, index: Sequence[int] | np.ndarray) -> LabelledSet:
        idx = [int(i) for i in index]
        return LabelledSet(**{k: [v[i] for i in idx] for k, v in self._columns().items()})

    def concat(self, other: LabelledSet) -> LabelledSet:
        return LabelledSet(**{k: v + getattr(other, k) for k, v in self._columns().items()})

    def with_corpus_repeated(self, times: int) -> LabelledSet:
        """This set with each corpus sentence (source ``corpus``) ``times`` times in all,
        the others once; a copy keeps its id and doc_id, so it stays in its article's group."""
        corpus = [i for i, source in enumerate(self.sources) if source == "corpus"]
        return self.concat(self.subset(corpus * (times - 1)))

    def checksum(self) -> str:
        """SHA-256 over (id, text, labels) rows: identifies exactly what a model was fit on."""
        digest = hashlib.sha256()
        for row in zip(self.ids, self.texts, self.labels, strict=True):
            digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()


def label_matrix(label_sets: Iterable[Iterable[str]]) -> np.ndarray:
    rows = [set(normalize(labels)) for labels in label_sets]
    return np.array(
        [[int(name in row) for name in LABELS] for row in rows], dtype=np.int64
    ).reshape(len(rows), len(LABELS))


def load_labelled(path: str | Path, *, default_source: str = "") -> LabelledSet:
    """Read a labelled JSONL file; InputError names the line of any bad row: a text that
    prediction would refuse (``text_problem``: empty or invisible, a NUL, not valid Unicode),
    or a field that cannot be written as UTF-8 (an export, a run's checksum)."""
    path = Path(path)
    if path.suffix.lower() in TABULAR:  # a held-out sheet; as JSON: "invalid JSON"
        raise InputError(
            f'{path}: a labelled file is JSON Lines, one {{"text": ..., "labels": [...]}} '
            f"object per line, not {path.suffix}; write each row so, in a .jsonl file"
        )
    ids, texts, labels, doc_ids, sources, dyads = [], [], [], [], [], []
    seen: set[str] = set()
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        text = row.get("text")
        problem = text_problem(text)
        if problem is not None:
            raise InputError(f"{where}: 'text' {problem}")
        if "labels" not in row:
            raise InputError(f"{where}: missing 'labels' (use [] for a sentence with no stance)")
        raw = row["labels"]
        if not isinstance(raw, list):
            raise InputError(f"{where}: 'labels' must be a list of label names")
        try:
            labels.append(normalize(raw, where=where))
        except UnknownLabelError as exc:
            raise InputError(str(exc)) from None
        try:
            given = id_text(row.get("id"))
        except ValueError as exc:  # {"id": true} was "True", {"id": 0} the line's name
            raise InputError(f"{where}: {exc}") from None
        row_id = given or f"{path.stem}:{lineno}"
        if row_id in seen:
            raise InputError(f"{where}: duplicate id {row_id!r}")
        seen.add(row_id)
        kept = {
            "id": row_id,
            "doc_id": str(row.get("doc_id") or ""),
            "source": str(row.get("source") or default_source),
            "dyad": str(row.get("dyad") or ""),
        }
        for name, value in kept.items():
            if (problem := unicode_problem(value)) is not None:
                raise InputError(f"{where}: {name!r} {problem}")
        ids.append(row_id)
        texts.append(text)
        doc_ids.append(kept["doc_id"])
        sources.append(kept["source"])
        dyads.append(kept["dyad"])
    if not texts:
        raise InputError(f"{path}: no labelled rows")
    return LabelledSet(ids, texts, labels, doc_ids, sources, dyads)


def augmentation_files(directory: str | Path = AUGMENT_DIR) -> list[Path]:
    """The augmentation folder's ``.jsonl`` files, the suffix in any case (``X.JSONL`` from
    another system too: skipping it would train on less in silence), in name order."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() == ".jsonl" and p.is_file())


def load_augmentation(directory: str | Path = AUGMENT_DIR) -> LabelledSet:
    """All ``.jsonl`` files of the augmentation folder (``augmentation_files``), in name order."""
    directory = Path(directory)
    files = augmentation_files(directory)
    if not files:
        raise InputError(f"{directory}: no augmentation .jsonl files")
    parts = [load_labelled(f, default_source="authored") for f in files]
    out = parts[0]
    for part in parts[1:]:
        out = out.concat(part)
    if len(set(out.ids)) != len(out.ids):
        raise InputError(f"{directory}: duplicate ids across augmentation files")
    check_dyad_spellings(out.ids, out.dyads, directory)
    return out


_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_/]+")


def check_dyad_spellings(ids: Sequence[str], dyads: Sequence[str], where: str | Path) -> None:
    """Refuse two spellings of one dyad ("Israel–Hamas", "israel - hamas", "Israel Hamas",
    "Hamas–Israel"): folds and held-out parts of whole dyads would treat them as two
    conflicts, one on each side. A spelling is folded to its words in sorted order, since
    spaces and dashes are folded alike and cannot tell the two sides apart."""
    spellings: dict[str, tuple[str, str]] = {}  # folded spelling -> (first spelling, its row)
    for row_id, dyad in zip(ids, dyads, strict=True):
        if not dyad:
            continue
        key = "-".join(sorted(_SEPARATORS.sub("-", dyad.casefold()).strip("-").split("-")))
        other, other_id = spellings.setdefault(key, (dyad, row_id))
        if other != dyad:
            raise InputError(
                f"{where}: the dyads {other!r} (row {other_id}) and {dyad!r} (row {row_id}) "
                "differ only in case, spaces, dashes, slashes or the order of their sides; "
                "spell each conflict one way, or they count as two conflicts"
            )
