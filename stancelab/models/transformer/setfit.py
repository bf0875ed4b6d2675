"""Recipe (b), ``params.recipe: setfit``: contrastive encoder fine-tuning, then a linear head.

The SetFit idea, written on torch: (1) fine-tune the sentence encoder so that the cosine
similarity of two sentences' (mean-pooled, normalised) embeddings matches how much their label
sets overlap; (2) fit one logistic regression per label on the frozen embeddings.

Pairs are formed inside each batch: every pair of sentences in a batch of B is a training
pair (B(B-1)/2 pairs for B encoder passes, instead of SetFit's sampled pairs at two passes
each), with target similarity = Jaccard overlap of their label sets, "none" counting as a
label (1 = same set, 0 = disjoint sets, partial overlap in between for multi-label sentences).
The loss is the squared error between cosine similarity and target, SetFit's default.

After every contrastive epoch (and before the first, so an unhelpful epoch can be refused)
the head is fitted on the training part and scored on the validation part (macro average
precision); the best encoder and its head are kept. The head is stored in the network's
linear layer (saved as safetensors); nothing is pickled. Called by ``TransformerModel.fit``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from stancelab.config import TransformerParams
from stancelab.models.transformer import network
from stancelab.models.transformer.batches import progress_bar
from stancelab.models.transformer.finetune import freeze


def label_overlap(y: np.ndarray) -> np.ndarray:
    """Pairwise Jaccard overlap of label sets, with "none" as an extra label."""
    ext = np.hstack([y, (y.sum(axis=1) == 0)[:, None]]).astype(float)
    inter = ext @ ext.T
    union = ext.sum(1)[:, None] + ext.sum(1)[None, :] - inter
    return inter / np.maximum(union, 1.0)


def fit_head(
    emb: np.ndarray, y: np.ndarray, C: float, balanced: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-label logistic regression on embeddings -> (weight (labels, dim), bias (labels,))."""
    from sklearn.linear_model import LogisticRegression

    weight = np.zeros((y.shape[1], emb.shape[1]))
    bias = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        if y[:, j].min() == y[:, j].max():  # one class only: a constant, clipped logit
            bias[j] = 4.0 if y[0, j] else -4.0
            continue
        lr = LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=2000)
        lr.fit(emb, y[:, j])
        weight[j], bias[j] = lr.coef_[0], lr.intercept_[0]
    return weight, bias


def set_head(net: network.EncoderClassifier, weight: np.ndarray, bias: np.ndarray) -> None:
    with torch.no_grad():
        net.head.weight.copy_(torch.as_tensor(weight, dtype=net.head.weight.dtype))
        net.head.bias.copy_(torch.as_tensor(bias, dtype=net.head.bias.dtype))


def pair_loss(emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error between cosine similarity and target, over all pairs i < j of the batch."""
    sim = emb @ emb.T  # embeddings are L2-normalised: this is cosine similarity
    i, j = torch.triu_indices(len(emb), len(emb), offset=1, device=emb.device)
    return F.mse_loss(sim[i, j], target[i, j])


def train_setfit(
    net: network.EncoderClassifier, split: network.Split, params: TransformerParams, *, seed: int
) -> list[dict]:
    """Train ``net`` in place (best encoder, fitted head); returns the epoch log."""
    from transformers import get_linear_schedule_with_warmup

    net.normalize = True
    net.head.requires_grad_(False)
    freeze(net, params)
    overlap = torch.as_tensor(label_overlap(split.y_train), dtype=torch.float32)

    def evaluate(epoch: int, started: float, losses: list[float]) -> bool:
        inner = accelerator.unwrap_model(model)
        emb = network.infer(inner, split.train_ids, split.pad_id, embed=True)
        set_head(inner, *fit_head(emb, split.y_train, params.head_C, params.class_weighting))
        score = network.validation_score(
            split.y_val, network.infer(inner, split.val_ids, split.pad_id)
        )
        history.append(
            {
                "epoch": epoch,
                "train_loss": network.mean_loss(accelerator, losses),
                "val_average_precision": score,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        if show:
            print(f"setfit epoch {epoch}: validation macro AP {score:.4f}", flush=True)
        return stopper.update(inner, epoch, score)

    accelerator = network.make_accelerator()
    stopper, history = network.EarlyStopping(params.early_stopping_patience, accelerator), []
    show = params.progress and accelerator.is_local_main_process
    sampler, loader = network.training_loader(split, params.batch_size, seed)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=params.learning_rate, weight_decay=params.weight_decay, foreach=True
    )
    total = max(1, params.contrastive_epochs * len(sampler))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(params.warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(net, optimizer, loader, scheduler)
    overlap = overlap.to(accelerator.device)
    stop = evaluate(0, time.perf_counter(), [])
    for epoch in range(1, params.contrastive_epochs + 1):
        if stop:
            break
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        loader.set_epoch(epoch)
        model.train()
        losses: list[float] = []
        bar = progress_bar(
            loader,
            enabled=show,
            desc=f"setfit contrastive epoch {epoch}/{params.contrastive_epochs}",
        )
        for batch in bar:
            emb = model(batch["input_ids"], batch["attention_mask"], return_embedding=True)
            rows = batch["rows"].to(accelerator.device)
            loss = pair_loss(emb, overlap[rows][:, rows])
            losses.append(network.optimizer_step(accelerator, model, loss, optimizer, scheduler))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        stop = evaluate(epoch, started, losses)
    return network.finish_training(stopper, accelerator, model, history)
