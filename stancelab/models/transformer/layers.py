"""The cached-layer recipe's parts: run an encoder's layers in two parts, and cache the first.

With ``params.cache_layers: K`` the bottom K layers (and the embeddings) stay frozen, so
their output for a sentence never changes during training. It is computed once and kept on
disk, keyed by the weights, the maximum length and K; each sentence is keyed by its token
ids. Every fold, epoch, repeat and config of an evaluation then reuses one forward pass
through the bottom layers, and training runs only the top layers and the head.

``run_layers`` is the encoder's own loop (the same mask and, for MPNet, the same relative
position bias), so bottom then top gives the logits of one uncached forward pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from stancelab.data.folds import first_rows
from stancelab.errors import ConfigError, first_line
from stancelab.files import atomic_open, remove_stale_temporaries
from stancelab.models.base import is_main_process
from stancelab.paths import state_dir

SUPPORTED = ("mpnet", "bert")  # encoders whose layer loop run_layers reproduces
BATCH = 64


def layer_stack(backbone) -> torch.nn.ModuleList:
    kind = getattr(backbone.config, "model_type", "")
    if kind not in SUPPORTED:
        raise ConfigError(
            f"cache_layers: supported for {', '.join(SUPPORTED)} encoders, not {kind!r}"
        )
    return backbone.encoder.layer


def check_layers(backbone, k: int) -> None:
    n = len(layer_stack(backbone))
    if not 0 < k < n:
        raise ConfigError(f"cache_layers: must be between 1 and {n - 1} for this encoder, got {k}")


def frozen_modules(backbone, k: int) -> list[torch.nn.Module]:
    """What the cached part depends on: embeddings, bottom K layers, MPNet's position bias."""
    modules = [backbone.embeddings, *layer_stack(backbone)[:k]]
    bias = getattr(backbone.encoder, "relative_attention_bias", None)
    return modules + ([bias] if bias is not None else [])


def run_layers(backbone, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop=None):
    """Hidden states after layers ``start``..``stop`` (exclusive) given those before them."""
    from transformers.masking_utils import create_bidirectional_mask

    mask = create_bidirectional_mask(
        config=backbone.config, inputs_embeds=hidden, attention_mask=attention_mask
    )
    extra = ()
    if hasattr(backbone.encoder, "compute_position_bias"):  # MPNet: one bias for every layer
        extra = (backbone.encoder.compute_position_bias(hidden),)
    for layer in layer_stack(backbone)[start:stop]:
        out = layer(hidden, mask, *extra)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def bottom_states(backbone, input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int):
    return run_layers(backbone, backbone.embeddings(input_ids=input_ids), attention_mask, 0, k)


def frozen_digest(backbone, k: int) -> str:
    """SHA-256 of every weight the cached states depend on (names, shapes and values)."""
    digest = hashlib.sha256(getattr(backbone.config, "model_type", "").encode())
    for module in frozen_modules(backbone, k):
        for name, tensor in module.state_dict().items():
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cached_states(backbone, rows: list[list[int]], pad_id: int, k: int, max_length: int, show):
    """Hidden states after layer K for token-id rows, through the on-disk cache."""
    cache = LayerCache.for_model(frozen_digest(backbone, k), max_length, k)
    return cache.states(backbone, rows, pad_id, k, show=show)


