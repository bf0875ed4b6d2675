"""The fine-tuned transformer: a sentence encoder with a four-label head, calibrated.

Train it with ``python -m training.train configs/transformer.yaml`` (recipe a, plain
fine-tuning; the shipped default) or ``configs/transformer_setfit.yaml`` (recipe b,
contrastive then head). Default weights: the packaged all-MiniLM-L6-v2, loaded from its
Python package with no network (``models.transformer.network`` says which sources work).

One stratified part of the training data (``validation_fraction``) is held out for early
stopping, per-label Platt calibration of the logits and the thresholds, and there is no refit
on all data afterwards, so the model shipped is the one its calibration was measured on (why:
README, "Training"). The calibration report gives the held-out ECE before and after
calibration, the latter cross-fitted.

A saved model directory (``stancelab.models.transformer.files``) holds the encoder, the tokenizer,
the head and ``stancelab.json`` with thresholds, calibration, pooling, parameters and the
SHA-256 of every file, checked on load. A loaded model predicts through ONNX Runtime
(``use_default_backend``), whether it is used through ``load_model(dir).predict`` or
``stancelab.predict``: it tokenises from ``tokenizer.json``
(``stancelab.models.transformer.tokens``) and runs the cached export, so it imports neither
torch nor transformers. The torch network is read only when training, when
``STANCELAB_BACKEND=torch`` (or ``use_backend("torch")``) asks for it, or once to make a
missing export.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stancelab.config import TransformerParams
from stancelab.corpus.text import preview
from stancelab.data.folds import first_rows, multilabel_kfold_by_key, stratified_group_kfold
from stancelab.data.labelled import label_matrix
from stancelab.errors import InputError, TruncationWarning, first_line
from stancelab.labels import LABELS
from stancelab.models.base import (
    TEXT_FORM,
    Groups,
    LabelSets,
    StanceModel,
    Texts,
    as_text_list,
    warns_of_flagged_texts,
)
from stancelab.models.calibration import (
    PlattCalibrator,
    calibration_report,
    crossfit_heldout,
    tune_thresholds,
)
from stancelab.models.transformer import files, tokens

MIN_SENTENCES = 10


def holdout_split(
    y: np.ndarray,
    fraction: float,
    seed: int,
    groups: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(train, validation indices, whether whole groups were held out): one fold of a
    round(1/fraction)-fold split.

    With ``groups`` (an article or a dyad per row) whole groups are held out, so early
    stopping, calibration and thresholds are fitted on sentences from sources the model
    never saw, as it will meet them. The first fold whose both sides hold every label wins;
    when none does (too few or too lopsided groups), rows are held out instead, rows of one
    of ``texts`` together.
    """
    n_folds = max(2, round(1 / fraction))
    if groups is not None and len(set(groups)) >= 2:
        for train, val in stratified_group_kfold(y, list(groups), n_folds, seed):
            # Both sides hold every label, and no one huge group swallows the held-out part.
            if (
                (y[val].sum(axis=0) > 0).all()
                and (y[train].sum(axis=0) > 0).all()
                and len(val) <= 2 * fraction * len(y) + 1
            ):
                return np.sort(train), np.sort(val), True
    # No usable groups: rows, each text's copies (data.corpus_repeat) on one side. Without
    # copies this is the plain row split.
    train, val = next(multilabel_kfold_by_key(y, n_folds, seed, texts))
    return train, val, False


