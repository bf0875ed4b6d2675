"""The least time the main job's transformer fits can take on this machine.

    python benchmarks/main_job_floor.py [--config configs/transformer.yaml]
                                        [--out benchmarks/results/main_job_floor.json]

Not a test, and it trains nothing. The main job (``python -m training.pipeline``) fits the
default transformer six times: once on all the data (``runs/transformer/``) and once per fold
of the 5-fold CV. This counts the arithmetic of those fits exactly, from the real training
rows, the real tokenizer and the real batch order: per epoch, the trained top layers' forward
and backward pass over every padded token of the training part, and the forward pass over
the held-out part; once per job, the cached forward pass of the bottom layers over every
distinct sentence. It then divides by the machine's best measured fp32 (and, where it is
native, bf16) matrix-multiply rate at the layers' own shape, which no training step can beat,
and by the rate of real training steps of the default network (random cached states of the
typical batch shape), which is what training gets. Early stopping with patience 1 runs at
least 2 of the 3 epochs, so the floor is given for 2 and 3 epochs. Everything else the main
job does (the baseline, scoring, the active-learning benchmark) is left out: the true time
is above every figure here.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_ceiling import batch_flops, gemm_rate  # noqa: E402

from stancelab.config import load_config  # noqa: E402
from stancelab.data.labelled import label_matrix, load_labelled  # noqa: E402
from stancelab.evaluation.augmentation import augmentation_set  # noqa: E402
from stancelab.evaluation.protocol import AUGMENTED, DEFAULT, build_folds, training_set  # noqa: E402
from stancelab.files import write_json  # noqa: E402
from stancelab.models.fit import training_data  # noqa: E402
from stancelab.models.transformer.batches import LengthGroupedBatches  # noqa: E402
from stancelab.models.transformer.model import holdout_split  # noqa: E402
from stancelab.models.transformer.network import (  # noqa: E402
    load_pretrained,
    tokenize,
    training_precision,
)
from stancelab.paths import usable_cores  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BUDGET_MINUTES = 25.0


def layers(cfg, n: int):
    """``cfg`` with ``n`` layers, for ``batch_flops`` of a slice of the encoder."""
    out = copy.copy(cfg)
    out.num_hidden_layers = n
    return out


def fit_flops(config, data, ids_of: dict[str, list[int]], cfg) -> dict:
    """Arithmetic of one fit on ``data``: training pass per epoch and validation pass."""
    import numpy as np

    p = config.params
    rows = data.with_corpus_repeated(config.data.corpus_repeat)
    y = label_matrix(rows.labels)
    train, val, _ = holdout_split(y, p.validation_fraction, config.seed, rows.groups, rows.texts)
    lengths = np.array([len(ids_of[t]) for t in rows.texts])
    trained = cfg.num_hidden_layers - p.cache_layers
    batches = LengthGroupedBatches(lengths[train], p.batch_size, config.seed).batches()
    shapes = [(len(b), int(lengths[train][b].max())) for b in batches]
    forward = batch_flops(shapes, layers(cfg, trained))
    # Backward: weight gradients everywhere (one forward's worth), input gradients in every
    # trained layer but the lowest (its input, the cached states, needs none).
    backward = forward + forward * (trained - 1) / trained
    val_shapes = [(1, int(n)) for n in lengths[val]]
    return {
        "rows": len(rows),
        "train_rows": len(train),
        "steps_per_epoch": len(batches),
        "padded_tokens_per_epoch": int(sum(n * w for n, w in shapes)),
        "train_flops_per_epoch": forward + backward,
        "validation_flops_per_epoch": batch_flops(val_shapes, layers(cfg, trained)),
        "mean_step_shape": [p.batch_size, round(float(np.mean([w for _, w in shapes])), 1)],
    }


def step_rate(backbone, cfg, params, batch: int, width: int, repeat: int = 8) -> float:
    """Best measured GFLOP/s of real fp32 training steps of the default network, frozen and
    optimised as ``finetune.train_finetune`` does it."""
    import torch
    import torch.nn.functional as F

    from stancelab.labels import LABELS
    from stancelab.models.transformer.finetune import freeze, parameter_groups
    from stancelab.models.transformer.network import EncoderClassifier

    k = params.cache_layers
    net = EncoderClassifier(backbone, len(LABELS))
    freeze(net, params)
    optimizer = torch.optim.AdamW(parameter_groups(net, params), foreach=True)
    states = torch.randn(batch, width, cfg.hidden_size)
    mask = torch.ones(batch, width, dtype=torch.long)  # as batches.pad_states makes it
    target = torch.zeros(batch, len(LABELS))
    net.train()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        loss = F.binary_cross_entropy_with_logits(
            net(None, mask, states=states, from_layer=k), target
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        best = min(best, time.perf_counter() - started)
    trained = cfg.num_hidden_layers - k
    forward = batch_flops([(batch, width)], layers(cfg, trained))
    return (forward * (2 + (trained - 1) / trained)) / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/transformer.yaml")
    parser.add_argument("--out", type=Path, default=RESULTS / "main_job_floor.json")
    args = parser.parse_args()
    import torch

    from stancelab.models.transformer.network import use_all_cores

    use_all_cores()
    config = load_config(args.config)
    p = config.params
    tokenizer, backbone = load_pretrained(p.model, p.allow_download)
    cfg = backbone.config
    corpus = load_labelled(config.data.gold, default_source="corpus")
    aug = augmentation_set(config, corpus, [], DEFAULT.seed)  # as the harness shuffles it
    fits = {"runs/transformer": training_data(config)}
    for fold in build_folds(corpus, DEFAULT):
        fits[f"cv {fold.name}"] = training_set(corpus, aug, fold, AUGMENTED, DEFAULT.seed)
    texts = sorted({t for data in fits.values() for t in data.texts})
    ids_of = dict(zip(texts, tokenize(tokenizer, texts, p.max_length), strict=True))
    per_fit = {name: fit_flops(config, data, ids_of, cfg) for name, data in fits.items()}
    cached = batch_flops([(1, len(ids_of[t])) for t in texts], layers(cfg, p.cache_layers))

    rates = {"fp32_matmul_peak": gemm_rate(cfg)}
    shape = max(per_fit.values(), key=lambda f: f["rows"])["mean_step_shape"]
    rates["fp32_training_step"] = step_rate(backbone, cfg, p, shape[0], round(shape[1]))
    if training_precision("auto", torch.device("cpu")) == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rates["bf16_matmul_peak"] = gemm_rate(cfg)

    floors = {}
    for epochs in (2, p.epochs):
        total = cached + sum(
            epochs * (f["train_flops_per_epoch"] + f["validation_flops_per_epoch"])
            for f in per_fit.values()
        )
        floors[f"{epochs}_epochs"] = {
            "tflops": round(total / 1e12, 1),
            **{f"minutes_at_{k}": round(total / (r * 1e9) / 60, 1) for k, r in rates.items()},
        }
    result = {
        "config": args.config,
        "machine": f"{platform.processor() or platform.machine()}, {usable_cores()} cores, "
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
        f"Python {platform.python_version()}",
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "budget_minutes": BUDGET_MINUTES,
        "rates_gflops": {k: round(r, 1) for k, r in rates.items()},
        "cached_pass_tflops": round(cached / 1e12, 2),
        "fits": {
            name: {k: (round(v / 1e12, 2) if "flops" in k else v) for k, v in f.items()}
            for name, f in per_fit.items()
        },
        "floor": floors,
    }
    write_json(args.out, result)
    print(json.dumps(result["rates_gflops"]))
    for epochs, floor in floors.items():
        print(f"{epochs}: {json.dumps(floor)}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
