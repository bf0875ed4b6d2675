"""The fine-tuned transformer: a sentence encoder with a four-label head, calibrated.

Train it with ``python -m training.train configs/transformer.yaml`` (recipe a, plain
fine-tuning; the shipped default) or ``configs/transformer_setfit.yaml`` (recipe b,
contrastive then head). Default weights: the packaged all-MiniLM-L6-v2, loaded from its
Python package with no network (``stancelab.encoder`` says which sources work).

How the training data are used. Re-training the encoder k times for cross-validated
calibration would multiply the cost by k, so one stratified part of the training data
(``validation_fraction``, about 15 %) is held out instead; the encoder is trained on the
rest, and that held-out part serves early stopping, per-label Platt calibration of the
logits and the per-label thresholds. There is no refit on all data afterwards: a refit
model would be trained longer on more data, and the calibration fitted on the held-out
logits would no longer describe it. The model shipped is exactly the one its calibration
was measured on. The calibration report gives the ECE on the held-out part before
calibration and after it, the latter cross-fitted (Platt fitted on the other folds of the
held-out part).

A saved model directory holds the encoder (``model.safetensors``, ``config.json`` with
``id2label``/``label2id`` and ``problem_type: multi_label_classification``), the tokenizer,
the head (``head.safetensors``), and ``stancelab.json`` with thresholds, calibration,
pooling, parameters and the SHA-256 of every file, checked on load.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from stancelab.calibration import (
    PlattCalibrator,
    expected_calibration_error,
    sigmoid,
    tune_thresholds,
)
from stancelab.config import RunConfig, TransformerParams
from stancelab.data import label_matrix
from stancelab.errors import ConfigError, ModelLoadError
from stancelab.folds import multilabel_kfold
from stancelab.io import sha256_file, write_json
from stancelab.labels import LABELS
from stancelab.model import MANIFEST, StanceModel, as_text_list, read_manifest

HEAD_FILE = "head.safetensors"
REQUIRED_FILES = ("config.json", "model.safetensors", HEAD_FILE)
MIN_SENTENCES = 10


def holdout_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: the first fold of a stratified round(1/fraction)-fold split."""
    train, val = next(multilabel_kfold(y, max(2, round(1 / fraction)), seed=seed))
    return np.sort(train), np.sort(val)


def calibration_report(y: np.ndarray, logits: np.ndarray, seed: int) -> dict:
    """ECE of the held-out part before and after Platt scaling (after: cross-fitted)."""
    crossfit = np.zeros(logits.shape)
    for fit_rows, apply_rows in multilabel_kfold(y, 5, seed=seed):
        crossfit[apply_rows] = (
            PlattCalibrator().fit(logits[fit_rows], y[fit_rows]).transform(logits[apply_rows])
        )
    return {
        "method": "platt (per label, on logits)",
        "fitted_on": "held-out validation part of the training data",
        "n": int(len(y)),
        "ece_before": expected_calibration_error(y, sigmoid(logits)),
        "ece_after": expected_calibration_error(y, crossfit),
    }