class TransformerModel(StanceModel):
    kind = "transformer"
    params_type = TransformerParams

    # -- training ----------------------------------------------------------------------------
    def fit(self, texts: Texts, label_sets: LabelSets, groups: Groups = None) -> TransformerModel:
        """Train; ``groups`` (article or dyad per sentence) makes the held-out part whole
        groups (``holdout_split``)."""
        from stancelab.models.transformer import network

        texts = self.training_inputs(texts)
        y = label_matrix(label_sets)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} label sets")
        if len(texts) < MIN_SENTENCES:
            raise InputError(
                f"the transformer needs at least {MIN_SENTENCES} sentences, got {len(texts)}"
            )
        missing = [LABELS[j] for j in range(len(LABELS)) if y[:, j].sum() == 0]
        if missing:
            raise InputError(
                f"the training data has no positive example for label(s): {', '.join(missing)}; "
                "every label needs at least one sentence that has it"
            )
        p = self.params
        network.use_all_cores()
        network.seed_everything(self.seed)
        tokenizer, backbone = network.load_pretrained(p.model, p.allow_download)
        net = network.EncoderClassifier(backbone, len(LABELS), normalize=p.recipe == "setfit")
        ids = network.tokenize(tokenizer, texts, p.max_length)
        if groups is not None and len(groups) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(groups)} groups")
        train, val, grouped = holdout_split(y, p.validation_fraction, self.seed, groups, texts)
        if groups is not None and not grouped:
            warnings.warn(
                "no held-out part of whole articles or dyads holds every label on both "
                "sides: holding out random rows instead, so early stopping, calibration and "
                "thresholds are fitted on sources the model also trains on",
                stacklevel=2,
            )
        split = network.Split(
            [ids[i] for i in train], y[train], [ids[i] for i in val], y[val], tokenizer.pad_token_id
        )
        if p.recipe == "setfit":
            from stancelab.models.transformer.setfit import train_setfit as recipe
        else:
            from stancelab.models.transformer.finetune import train_finetune as recipe
        self.history_ = recipe(net, split, p, seed=self.seed)
        net.eval()
        self.net_, self.tokenizer_ = net, tokenizer
        # Padded positions are masked, so the padding id never changes a logit.
        self.pad_id_ = int(tokenizer.pad_token_id)
        self.__dict__.pop("fast_tokenizer_", None)  # a refit model tokenises afresh
        states = None
        if p.cache_layers:  # the held-out part's cached states: the same logits, 4x cheaper
            from stancelab.models.transformer.layers import cached_states

            states = cached_states(
                backbone, split.val_ids, split.pad_id, p.cache_layers, p.max_length, False
            )
        logits = network.infer(
            net, split.val_ids, split.pad_id, states=states, from_layer=p.cache_layers
        )
        self.calibration_ = PlattCalibrator().fit(logits, split.y_val)
        # Copies of one sentence (data.corpus_repeat) count once toward the positives a
        # threshold needs, are cross-fitted together, and the figures count each held-out
        # sentence once.
        val_texts = [texts[i] for i in val]
        self.thresholds_ = tune_thresholds(
            split.y_val, self.calibration_.transform(logits), keys=val_texts
        )
        crossfit, pred = crossfit_heldout(split.y_val, logits, self.seed, keys=val_texts)
        once = first_rows(val_texts)
        # Said beside the figures (run.json, the model card): held-out rows of articles and
        # dyads the model trained on flatter it more than unseen sources would.
        part = (
            "whole articles or dyads"
            if grouped
            else "random rows, not whole articles or dyads, so the model trained on their sources"
        )
        self.oof_ = {
            "y": split.y_val[once],
            "proba": crossfit[once],
            "pred": pred[once],
            "source": (
                f"a held-out part of the training data ({len(once)} of {len(set(texts))} "
                f"sentences; {part}), "
                "calibration and thresholds cross-fitted within it; "
                "the same part chose the early-stopping epoch, so the figures lean optimistic"
            ),
        }
        self.calibration_report_ = calibration_report(
            split.y_val[once], logits[once], crossfit[once]
        )
        self.split_ = {
            "train": int(len(train)),
            "validation": int(len(val)),
            "held_out": "whole groups" if grouped else "rows",
        }
        self.text_form_ = TEXT_FORM  # how it read its training texts
        return self

    # -- inference ---------------------------------------------------------------------------
    def decision_function(self, texts: str | Sequence[str]) -> np.ndarray:
        """Raw per-label logits, shape (n, len(LABELS)).

        A text longer than ``max_length`` tokens is cut to its first ``max_length - 1``
        tokens and its closing token (``truncated`` says which texts), with one
        ``TruncationWarning`` per call naming the first such text.
        """
        given = as_text_list(texts)
        if not given:  # the tokenizer rejects an empty batch
            return np.zeros((0, len(LABELS)))
        ids = self._token_ids(self.read_as_fitted(given))
        limit = self.params.max_length
        long = [i for i, row in enumerate(ids) if len(row) > limit]
        if long and warns_of_flagged_texts():
            shown = preview(given[long[0]])  # the text as the caller gave it
            warnings.warn(
                f"{len(long)} of {len(given)} text(s) are longer than the model's limit of "
                f"{limit} tokens and were labelled from their beginning only; the first is "
                f"text {long[0]} ({len(ids[long[0]])} tokens): {shown!r}",
                TruncationWarning,
                stacklevel=2,
            )
        if long:
            ids = [row if len(row) <= limit else row[: limit - 1] + row[-1:] for row in ids]
        runner = self._runner()
        if runner is not None:
            return runner.logits(ids, self.pad_id_)
        from stancelab.models.transformer import network  # torch: only on the PyTorch path

        return network.infer(self.net_, ids, self.pad_id_)

    def truncated(self, texts: str | Sequence[str]) -> list[bool]:
        """Which texts are longer than ``max_length`` tokens (the model reads them in part)."""
        texts = self.model_inputs(texts)
        limit = self.params.max_length
        return [len(row) > limit for row in self._token_ids(texts)] if texts else []

    @property
    def engine(self) -> str:
        runner = self._runner()
        return "torch" if runner is None else f"onnx-{runner.precision}"

    def _runner(self):
        """The ONNX runner, or None for PyTorch. A loaded model picks its engine on first
        use (``use_default_backend``): the same fast route as ``stancelab.predict``. A model
        fitted in this process, and not loaded, stays on PyTorch."""
        if "runner_" not in self.__dict__:
            if "directory_" not in self.__dict__:
                return None
            self.use_default_backend()
        return self.__dict__["runner_"]

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        fast = self.__dict__.get("fast_tokenizer_")
        if fast is None:
            fast = self.fast_tokenizer_ = tokens.untruncated(
                self.__dict__.get("directory_"), lambda: self.tokenizer_
            )
        return tokens.token_ids(fast, texts)

    def __getattr__(self, name: str):
        # A loaded model reads its torch network and transformers tokenizer on first use:
        # the ONNX path (predict's default) never needs them.
        if name in ("net_", "tokenizer_") and "directory_" in self.__dict__:
            self.net_, self.tokenizer_ = files.load_network(
                self.directory_, bool(self.architecture_.get("normalize"))
            )
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def use_backend(self, backend: str = "onnx", precision: str | None = None) -> TransformerModel:
        """Choose the inference engine: "torch", or "onnx" (ONNX Runtime,
        ``stancelab.models.transformer.onnx``).

        The ONNX export is made on first use and cached by the weights' checksum; a model
        must have been saved or loaded first. ``precision``: "fp32" (the same labels as
        torch) or "int8" (faster, but labels change; see that module); by default
        ``$STANCELAB_PRECISION``, else ``onnx.DEFAULT_PRECISION`` (fp32).
        """
        if backend == "torch":
            self.runner_ = None
            return self
        if backend != "onnx":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from stancelab.models.transformer import onnx

        precision = precision or onnx.default_precision()
        key = getattr(self, "weights_key_", None)
        if key is None:
            raise ValueError("save or load the model before choosing the onnx backend")
        self.runner_ = onnx.runner_for(lambda: self.net_, key, precision)
        return self

    def use_default_backend(self, precision: str | None = None) -> TransformerModel:
        """The engine a loaded model predicts with unless told otherwise: ONNX Runtime at
        ``precision`` (default ``$STANCELAB_PRECISION``, else fp32: PyTorch's labels), or
        PyTorch when ``STANCELAB_BACKEND=torch``. If the ONNX path cannot be set up,
        PyTorch is kept with a warning. A mistyped backend or precision is an error."""
        from stancelab.models.transformer import onnx

        if onnx.default_backend() == "torch":
            return self.use_backend("torch")
        precision = onnx.check_precision(precision or onnx.default_precision())
        try:
            return self.use_backend("onnx", precision)
        except Exception as exc:  # any failure of the optional engine leaves the exact one
            warnings.warn(
                f"fast inference unavailable, using PyTorch ({first_line(exc)}; ONNX exports "
                f"are cached in {onnx.cache_dir()})",
                stacklevel=3,
            )
            return self.use_backend("torch")

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        return self.calibration_.transform(self.decision_function(texts))

    # -- persistence (stancelab.models.transformer.files) ------------------------------------------
    def save(self, directory: str | Path) -> Path:
        return files.save(self, directory)

    @classmethod
    def load(cls, directory: str | Path) -> TransformerModel:
        return files.load(cls, directory)
