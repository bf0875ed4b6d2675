"""The transformer's building blocks: finding weights offline, the network, batching, inference.

Shared by ``stancelab.models.transformer.model`` (the model) and the two training recipes
(``stancelab.models.transformer.finetune``, ``stancelab.models.transformer.setfit``); not a command
of its own.

* ``load_pretrained(spec)``: ``packaged:<name>`` (weights installed as Python packages, e.g.
  ``packaged:all-mpnet-base-v2``; see ``packaged.py``), a local directory, or a hub id.
  Hub ids load from the local Hugging Face cache only, unless ``params.allow_download`` is true
  or ``STANCELAB_ALLOW_DOWNLOAD=1`` is set; failures are one-line ``ModelLoadError``s.
* ``EncoderClassifier``: encoder -> attention-masked mean pooling (how the sentence encoder
  was trained) -> optional L2 normalisation -> a linear layer giving one logit per label.
* ``LengthGroupedBatches``: shuffled batches of similar length, so dynamic padding wastes
  little; ``infer`` runs length-sorted batches under ``torch.inference_mode``.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stancelab.errors import ConfigError
from stancelab.models.base import launched_processes
from stancelab.models.transformer.batches import (
    Collator,
    LengthGroupedBatches,
    pad,
    pad_states,
)
from stancelab.models.transformer.layers import run_layers
from stancelab.models.transformer.weights import (  # noqa: F401 - the transformer's API here
    ALLOW_DOWNLOAD_ENV,
    downloads_allowed,
    load_pretrained,
    quiet_transformers,
    resolve_source,
)
from stancelab.paths import usable_cores

INFERENCE_BATCH = 64


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
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor,
        return_embedding: bool = False,
        states: torch.Tensor | None = None,
        from_layer: int = 0,
    ) -> torch.Tensor:
        """Logits (or the pooled embedding) from token ids, or from ``states``: the cached
        hidden states after layer ``from_layer`` (``stancelab.models.transformer.layers``)."""
        # One forward for every use: DDP synchronises gradients only through forward().
        if states is None:
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
            hidden = out.last_hidden_state
        else:
            hidden = run_layers(self.backbone, states, attention_mask, from_layer)
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
    """GPU when present, else CPU; several GPUs (or CPU processes) when started with
    ``accelerate launch`` or ``torchrun``."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # Several processes with no CUDA GPU (torchrun on CPUs) are joined over gloo on the CPU;
    # unless told, accelerate leaves them unconnected, each training alone on all the data.
    processes = launched_processes()
    if processes > 1 and not os.environ.get("MASTER_ADDR"):
        raise ConfigError(
            f"WORLD_SIZE is {processes} but no launcher started this process (MASTER_ADDR "
            "is unset): start several processes with torchrun or accelerate launch, or "
            "unset WORLD_SIZE"
        )
    # params.mixed_precision alone decides the training arithmetic (see training_precision):
    # left to itself, accelerate would take `accelerate launch --mixed_precision` or its
    # config file's setting, autocast every forward pass (validation, calibration and the
    # returned network too) and leave the run recording fp32.
    asked = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").strip().lower()
    if asked not in {"", "no"}:
        warnings.warn(
            f"accelerate's mixed precision setting ({asked!r}) is ignored: stancelab's "
            "params.mixed_precision decides how training steps run",
            stacklevel=3,
        )
    # The encoder's pooler (and the head while the setfit recipe trains the encoder) get no
    # gradient; DDP must be told, or it waits for them.
    accelerator = Accelerator(
        cpu=processes > 1 and not torch.cuda.is_available(),
        mixed_precision="no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    if accelerator.num_processes != processes:
        raise ConfigError(
            f"started as {processes} processes, but accelerate joined "
            f"{accelerator.num_processes}; launch with torchrun or accelerate launch"
        )
    return accelerator


def training_precision(setting: str, device: torch.device) -> str:
    """The training arithmetic that ``params.mixed_precision`` means here: fp32 or bf16.

    "auto" picks bf16 only where it is native: a GPU that reports bf16 support, or a CPU on
    which oneDNN runs bf16 kernels (AVX512-BF16 or AMX; elsewhere emulated bf16 can be slower
    than fp32).
    """
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            native = False
        if not native:  # the README's training times come from CPUs with native bf16
            warnings.warn(FP32_CPU, stacklevel=2)
        return "bf16" if native else "fp32"
    return "fp32"


FP32_CPU = (
    "this CPU has no native bf16 (AVX512-BF16 or AMX), so mixed_precision: auto trains in "
    "fp32: several times slower than the training times the README gives, which come from "
    "CPUs with native bf16 (see 'On a CPU without native bf16' in README.md)"
)


def infer(
    net: EncoderClassifier,
    ids: list[list[int]],
    pad_id: int,
    *,
    embed: bool = False,
    batch_size: int = INFERENCE_BATCH,
    states: list[torch.Tensor] | None = None,
    from_layer: int = 0,
) -> np.ndarray:
    """Logits (or pooled embeddings) for token-id rows, in input order; length-sorted batches.

    With ``states`` (cached hidden states after layer ``from_layer``, one per row), only the
    layers above run.
    """
    device = next(net.parameters()).device
    rows_in = ids if states is None else states
    order = np.argsort([len(s) for s in rows_in], kind="stable")
    out: np.ndarray | None = None
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            if states is None:
                batch = pad([ids[i] for i in rows], pad_id)
            else:
                cached, mask = pad_states([states[i] for i in rows])
                batch = {"input_ids": None, "attention_mask": mask, "states": cached}
            batch = {k: v if v is None else v.to(device) for k, v in batch.items()}
            result = net(**batch, return_embedding=embed, from_layer=from_layer)
            result = result.float().cpu().numpy()
            if out is None:
                out = np.zeros((len(rows_in), result.shape[1]), dtype=np.float64)
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
    """Keeps the weights of the best-scoring epoch in memory; says when to stop.

    With several processes (``accelerator``), every process takes the first one's score, so
    all keep the same epoch and stop together: a process that stopped alone would leave the
    others waiting in the next gradient exchange.
    """

    def __init__(self, patience: int, accelerator=None) -> None:
        self.patience, self.bad = patience, 0
        self.best_score, self.best_epoch = float("-inf"), -1
        self.state: dict[str, torch.Tensor] | None = None
        self.accelerator = accelerator

    def update(self, net: torch.nn.Module, epoch: int, score: float) -> bool:
        """Record an epoch's score; True when training should stop."""
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            shared = torch.tensor([score], dtype=torch.float64, device=self.accelerator.device)
            score = float(broadcast(shared, from_process=0)[0])
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


def training_loader(split: Split, batch_size: int, seed: int, collate=None):
    """Length-grouped, seeded batches of the training part: ``(sampler, loader)``.

    ``collate`` turns row indices into tensors; by default padded token ids (``Collator``).
    """
    from torch.utils.data import DataLoader

    sampler = LengthGroupedBatches([len(s) for s in split.train_ids], batch_size, seed)
    collate = collate or Collator(split.train_ids, split.y_train, split.pad_id)
    loader = DataLoader(range(len(split.train_ids)), batch_sampler=sampler, collate_fn=collate)
    return sampler, loader


def optimizer_step(accelerator, model, loss, optimizer, scheduler) -> float:
    """Backward, clip, step and reset; returns the loss as a float."""
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return float(loss.detach())


def mean_loss(accelerator, losses: Sequence[float]) -> float | None:
    """The epoch's mean training loss over every process's batches (None for no batches).

    With several processes each sees its own share of the batches, so one process's mean
    would describe only that share. Every process must call this, as it is a collective.
    """
    total, count = float(sum(losses)), float(len(losses))
    if accelerator.num_processes > 1:
        shared = torch.tensor([total, count], dtype=torch.float64, device=accelerator.device)
        total, count = (float(v) for v in accelerator.reduce(shared, reduction="sum"))
    return total / count if count else None


def finish_training(stopper: EarlyStopping, accelerator, model, history: list[dict]) -> list[dict]:
    """Restore the best epoch's weights, mark it in the epoch log, free the accelerator."""
    stopper.restore(accelerator.unwrap_model(model))
    for row in history:
        row["kept"] = row["epoch"] == stopper.best_epoch
    accelerator.free_memory()
    return history
