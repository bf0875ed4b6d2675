"""Apply a trained model to new text: one sentence, a list, or a whole article.

    from stancelab import predict, predict_document
    predict("We will strike, and we will certainly strike.")
    predict(["...", "..."], model="runs/baseline")
    predict_document(article_text)

Each result is a ``Prediction``: the text, the label tuple (``()`` = none), the calibrated
score of every label, whether the model read the text only in part (``truncated``: longer
than the transformer's token limit) and whether it is mostly not in Latin letters
(``foreign_script``: the models learned from English only, so its labels are unreliable);
document results also carry the sentence's offsets in the article, and the list of them
the lines dropped as page furniture (``dropped``).
The default model is ``runs/transformer/`` (or ``$STANCELAB_MODEL``). This module imports
nothing heavy itself: the model's own dependencies load with the model.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stancelab.corpus.text import foreign_script, preview
from stancelab.errors import ForeignScriptWarning, ModelLoadError
from stancelab.labels import LABELS, display
from stancelab.models.base import StanceModel, as_text_list, warns_of_flagged_texts
from stancelab.models.registry import load_model, manifest_digest
from stancelab.paths import DEFAULT_MODEL_DIR

TRAIN_HINT = {
    "transformer": "python -m training.train configs/transformer.yaml",
    "baseline": "python -m training.train configs/baseline.yaml",
}
_LOADED: dict[str, StanceModel] = {}
FLAGS = ("truncated", "foreign_script")  # a Prediction's flags, keys of predict's rows


@dataclass(frozen=True)
class Prediction:
    """One labelled text. ``scores`` maps every label to its calibrated probability."""

    text: str
    labels: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    start: int | None = None  # offsets in the document (predict_document only)
    end: int | None = None
    truncated: bool = False  # longer than the model reads: labelled from its beginning
    foreign_script: bool = False  # mostly not Latin letters: unreliable labels

    def to_dict(self) -> dict:
        """The fields as JSON values; ``start``/``end`` only for a document's sentence, and
        ``truncated`` and ``foreign_script`` only when true (the keys of predict's rows)."""
        row = asdict(self)
        row["labels"] = list(self.labels)
        if self.start is None:
            del row["start"], row["end"]
        for flag in FLAGS:
            if not row[flag]:
                del row[flag]
        return row

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def __str__(self) -> str:
        scores = " ".join(f"{name}={self.scores[name]:.2f}" for name in LABELS)
        cut = "  (truncated: longer than the model reads)" if self.truncated else ""
        if self.foreign_script:
            cut += "  (foreign script: the models learned from English only)"
        return f"{display(self.labels)}  [{scores}]{cut}  {self.text}"


def default_model_dir() -> Path:
    return Path(os.environ.get("STANCELAB_MODEL") or DEFAULT_MODEL_DIR)


def resolve_model(
    model: str | os.PathLike | StanceModel | None = None, precision: str | None = None
) -> StanceModel:
    """A loaded model from a run directory, or the model itself. ``precision`` picks the
    transformer's ONNX precision (``stancelab.models.transformer.onnx``).

    Loaded models are cached per path and precision, and a cached one is used only while
    the directory's manifest is the one it was loaded from (its SHA-256: the manifest
    records every model file's checksum), so a run retrained in place is loaded anew and
    ``predict(texts, model=RUN)`` always gives ``load_model(RUN).predict``'s scores."""
    if isinstance(model, StanceModel):
        return model
    directory = Path(model) if model is not None else default_model_dir()
    key = f"{directory.resolve()}|{precision or ''}"
    cached = _LOADED.get(key)
    digest = manifest_digest(directory)
    if cached is None or digest is None or cached.manifest_sha256_ != digest:
        _LOADED.pop(key, None)
        if model is None and not directory.exists():
            hint = TRAIN_HINT.get(directory.name, TRAIN_HINT["transformer"])
            raise ModelLoadError(
                f"no trained model at {directory}/; train the default with `{hint}` "
                "(or pass model=<run dir>, or set STANCELAB_MODEL)"
            )
        _LOADED[key] = fast(load_model(directory), precision)
    return _LOADED[key]


def fast(model: StanceModel, precision: str | None = None) -> StanceModel:
    """Put a model on its fast inference engine where it has one: the route that
    ``load_model(dir).predict`` takes too (for the transformer, ONNX Runtime fp32 with
    PyTorch's labels, ``TransformerModel.use_default_backend``). ``precision="int8"`` (or
    ``STANCELAB_PRECISION=int8``) is faster but changes labels
    (``stancelab.models.transformer.onnx``);
    ``STANCELAB_BACKEND=torch`` keeps PyTorch."""
    if hasattr(model, "use_default_backend"):
        return model.use_default_backend(precision)
    return model


def predict(
    texts: str | Sequence[str],
    model: str | os.PathLike | StanceModel | None = None,
) -> Prediction | list[Prediction]:
    """Label one text (returns a Prediction) or a list of texts (returns a list).

    Raises TypeError for non-string input and ValueError for empty or blank text, naming
    the offending index in a list.
    """
    single = isinstance(texts, str)
    items = as_text_list(texts)
    results = predictions_for(resolve_model(model), items)
    return results[0] if single else results


def predictions_for(model: StanceModel, texts: list[str], what: str = "text") -> list[Prediction]:
    """Validated texts in, Predictions out (one predict_proba call). Texts mostly not in
    Latin letters get one ``ForeignScriptWarning`` per call, naming the first (``what``
    they are: texts, or a document's sentences)."""
    proba = model.predict_proba(texts)
    labels = model.labels_from_proba(proba)
    cut = model.truncated(texts)
    foreign = [foreign_script(t) for t in texts]
    if any(foreign) and warns_of_flagged_texts():
        first = foreign.index(True)
        warnings.warn(
            f"{sum(foreign)} of {len(texts)} {what}(s) are mostly not in Latin letters, and "
            "the models learned from English only: their labels are unreliable (translate "
            f"them first); the first is {what} {first}: {preview(texts[first])!r}",
            ForeignScriptWarning,
            stacklevel=3,
        )
    return [
        Prediction(
            text,
            labs,
            {name: round(float(p), 6) for name, p in zip(LABELS, row, strict=True)},
            truncated=long,
            foreign_script=other,
        )
        for text, labs, row, long, other in zip(texts, labels, proba, cut, foreign, strict=True)
    ]


class DocumentPredictions(list):
    """``predict_document``'s result: a list of the sentences' ``Prediction``s, and in
    ``dropped`` the lines dropped as page furniture (``stancelab.corpus.ingest.Dropped``:
    ``reason``, ``text``, ``start``, ``end``), so that none disappears unseen."""

    def __init__(self, predictions: Sequence[Prediction] = (), dropped: Sequence = ()) -> None:
        super().__init__(predictions)
        self.dropped = list(dropped)


def predict_document(
    text: str, model: str | os.PathLike | StanceModel | None = None, doc_id: str = "document"
) -> DocumentPredictions:
    """Split an article with the corpus splitter (furniture dropped) and label each sentence.

    Each result carries ``start``/``end`` such that ``text[start:end] == result.text``; the
    lines dropped are in the result's ``dropped`` (all of them when it has no sentence).
    """
    from stancelab.corpus.ingest import Document, segment_document

    if not isinstance(text, str):
        raise TypeError(f"a document must be a string, not {type(text).__name__}")
    as_text_list(text)  # ValueError for an empty document
    sentences, dropped = segment_document(Document(doc_id, text, doc_id))
    if not sentences:
        return DocumentPredictions([], dropped)
    loaded = resolve_model(model)
    results = predictions_for(loaded, [s.text for s in sentences], "sentence")
    return DocumentPredictions(
        [
            Prediction(r.text, r.labels, r.scores, s.start, s.end, r.truncated, r.foreign_script)
            for r, s in zip(results, sentences, strict=True)
        ],
        dropped,
    )