class LayerCache:
    """Hidden states after the bottom K layers, one entry per token-id sequence, on disk.

    A folder per (weights, max_length, K) under ``<state dir>/layer-cache/``; each computation
    adds one shard, written under a temporary name and renamed, so a killed run leaves
    nothing half-written (its temporary file is removed by a later run once it is an hour
    old). Each shard carries the SHA-256 of its keys and tensors: a shard that fails the check or
    does not parse is a cache miss, recomputed, never used. A cache that cannot be written
    (a read-only state directory) keeps the states in memory for the process, with a
    warning. Loaded shards stay in memory for the process.
    """

    _open: dict[Path, LayerCache] = {}

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entries: dict[str, torch.Tensor] = {}
        self.seen: set[str] = set()

    @classmethod
    def for_model(cls, weights: str, max_length: int, k: int, root: Path | None = None):
        key = json.dumps({"weights": weights, "max_length": max_length, "layers": k})
        name = hashlib.sha256(key.encode()).hexdigest()[:20]
        folder = (root or state_dir() / "layer-cache") / name
        if folder not in cls._open:
            cls._open[folder] = cls(folder)
        return cls._open[folder]

    @staticmethod
    def key(ids: Sequence[int]) -> str:
        return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()[:32]

    def _load_shards(self) -> None:
        from safetensors import safe_open

        remove_stale_temporaries(self.folder, ".shard-*.tmp")
        for path in sorted(self.folder.glob("shard-*.safetensors")):
            if path.name in self.seen:
                continue
            try:
                with safe_open(str(path), framework="pt") as shard:
                    meta = shard.metadata()
                    keys = json.loads(meta["keys"])
                    states, offsets = shard.get_tensor("states"), shard.get_tensor("offsets")
                if shard_digest(meta["keys"], states, offsets) != meta["sha256"]:
                    raise ValueError("checksum")
            except Exception:  # a damaged shard is only a cache miss: recompute, drop the file
                with contextlib.suppress(OSError):  # a read-only cache keeps it, unused
                    path.unlink(missing_ok=True)
                self.seen.add(path.name)  # not read again by this process
                continue
            for i, key in enumerate(keys):
                self.entries[key] = states[offsets[i] : offsets[i + 1]]
            self.seen.add(path.name)

    def states(self, backbone, rows: list[list[int]], pad_id: int, k: int, *, show=False):
        """Hidden states after layer K for every row of token ids, computing what is missing."""
        from stancelab.models.transformer.batches import pad, progress_bar

        self._load_shards()
        keys = [self.key(r) for r in rows]
        # Each missing sentence at its first row: copies later in the rows (data.corpus_repeat)
        # must not change the batches its states are computed in, as batch-mates move the
        # states' last bits, and training carries that into its figures.
        missing = [int(i) for i in first_rows(keys) if keys[i] not in self.entries]
        if missing:
            missing.sort(key=lambda i: len(rows[i]))
            new: dict[str, torch.Tensor] = {}
            was_training, device = backbone.training, next(backbone.parameters()).device
            backbone.eval()
            starts = range(0, len(missing), BATCH)
            with torch.inference_mode():
                for s in progress_bar(starts, enabled=show, desc=f"caching layers 1-{k}"):
                    chunk = missing[s : s + BATCH]
                    batch = {
                        k_: v.to(device) for k_, v in pad([rows[i] for i in chunk], pad_id).items()
                    }
                    hidden = bottom_states(backbone, batch["input_ids"], batch["attention_mask"], k)
                    for j, i in enumerate(chunk):  # kept on the CPU: batches move them
                        new[keys[i]] = hidden[j, : len(rows[i])].float().cpu().clone()
            backbone.train(was_training)
            if is_main_process():  # the other processes of a launch compute the same states
                self._write_shard(new)
            self.entries.update(new)
        return [self.entries[k_] for k_ in keys]

    def _write_shard(self, new: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        keys = list(new)
        lengths = [len(new[k]) for k in keys]
        offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int64)
        states = torch.cat([new[k] for k in keys]).contiguous()
        name = f"shard-{uuid.uuid4().hex}.safetensors"
        listed = json.dumps(keys)
        meta = {"keys": listed, "sha256": shard_digest(listed, states, offsets)}
        data = save({"states": states, "offsets": offsets}, metadata=meta)
        try:
            with atomic_open(self.folder / name, "wb") as handle:
                handle.write(data)
        except OSError as exc:  # read-only or full: training goes on from memory
            warnings.warn(
                f"cannot write the layer cache in {self.folder} ({first_line(exc)}): the "
                "states are kept in memory for this process only",
                stacklevel=2,
            )
            return
        self.seen.add(name)


def shard_digest(keys: str, states: torch.Tensor, offsets: torch.Tensor) -> str:
    """SHA-256 of a shard's contents as stored: its key list (JSON), and the dtype, shape and
    bytes of its states and offsets, so no damaged part can hand a sentence wrong states."""
    digest = hashlib.sha256(keys.encode())
    for tensor in (states, offsets):  # a damaged header could keep the size, not the layout
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)};".encode())
    digest.update(states.contiguous().numpy())
    digest.update(offsets.contiguous().numpy())
    return digest.hexdigest()
