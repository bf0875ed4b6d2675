"""The model interface both models share, and the manifest every model directory holds.

Every model is a ``StanceModel``: ``fit(texts, label_sets)`` returns self;
``predict_proba(texts)`` gives calibrated per-label probabilities, shape (n, len(LABELS)) in
scheme order; ``predict(texts)`` gives label tuples (``()`` = none) by applying the per-label
``thresholds_``; ``save(dir)`` writes a self-describing directory;
``stancelab.models.registry.load_model(dir)`` reads any of them. ``predict`` and
``predict_proba`` take one string or a list of strings.

A model directory always holds ``stancelab.json`` (the manifest: kind, labels, thresholds,
calibration, format version); the kind-specific files sit beside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stancelab.corpus.text import model_text, text_problem
from stancelab.errors import ConfigError, ModelLoadError
from stancelab.files import sha256_file
from stancelab.labels import LABELS

if TYPE_CHECKING:
    from stancelab.config import RunConfig

MANIFEST = "stancelab.json"
FORMAT_VERSION = 1
# How a model fitted by this stancelab reads text (``corpus.text.model_text``), recorded as
# the manifest's ``text_form``. A model saved before has none, and reads text as given: a
# model always reads text as it did when it was fitted.
TEXT_FORM = "ascii-compatible"


def as_text_list(texts: str | Sequence[str]) -> list[str]:
    """Validate input texts: one string or a list of strings, none empty.

    Raises TypeError for non-strings and ValueError for empty, blank or invisible-only
    strings and for strings that are not valid Unicode, naming the offending index.
    """
    if isinstance(texts, str):
        items, single = [texts], True
    elif isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a string or a list of strings, not {type(texts).__name__}")
    else:
        items, single = list(texts), False
    for i, text in enumerate(items):
        problem = text_problem(text)
        if problem is not None:
            where = "" if single else f" at index {i}"
            error = TypeError if not isinstance(text, str) else ValueError
            raise error(f"text{where} {problem}")
    return items


# The arguments of ``fit``: texts, their label sets, and optionally the article or dyad of each.
Texts = Sequence[str]
LabelSets = Sequence[Sequence[str]]
Groups = Sequence[str] | None


def launched_processes() -> int:
    """How many processes the launcher started: torchrun's ``WORLD_SIZE`` (which
    ``accelerate launch`` sets too); 1 in a plain run."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be a whole number of processes, got {raw!r}") from None


def refuse_launched_processes(entry: str) -> None:
    """Stop an entry point that runs in one process from running once per launched process,
    every copy doing all the work and writing the same outputs."""
    processes = launched_processes()
    if processes > 1:
        raise ConfigError(
            f"{entry} runs in one process, but was launched as {processes}: start it with "
            "python, not torchrun or accelerate launch (only training.train trains over "
            "several processes)"
        )


def is_main_process() -> bool:
    """False in every process but the first of a multi-process launch (``accelerate launch``
    or ``torchrun`` over several GPUs or CPU processes); True in a plain run."""
    # The launchers' own variables (torchrun's, which accelerate launch uses too): asking
    # accelerate's PartialState would need its device settings first, and on CPU processes
    # it reports every process as the first until an Accelerator has been made.
    return launched_processes() <= 1 or os.environ.get("RANK", "0") == "0"


def end_processes() -> None:
    """At the end of a multi-process launch: wait for every process, then leave the group.

    A script that ``torchrun`` or ``accelerate launch`` runs calls this once, when its work
    is done. A process that exits while still in the process group can abort at exit
    ("terminate called without an active exception"), and the launcher then stops the
    others, the first one too, while it may still be writing. Nothing happens in a plain run.
    """
    if launched_processes() <= 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


_CALLER_FLAGS_TEXTS = contextvars.ContextVar("caller_flags_texts", default=False)


@contextlib.contextmanager
def texts_flagged_by_caller() -> Iterator[None]:
    """In this block, in this thread only, there is no warning about truncated texts or
    texts in a foreign script: the caller flags them itself (predict's output rows and
    summary)."""
    token = _CALLER_FLAGS_TEXTS.set(True)
    try:
        yield
    finally:
        _CALLER_FLAGS_TEXTS.reset(token)


def warns_of_flagged_texts() -> bool:
    """False inside ``texts_flagged_by_caller``."""
    return not _CALLER_FLAGS_TEXTS.get()


