"""How many top layers of all-mpnet-base-v2 to fine-tune, and for how many epochs.

    python benchmarks/choose_layers.py [--fold 0] [--candidates 10:3 10:4 8:2 8:3]
                                       [--precision fp32|bf16]

Each candidate (cached bottom layers : epochs) is the default config
(``configs/transformer.yaml``) with those two values changed. It is trained on the corpus gold
set plus the augmentation set minus one leave-dyads-out fold (whole conflicts), and scored on
that fold: authored sentences of conflicts it never saw, the harness's ``dyads`` scheme. One
fold keeps this affordable on 2 cores; its interval is wide, so it ranks recipes of clearly
different quality and says nothing finer. Fit time is wall time on this machine, including
the cached forward pass when the cache is cold (the first candidate with a given K).
``--precision`` sets the training steps' arithmetic (``params.mixed_precision``; the default
config's ``auto``). Writes ``benchmarks/results/choose_layers.json`` for fp32 and
``choose_layers_bf16.json`` for bf16.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from stancelab.config import PRECISIONS, load_config
from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.evaluation.augmentation import unseen
from stancelab.evaluation.crossval import fit_model, score
from stancelab.evaluation.metrics import summarize
from stancelab.evaluation.protocol import AUGMENTED, FULL, build_dyad_folds, training_set
from stancelab.files import write_json
from stancelab.models.transformer.network import inference_device, training_precision
from stancelab.paths import usable_cores

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fold", type=int, default=0, help="which leave-dyads-out fold to score")
    parser.add_argument(
        "--candidates", nargs="+", default=["10:3", "10:4", "8:2", "8:3"], help="K:epochs"
    )
    parser.add_argument("--precision", choices=PRECISIONS, help="default: the config's")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/choose_layers*.json")
    args = parser.parse_args()
    base = load_config("configs/transformer.yaml")
    # Resolved where training will run (a GPU when there is one), so the file name is true.
    precision = training_precision(
        args.precision or base.params.mixed_precision, inference_device()
    )
    suffix = "" if precision == "fp32" else f"_{precision}"
    out = args.out or RESULTS / f"choose_layers{suffix}.json"
    corpus = load_labelled(base.data.gold, default_source="corpus")
    aug = load_augmentation(base.data.augment_dir)
    aug = aug.subset(sorted(unseen(aug, corpus), key=lambda i: aug.ids[i]))
    fold = build_dyad_folds(aug, FULL)[args.fold]
    train = training_set(aug, corpus, fold, AUGMENTED, FULL.seed)
    test = aug.subset(fold.test)
    rows = []
    for spec in args.candidates:
        k, epochs = (int(x) for x in spec.split(":"))
        config = load_config(
            "configs/transformer.yaml",
            {
                "params.cache_layers": k,
                "params.epochs": epochs,
                "params.mixed_precision": precision,
                "params.progress": False,
            },
        )
        started = time.perf_counter()
        model = fit_model(config, train, 0)
        seconds = time.perf_counter() - started
        proba, pred = score(model, test.texts, spec)
        summary = summarize(test.y, proba, pred, groups=test.dyads, unit="dyads")
        f1 = summary["overall"]["macro_f1"]
        row = {
            "cached_layers": k,
            "trained_layers": 12 - k,
            "epochs": epochs,
            "epochs_run": len(model.history_),
            "kept_epoch": next((h["epoch"] for h in model.history_ if h.get("kept")), None),
            "fit_seconds": round(seconds, 1),
            "macro_f1": f1["value"],
            "macro_f1_ci": f1["ci"],
            "per_label_f1": {n: v["f1"]["value"] for n, v in summary["per_label"].items()},
        }
        rows.append(row)
        print(
            f"top {12 - k} layers, {epochs} epochs: macro-F1 {f1['value']:.3f} "
            f"[{f1['ci'][0]:.3f}, {f1['ci'][1]:.3f}], fit {seconds:.0f} s"
        )
    result = {
        "fold": fold.name,
        "train_sentences": len(train),
        "test_sentences": len(test),
        "test_dyads": len(set(test.dyads)),
        "machine": f"{platform.machine()}, {usable_cores()} cores, "
        f"Python {platform.python_version()}",
        "precision": precision,
        "candidates": rows,
    }
    write_json(out, result)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
