"""Labelled data: the gold set, the augmentation set, and any user file in the same format.

The format every training and evaluation command accepts is JSONL with ``text`` and
``labels`` (a list of label names; ``[]`` = none), plus optional ``id``, ``doc_id`` and
``source``. Labels are validated against the scheme; nothing is silently coerced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stancelab.errors import InputError
from stancelab.files import iter_jsonl
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

    def __post_init__(self) -> None:
        n = len(self.texts)
        if not self.doc_ids:
            self.doc_ids = [""] * n
        if not self.sources:
            self.sources = [""] * n
        lengths = {len(self.ids), n, len(self.labels), len(self.doc_ids), len(self.sources)}
        if len(lengths) != 1:
            raise ValueError("LabelledSet fields have different lengths")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> np.ndarray:
        """Multi-hot matrix (n, len(LABELS)) in scheme order."""
        return label_matrix(self.labels)

    def subset(self, index: Sequence[int] | np.ndarray) -> LabelledSet:
        idx = [int(i) for i in index]
        return LabelledSet(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            doc_ids=[self.doc_ids[i] for i in idx],
            sources=[self.sources[i] for i in idx],
        )

    def concat(self, other: LabelledSet) -> LabelledSet:
        return LabelledSet(
            ids=self.ids + other.ids,
            texts=self.texts + other.texts,
            labels=self.labels + other.labels,
            doc_ids=self.doc_ids + other.doc_ids,
            sources=self.sources + other.sources,
        )

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
    """Read a labelled JSONL file; InputError names the line of any bad row."""
    path = Path(path)
    ids, texts, labels, doc_ids, sources = [], [], [], [], []
    seen: set[str] = set()
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: 'text' must be a non-empty string")
        if "labels" not in row:
            raise InputError(f"{where}: missing 'labels' (use [] for a sentence with no stance)")
        raw = row["labels"]
        if not isinstance(raw, list):
            raise InputError(f"{where}: 'labels' must be a list of label names")
        try:
            labels.append(normalize(raw, where=where))
        except UnknownLabelError as exc:
            raise InputError(str(exc)) from None
        row_id = str(row.get("id") or f"{path.stem}:{lineno}")
        if row_id in seen:
            raise InputError(f"{where}: duplicate id {row_id!r}")
        seen.add(row_id)
        ids.append(row_id)
        texts.append(text)
        doc_ids.append(str(row.get("doc_id") or ""))
        sources.append(str(row.get("source") or default_source))
    if not texts:
        raise InputError(f"{path}: no labelled rows")
    return LabelledSet(ids, texts, labels, doc_ids, sources)


def load_augmentation(directory: str | Path = AUGMENT_DIR) -> LabelledSet:
    """All ``*.jsonl`` files of the augmentation folder, in name order."""
    directory = Path(directory)
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise InputError(f"{directory}: no augmentation .jsonl files")
    parts = [load_labelled(f, default_source="authored") for f in files]
    out = parts[0]
    for part in parts[1:]:
        out = out.concat(part)
    if len(set(out.ids)) != len(out.ids):
        raise InputError(f"{directory}: duplicate ids across augmentation files")
    return out
