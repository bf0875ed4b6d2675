"""Would averaging several fits of the default transformer (a seed ensemble) beat one fit?

    python benchmarks/seed_ensemble.py [--folds 1 2 3 4] [--members 3]

For each leave-dyads-out fold (fold 0 chose the default's layers and epochs, so it is left
out by default), the default config (``configs/transformer.yaml``) is fit ``--members``
times with seeds 13, 14, ...: each fit has its own initialisation, batch order and held-out
part of whole groups. Each is scored on the fold's authored sentences of conflicts it never
saw. An ensemble of the first k fits averages their calibrated probabilities and their
per-label thresholds (an approximation: a shipped ensemble would fit one calibration and one
set of thresholds on the averaged held-out logits). The pooled paired bootstrap compares
the full ensemble with the first fit alone, which is what the default ships. Writes
``benchmarks/results/seed_ensemble.json``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from stancelab.config import load_config
from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.evaluation.augmentation import unseen
from stancelab.evaluation.comparison import bootstrap_p
from stancelab.evaluation.crossval import fit_model, score
from stancelab.evaluation.metrics import macro_f1, paired_bootstrap
from stancelab.evaluation.protocol import AUGMENTED, FULL, build_dyad_folds, training_set
from stancelab.files import write_json
from stancelab.paths import usable_cores

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "seed_ensemble.json")
    args = parser.parse_args()
    config = load_config("configs/transformer.yaml", {"params.progress": False})
    corpus = load_labelled(config.data.gold, default_source="corpus")
    aug = load_augmentation(config.data.augment_dir)
    aug = aug.subset(sorted(unseen(aug, corpus), key=lambda i: aug.ids[i]))
    folds = build_dyad_folds(aug, FULL)
    rows, pooled = [], {"y": [], "dyads": [], "single": [], "ensemble": []}
    for f in args.folds:
        train = training_set(aug, corpus, folds[f], AUGMENTED, FULL.seed)
        test = aug.subset(folds[f].test)
        probas, cuts, members = [], [], []
        for offset in range(args.members):
            started = time.perf_counter()
            model = fit_model(config, train, offset)
            seconds = time.perf_counter() - started
            proba, pred = score(model, test.texts, f"seed {config.seed + offset}")
            probas.append(proba)
            cuts.append(np.asarray(model.thresholds_, float))
            f1 = float(macro_f1(test.y, pred))
            members.append({"seed": config.seed + offset, "macro_f1": f1, "fit_seconds": seconds})
            print(f"fold {f}, seed {config.seed + offset}: macro-F1 {f1:.4f}, fit {seconds:.0f} s")
        ensembles = {}
        for k in range(2, args.members + 1):
            mean = np.mean(probas[:k], axis=0)
            pred = (mean >= np.mean(cuts[:k], axis=0)).astype(int)
            ensembles[k] = (mean, pred)
            print(f"fold {f}, ensemble of {k}: macro-F1 {float(macro_f1(test.y, pred)):.4f}")
        rows.append(
            {
                "fold": f,
                "test_sentences": len(test),
                "members": members,
                "ensembles": {
                    str(k): float(macro_f1(test.y, pred)) for k, (_, pred) in ensembles.items()
                },
            }
        )
        pooled["y"].append(test.y)
        pooled["dyads"] += test.dyads
        pooled["single"].append((probas[0], (probas[0] >= cuts[0]).astype(int)))
        pooled["ensemble"].append(ensembles[args.members])
    y = np.concatenate(pooled["y"])
    single = tuple(np.concatenate([p[i] for p in pooled["single"]]) for i in (0, 1))
    ensemble = tuple(np.concatenate([p[i] for p in pooled["ensemble"]]) for i in (0, 1))
    compared = paired_bootstrap(y, ensemble, single, groups=pooled["dyads"], unit="dyads")
    print(
        f"pooled over folds {args.folds}: ensemble of {args.members} − first fit "
        f"{compared['difference']:+.4f} [{compared['ci'][0]:+.4f}, {compared['ci'][1]:+.4f}], "
        f"p {bootstrap_p(compared)}"
    )
    result = {
        "config": "configs/transformer.yaml",
        "machine": f"{platform.machine()}, {usable_cores()} cores, "
        f"Python {platform.python_version()}",
        "folds": rows,
        "pooled": {
            "sentences": len(y),
            "first_fit_macro_f1": float(macro_f1(y, single[1])),
            "ensemble_macro_f1": float(macro_f1(y, ensemble[1])),
            "ensemble_minus_first_fit": compared,
        },
    }
    write_json(args.out, result)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