class StanceModel(ABC):
    """Shared interface; subclasses set ``kind`` and implement the abstract methods."""

    kind: str = ""
    params_type: type  # the kind's parameter dataclass (``stancelab.config``)
    thresholds_: list[float]
    text_form_: str | None = TEXT_FORM  # None: a model saved before text forms were recorded

    def __init__(self, params: Any = None, seed: int = 13) -> None:
        self.params = params or self.params_type()
        self.seed = seed

    @classmethod
    def from_config(cls, config: RunConfig) -> StanceModel:
        """A fresh model with the config's parameters and seed."""
        return cls(config.params, seed=config.seed)

    @abstractmethod
    def fit(self, texts: Texts, label_sets: LabelSets, groups: Groups = None) -> StanceModel:
        """Train on texts and label sets; ``groups`` (article or dyad per text) lets a model
        hold out whole sources for its own validation."""

    @abstractmethod
    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray: ...

    def model_inputs(self, texts: str | Sequence[str]) -> list[str]:
        """``as_text_list``, then each text as this model reads it: what scoring takes in."""
        return self.read_as_fitted(as_text_list(texts))

    def read_as_fitted(self, items: list[str]) -> list[str]:
        """Validated texts as this model reads them (``text_form_``)."""
        return items if self.text_form_ is None else [model_text(text) for text in items]

    @staticmethod
    def training_inputs(texts: Texts) -> list[str]:
        """What ``fit`` takes in: the texts in this stancelab's form (``TEXT_FORM``), also
        when it refits a model saved before; a fit that succeeds records the form."""
        return [model_text(text) for text in as_text_list(list(texts))]

    def predict(self, texts: str | Sequence[str]) -> list[tuple[str, ...]]:
        proba = self.predict_proba(texts)
        return self.labels_from_proba(proba)

    def truncated(self, texts: str | Sequence[str]) -> list[bool]:
        """Which texts the model reads only in part. A model with a length limit (the
        transformer's tokens) overrides this; the TF-IDF baseline reads every text whole."""
        return [False] * len(as_text_list(texts))

    def labels_from_proba(self, proba: np.ndarray) -> list[tuple[str, ...]]:
        cut = np.asarray(self.thresholds_, float)
        return [tuple(n for n, on in zip(LABELS, row >= cut, strict=True) if on) for row in proba]

    @abstractmethod
    def save(self, directory: str | Path) -> Path: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path) -> StanceModel: ...

    @property
    def engine(self) -> str:
        """What computes the scores; another engine may give other scores for one model
        (``predict --resume`` refuses to mix them)."""
        return self.kind

    @property
    def model_version(self) -> str:
        """A short identifier for pre-annotations and reports."""
        return getattr(self, "version_", "") or self.kind

    # Manifest helpers shared by subclasses -------------------------------------------------
    def manifest(self, **extra: Any) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "labels": list(LABELS),
            "thresholds": [float(t) for t in self.thresholds_],
            **({"text_form": self.text_form_} if self.text_form_ else {}),
            **extra,
        }


def read_manifest(directory: str | Path) -> dict:
    """Read and check ``stancelab.json``; ModelLoadError says what is wrong and where."""
    directory = Path(directory)
    if not directory.exists():
        raise ModelLoadError(f"{directory}: model directory does not exist")
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: not a directory")
    path = directory / MANIFEST
    if not path.exists():
        raise ModelLoadError(
            f"{directory}: not a stancelab model directory (no {MANIFEST}); "
            "train one with `python -m training.train configs/<model>.yaml`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{path}: corrupt manifest (not a JSON object)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: unsupported format_version {version!r} "
            f"(this stancelab reads {FORMAT_VERSION})"
        )
    if manifest.get("labels") != list(LABELS):
        raise ModelLoadError(
            f"{path}: model labels {manifest.get('labels')} differ from the scheme {list(LABELS)}"
        )
    thresholds = manifest.get("thresholds")
    if not (isinstance(thresholds, list) and len(thresholds) == len(LABELS)):
        raise ModelLoadError(f"{path}: thresholds missing or of the wrong length")
    if not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1 for t in thresholds
    ):
        raise ModelLoadError(f"{path}: thresholds must be numbers from 0 to 1, got {thresholds}")
    text_form = manifest.get("text_form")
    if text_form is not None and text_form != TEXT_FORM:
        raise ModelLoadError(
            f"{path}: the model reads text as {text_form!r}, which this stancelab does not "
            f"know (it knows {TEXT_FORM!r}); use the stancelab that trained it"
        )
    return manifest


def check_checksum(path: Path, digest: str | None) -> None:
    """ModelLoadError unless the file's SHA-256 is the one its manifest recorded."""
    if sha256_file(path) != digest:
        raise ModelLoadError(
            f"{path}: checksum does not match the manifest; the file was modified or is corrupt"
        )