class TransformerModel(StanceModel):
    kind = "transformer"

    def __init__(self, params: TransformerParams | None = None, seed: int = 13) -> None:
        self.params = params or TransformerParams()
        self.seed = seed

    @classmethod
    def from_config(cls, config: RunConfig) -> TransformerModel:
        return cls(config.params, seed=config.seed)

    # -- training ----------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> TransformerModel:
        from stancelab import encoder

        texts = as_text_list(list(texts))
        y = label_matrix(label_sets)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} label sets")
        if len(texts) < MIN_SENTENCES:
            raise ValueError(
                f"the transformer needs at least {MIN_SENTENCES} sentences, got {len(texts)}"
            )
        missing = [LABELS[j] for j in range(len(LABELS)) if y[:, j].sum() == 0]
        if missing:
            raise ValueError(f"no positive example for label(s): {', '.join(missing)}")
        p = self.params
        encoder.use_all_cores()
        encoder.seed_everything(self.seed)
        tokenizer, backbone = encoder.load_pretrained(p.model, p.allow_download)
        net = encoder.EncoderClassifier(backbone, len(LABELS), normalize=p.recipe == "setfit")
        ids = encoder.tokenize(tokenizer, texts, p.max_length)
        train, val = holdout_split(y, p.validation_fraction, self.seed)
        split = encoder.Split(
            [ids[i] for i in train], y[train], [ids[i] for i in val], y[val], tokenizer.pad_token_id
        )
        if p.recipe == "setfit":
            from stancelab.setfit import train_setfit as recipe
        else:
            from stancelab.finetune import train_finetune as recipe
        self.history_ = recipe(net, split, p, seed=self.seed)
        net.eval()
        self.net_, self.tokenizer_ = net, tokenizer
        logits = encoder.infer(net, split.val_ids, split.pad_id)
        self.calibration_ = PlattCalibrator().fit(logits, split.y_val)
        proba = self.calibration_.transform(logits)
        self.thresholds_ = tune_thresholds(split.y_val, proba)
        self.oof_ = {"y": split.y_val, "proba": proba}
        self.calibration_report_ = calibration_report(split.y_val, logits, self.seed)
        self.split_ = {"train": int(len(train)), "validation": int(len(val))}
        return self

    # -- inference ---------------------------------------------------------------------------
    def decision_function(self, texts: str | Sequence[str]) -> np.ndarray:
        """Raw per-label logits, shape (n, len(LABELS)).

        Texts longer than ``max_length`` tokens are truncated, with one warning per call.
        """
        from stancelab import encoder

        texts = as_text_list(texts)
        if not texts:  # the tokenizer rejects an empty batch
            return np.zeros((0, len(LABELS)))
        ids = self.tokenizer_(texts, truncation=False)["input_ids"]
        limit = self.params.max_length
        long = sum(len(row) > limit for row in ids)
        if long:
            warnings.warn(
                f"{long} text(s) longer than the model's limit of {limit} tokens were truncated",
                stacklevel=2,
            )
            ids = [row if len(row) <= limit else row[: limit - 1] + row[-1:] for row in ids]
        runner = getattr(self, "runner_", None)
        if runner is not None:
            return runner.logits(ids, self.tokenizer_.pad_token_id)
        return encoder.infer(self.net_, ids, self.tokenizer_.pad_token_id)

    def use_backend(self, backend: str = "onnx", precision: str = "fp32") -> TransformerModel:
        """Choose the inference engine: "torch", or "onnx" (ONNX Runtime, ``stancelab.fastpath``).

        The ONNX export is made on first use and cached by the weights' checksum; a model
        must have been saved or loaded first. fp32 gives the same labels as torch.
        """
        if backend == "torch":
            self.runner_ = None
            return self
        if backend != "onnx":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from stancelab import fastpath

        key = getattr(self, "weights_key_", None)
        if key is None:
            raise ValueError("save or load the model before choosing the onnx backend")
        self.runner_ = fastpath.runner_for(self.net_, key, precision)
        return self

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        return self.calibration_.transform(self.decision_function(texts))

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        from stancelab.encoder import quiet_transformers

        directory = Path(directory)
        if not _is_main_process():  # several GPUs: every process holds the same weights
            return directory
        directory.mkdir(parents=True, exist_ok=True)
        backbone = self.net_.backbone
        backbone.config.id2label = dict(enumerate(LABELS))
        backbone.config.label2id = {name: i for i, name in enumerate(LABELS)}
        backbone.config.problem_type = "multi_label_classification"
        # Write into a sibling temp folder, then move file by file; the manifest goes last,
        # so an interrupted save fails its checksums on load instead of mixing two models.
        with tempfile.TemporaryDirectory(dir=directory, prefix=".saving-") as tmp:
            from safetensors.torch import save_file

            with quiet_transformers():
                backbone.save_pretrained(tmp)
                self.tokenizer_.save_pretrained(tmp)
            head = self.net_.head
            save_file(
                {
                    "weight": head.weight.detach().cpu().contiguous(),
                    "bias": head.bias.detach().cpu().contiguous(),
                },
                os.path.join(tmp, HEAD_FILE),
                metadata={"labels": ",".join(LABELS)},
            )
            files = {f.name: sha256_file(f) for f in sorted(Path(tmp).iterdir()) if f.is_file()}
            for name in files:
                os.replace(os.path.join(tmp, name), directory / name)
        self.version_ = f"transformer-{self.params.recipe}-{files['model.safetensors'][:10]}"
        self.weights_key_ = files["model.safetensors"][:16] + files[HEAD_FILE][:16]
        write_json(
            directory / MANIFEST,
            self.manifest(
                version=self.version_,
                calibration=self.calibration_.to_dict(),
                calibration_report=getattr(self, "calibration_report_", None),
                architecture={
                    "pooling": "mean",
                    "normalize": bool(self.net_.normalize),
                    "head": HEAD_FILE,
                    "max_length": self.params.max_length,
                },
                params=asdict(self.params),
                seed=self.seed,
                history=getattr(self, "history_", []),
                split=getattr(self, "split_", {}),
                files=files,
            ),
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TransformerModel:
        directory = Path(directory)
        manifest = read_manifest(directory)
        files = manifest.get("files")
        if not isinstance(files, dict) or not set(REQUIRED_FILES) <= set(files):
            raise ModelLoadError(f"{directory / MANIFEST}: the file list is missing or incomplete")
        tokenizer_files = sorted(set(files) - set(REQUIRED_FILES))
        for name, digest in files.items():
            path = directory / name
            if not path.is_file():
                what = "the tokenizer file" if name in tokenizer_files else "the model file"
                raise ModelLoadError(
                    f"{directory}: missing {what} {name}; the model directory is incomplete"
                )
            if sha256_file(path) != digest:
                raise ModelLoadError(
                    f"{path}: checksum does not match the manifest; "
                    "the file was modified or is corrupt"
                )
        try:
            params = TransformerParams(**manifest.get("params", {}))
            arch = manifest["architecture"]
            calibration = PlattCalibrator.from_dict(manifest["calibration"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ModelLoadError(f"{directory / MANIFEST}: bad entry ({exc})") from None
        model = cls(params, seed=int(manifest.get("seed", 13)))
        model.net_, model.tokenizer_ = _load_network(directory, bool(arch.get("normalize")))
        model.calibration_ = calibration
        model.thresholds_ = [float(t) for t in manifest["thresholds"]]
        model.version_ = manifest.get("version", "")
        model.weights_key_ = files["model.safetensors"][:16] + files[HEAD_FILE][:16]
        model.history_ = manifest.get("history", [])
        model.calibration_report_ = manifest.get("calibration_report")
        return model


def _load_network(directory: Path, normalize: bool):
    """(network on the inference device, tokenizer) from a checked model directory."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from stancelab import encoder

    try:
        with encoder.quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            backbone = AutoModel.from_pretrained(directory, local_files_only=True)
        head = load_file(directory / HEAD_FILE)
        net = encoder.EncoderClassifier(backbone, len(LABELS), normalize=normalize)
        net.head.load_state_dict(head)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"{directory}: cannot load the transformer ({first})") from None
    encoder.use_all_cores()
    net.to(encoder.inference_device()).eval()
    return net, tokenizer


def _is_main_process() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return True
    from accelerate import PartialState

    return PartialState().is_main_process
