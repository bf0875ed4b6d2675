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
pooling, parameters and the SHA-256 of every file, checked on load. Loading reads the torch
network only when the torch path first needs it: predict's ONNX path tokenises from
``tokenizer.json`` (``stancelab.tokens``) and runs the cached export, so it imports neither
torch nor transformers.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from stancelab import tokens
from stancelab.calibration import (
    PlattCalibrator,
    calibration_report,
    crossfit_heldout,
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
        # Padded positions are masked, so the padding id never changes a logit.
        self.pad_id_ = int(tokenizer.pad_token_id)
        self.__dict__.pop("fast_tokenizer_", None)  # a refit model tokenises afresh
        logits = encoder.infer(net, split.val_ids, split.pad_id)
        self.calibration_ = PlattCalibrator().fit(logits, split.y_val)
        self.thresholds_ = tune_thresholds(split.y_val, self.calibration_.transform(logits))
        crossfit, pred = crossfit_heldout(split.y_val, logits, self.seed)
        self.oof_ = {
            "y": split.y_val,
            "proba": crossfit,
            "pred": pred,
            "source": (
                f"a held-out part of the training data ({len(val)} of {len(texts)} sentences), "
                "calibration and thresholds cross-fitted within it; "
                "the same part chose the early-stopping epoch, so the figures lean optimistic"
            ),
        }
        self.calibration_report_ = calibration_report(split.y_val, logits, crossfit)
        self.split_ = {"train": int(len(train)), "validation": int(len(val))}
        return self

    # -- inference ---------------------------------------------------------------------------
    def decision_function(self, texts: str | Sequence[str]) -> np.ndarray:
        """Raw per-label logits, shape (n, len(LABELS)).

        Texts longer than ``max_length`` tokens are truncated, with one warning per call.
        """
        texts = as_text_list(texts)
        if not texts:  # the tokenizer rejects an empty batch
            return np.zeros((0, len(LABELS)))
        ids = self._token_ids(texts)
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
            return runner.logits(ids, self.pad_id_)
        from stancelab import encoder  # torch: only on the PyTorch path

        return encoder.infer(self.net_, ids, self.pad_id_)

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
            self.net_, self.tokenizer_ = _load_network(
                self.directory_, bool(self.architecture_.get("normalize"))
            )
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def use_backend(self, backend: str = "onnx", precision: str | None = None) -> TransformerModel:
        """Choose the inference engine: "torch", or "onnx" (ONNX Runtime, ``stancelab.fastpath``).

        The ONNX export is made on first use and cached by the weights' checksum; a model
        must have been saved or loaded first. ``precision``: "fp32" (the same labels as
        torch) or "int8" (faster, a few percent of labels differ); by default
        ``$STANCELAB_PRECISION``, else ``fastpath.DEFAULT_PRECISION`` (fp32).
        """
        if backend == "torch":
            self.runner_ = None
            return self
        if backend != "onnx":
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        from stancelab import fastpath

        precision = precision or fastpath.default_precision()
        key = getattr(self, "weights_key_", None)
        if key is None:
            raise ValueError("save or load the model before choosing the onnx backend")
        self.runner_ = fastpath.runner_for(lambda: self.net_, key, precision)
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
        model.directory_, model.architecture_ = directory, arch
        model.pad_id_ = _config_pad_id(directory)
        _check_weights(directory)
        model.calibration_ = calibration
        model.thresholds_ = [float(t) for t in manifest["thresholds"]]
        model.version_ = manifest.get("version", "")
        model.weights_key_ = files["model.safetensors"][:16] + files[HEAD_FILE][:16]
        model.history_ = manifest.get("history", [])
        model.calibration_report_ = manifest.get("calibration_report")
        return model


def _check_weights(directory: Path) -> None:
    """Read the weight files' headers (no torch): a file that passes its checksum but is
    truncated or not safetensors at all fails here, at load, not at the first prediction."""
    from safetensors import SafetensorError, safe_open

    for name in ("model.safetensors", HEAD_FILE):
        try:
            with safe_open(str(directory / name), framework="numpy") as handle:
                if not list(handle.keys()):
                    raise SafetensorError("no tensors")
        except (OSError, SafetensorError) as exc:
            raise ModelLoadError(
                f"{directory}: cannot load the transformer ({name}: {_first_line(exc)})"
            ) from None


def _config_pad_id(directory: Path) -> int:
    """The encoder config's ``pad_token_id`` (0 when it names none: padding is masked)."""
    import json

    try:
        value = json.loads((directory / "config.json").read_text(encoding="utf-8")).get(
            "pad_token_id"
        )
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{directory / 'config.json'}: unreadable ({exc})") from None
    return value if isinstance(value, int) else 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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
        raise ModelLoadError(
            f"{directory}: cannot load the transformer ({_first_line(exc)})"
        ) from None
    encoder.use_all_cores()
    net.to(encoder.inference_device()).eval()
    return net, tokenizer


def _is_main_process() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return True
    from accelerate import PartialState

    return PartialState().is_main_process
