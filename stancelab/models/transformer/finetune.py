"""Recipe (a), ``params.recipe: finetune``: fine-tune the encoder and a linear head together.

Class-weighted binary cross-entropy over the four labels; length-grouped, dynamically padded
batches; AdamW with a faster rate for the fresh head than for the pretrained encoder and a
linear warm-up/decay schedule; the word-embedding matrix frozen by default (on a CPU its
optimiser update costs more than the rest of the step, and a few thousand sentences cannot
improve a 30k-word vocabulary), optionally the bottom ``freeze_layers`` layers too. After
every epoch the validation part is scored (macro average precision); the best epoch's
weights are kept and training stops after ``early_stopping_patience`` epochs without
improvement. ``mixed_precision`` (``bf16``, or ``auto`` where bf16 is native) runs the
forward pass of each training step under bfloat16 autocast; the weights, validation and
everything after training stay fp32, so prediction and the ONNX export are unchanged.

Runs through ``accelerate``: on the CPU or one GPU as is, on several GPUs when started with
``accelerate launch -m training.train configs/transformer.yaml``. Called by
``TransformerModel.fit``; not a command of its own.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from stancelab.config import TransformerParams
from stancelab.models.transformer.batches import StatesCollator, progress_bar
from stancelab.models.transformer.network import (
    EarlyStopping,
    EncoderClassifier,
    Split,
    finish_training,
    infer,
    make_accelerator,
    mean_loss,
    optimizer_step,
    training_loader,
    training_precision,
    validation_score,
)


def positive_weights(y: np.ndarray) -> torch.Tensor:
    """Per-label BCE weight of positives: sqrt(negatives / positives), at most 10.

    The square root tempers the weighting: full inverse frequency makes rare labels noisy,
    and calibration and tuned thresholds correct the probability scale afterwards anyway.
    """
    pos = y.sum(axis=0).astype(float)
    neg = len(y) - pos
    return torch.as_tensor(
        np.clip(np.sqrt(neg / np.maximum(pos, 1.0)), 0.1, 10.0), dtype=torch.float32
    )


def parameter_groups(net: EncoderClassifier, params: TransformerParams) -> list[dict]:
    """AdamW groups: head vs encoder learning rate; no weight decay on biases and norms."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        is_head = name.startswith("head.")
        no_decay = p.ndim < 2  # biases and LayerNorm weights
        groups.setdefault((is_head, no_decay), []).append(p)
    return [
        {
            "params": ps,
            "lr": params.head_learning_rate if is_head else params.learning_rate,
            "weight_decay": 0.0 if no_decay else params.weight_decay,
        }
        for (is_head, no_decay), ps in sorted(groups.items())
    ]


def freeze(net: EncoderClassifier, params: TransformerParams) -> None:
    """Fix the word embeddings and the bottom ``freeze_layers`` encoder layers (speed levers:
    frozen bottom layers need no backward pass and no optimiser update)."""
    from stancelab.errors import ConfigError

    if params.freeze_embeddings:
        net.backbone.get_input_embeddings().weight.requires_grad_(False)
    if params.cache_layers:
        from stancelab.models.transformer.layers import check_layers, frozen_modules

        check_layers(net.backbone, params.cache_layers)
        for module in frozen_modules(net.backbone, params.cache_layers):
            module.requires_grad_(False)
    if params.freeze_layers:
        n_layers = getattr(net.backbone.config, "num_hidden_layers", None)
        stacks = [
            m
            for m in net.backbone.modules()
            if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers
        ]
        if not stacks or params.freeze_layers >= n_layers:
            raise ConfigError(
                f"freeze_layers: cannot freeze {params.freeze_layers} layers "
                f"of this encoder ({n_layers} layers)"
            )
        for layer in stacks[0][: params.freeze_layers]:
            layer.requires_grad_(False)


def train_finetune(
    net: EncoderClassifier, split: Split, params: TransformerParams, *, seed: int
) -> list[dict]:
    """Train ``net`` in place (ending with the best epoch's weights); returns the epoch log."""
    from transformers import get_linear_schedule_with_warmup

    accelerator = make_accelerator()
    freeze(net, params)
    k = params.cache_layers
    show = params.progress and accelerator.is_local_main_process
    collate, val_states = None, None
    if k:
        from stancelab.models.transformer.layers import cached_states

        net.to(accelerator.device)  # the cached forward pass runs on the GPU when there is one
        states = cached_states(
            net.backbone, split.train_ids + split.val_ids, split.pad_id, k, params.max_length, show
        )
        train_states, val_states = states[: len(split.train_ids)], states[len(split.train_ids) :]
        collate = StatesCollator(train_states, split.y_train)
    sampler, loader = training_loader(split, params.batch_size, seed, collate)
    # foreach: one kernel per step instead of one per tensor (torch uses it by default on GPUs
    # only); it makes the optimiser step much faster on CPU too.
    optimizer = torch.optim.AdamW(parameter_groups(net, params), foreach=True)
    total = params.epochs * len(sampler)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(params.warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(net, optimizer, loader, scheduler)
    pos_weight = (
        positive_weights(split.y_train)
        if params.class_weighting
        else torch.ones(split.y_train.shape[1])
    ).to(accelerator.device)
    # Mixed precision covers the training steps only (forward and loss; autocast keeps the
    # weights and gradients fp32), so validation, calibration and predictions are fp32.
    precision = training_precision(params.mixed_precision, accelerator.device)
    autocast = torch.autocast(
        accelerator.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    )
    stopper, history = EarlyStopping(params.early_stopping_patience, accelerator), []
    # One bar over every epoch's steps, so its time left is the whole training's.
    # (len(loader) is this process's share of the batches when there are several.)
    bar = progress_bar(enabled=show, desc="fine-tune", total=params.epochs * len(loader))
    for epoch in range(1, params.epochs + 1):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        loader.set_epoch(epoch)
        model.train()
        losses = []
        bar.set_description(f"fine-tune epoch {epoch}/{params.epochs} ({precision})")
        for batch in loader:
            with autocast:
                logits = model(
                    batch.get("input_ids"),
                    batch["attention_mask"],
                    states=batch.get("states"),
                    from_layer=k,
                )
            loss = F.binary_cross_entropy_with_logits(
                logits.float(), batch["labels"], pos_weight=pos_weight
            )
            losses.append(optimizer_step(accelerator, model, loss, optimizer, scheduler))
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        inner = accelerator.unwrap_model(model)
        val_logits = infer(inner, split.val_ids, split.pad_id, states=val_states, from_layer=k)
        score = validation_score(split.y_val, val_logits)
        train_loss = mean_loss(accelerator, losses)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_average_precision": score,
                "precision": precision,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        if show:
            bar.write(
                f"fine-tune epoch {epoch}: train loss {train_loss:.4f}, "
                f"validation macro AP {score:.4f}"
            )
        if stopper.update(inner, epoch, score):
            break
    bar.close()
    return finish_training(stopper, accelerator, model, history)
