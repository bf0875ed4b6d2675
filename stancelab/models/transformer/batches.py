"""Batches for the transformer: padding token ids or cached states, and the batch order.

``LengthGroupedBatches`` shuffles batches of similar length, so dynamic padding wastes little;
``Collator`` and ``StatesCollator`` turn a batch of row indices into padded tensors, from
token ids or from the cached hidden states of the cached-layer recipe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence of the batch (dynamic padding)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def pad_states(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad cached states to the longest of the batch; returns (states, attention mask)."""
    width = max(len(s) for s in states)
    out = torch.zeros((len(states), width, states[0].shape[-1]), dtype=states[0].dtype)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        out[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return out, mask


class Collator:
    """DataLoader collate_fn: a list of row indices -> padded tensors, labels, the indices."""

    def __init__(self, ids: list[list[int]], y: np.ndarray, pad_id: int) -> None:
        self.ids, self.y, self.pad_id = ids, y, pad_id

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        batch = pad([self.ids[i] for i in rows], self.pad_id)
        batch["labels"] = torch.as_tensor(self.y[rows], dtype=torch.float32)
        batch["rows"] = torch.as_tensor(rows, dtype=torch.long)
        return batch


class StatesCollator:
    """DataLoader collate_fn for the cached-layer recipe: row indices -> padded states."""

    def __init__(self, states: list[torch.Tensor], y: np.ndarray) -> None:
        self.states, self.y = states, y

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        states, mask = pad_states([self.states[i] for i in rows])
        return {
            "states": states,
            "attention_mask": mask,
            "labels": torch.as_tensor(self.y[rows], dtype=torch.float32),
            "rows": torch.as_tensor(rows, dtype=torch.long),
        }


class LengthGroupedBatches:
    """Batch sampler: shuffle, sort chunks of 16 batches by length, shuffle the batches.

    Deterministic for a (seed, epoch); every row once per epoch; never yields a batch of one
    (in-batch pairs need two): a lone last row joins the batch before it. The size is kept
    as ``size``, not ``batch_size``: accelerate takes a ``batch_size`` attribute to mean that
    every batch is full and, sharding batches over processes, drops the short ones.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, chunk: int = 16) -> None:
        self.lengths, self.size = np.asarray(lengths), batch_size
        self.seed, self.chunk, self.epoch = seed, chunk, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order, size = rng.permutation(len(self.lengths)), self.size
        out: list[list[int]] = []
        for start in range(0, len(order), size * self.chunk):
            part = order[start : start + size * self.chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            out += [part[i : i + size].tolist() for i in range(0, len(part), size)]
            if len(out) > 1 and len(out[-1]) == 1:
                lone = out.pop()
                out[-1] += lone
        return [out[k] for k in rng.permutation(len(out))]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())


def progress_bar(iterable=None, *, enabled: bool, desc: str, total: int | None = None):
    """A tqdm bar (elapsed and time left); ``total`` for a bar updated by hand."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable, desc=desc, total=total, disable=not enabled, leave=False, dynamic_ncols=True
    )
