"""Does the transformer read news better when the corpus weighs more in training?

    python benchmarks/corpus_weight.py [--repeat 3] [--schemes kfold logo]

A training fold of the corpus schemes holds about 135 news sentences and 1,794 authored
ones, so real text is 7% of what the model learns from. This benchmark fits the config on
the harness's own folds twice: as the harness does, and with every corpus sentence of the
training fold repeated ``--repeat`` times (the copies stay in their article's group, so the
held-out part of whole articles and dyads never splits them). Pooled macro-F1 per scheme and
the paired bootstrap (repeated − as is) go to ``benchmarks/results/corpus_weight.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from label_prior import harness_folds  # the harness's folds, shared by the benchmarks

from stancelab.config import load_config
from stancelab.evaluation.crossval import fit_model, score
from stancelab.evaluation.metrics import label_f1, macro_f1, paired_bootstrap
from stancelab.paths import usable_cores

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/transformer.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--schemes", nargs="+", default=["kfold", "logo"])
    parser.add_argument("--out", type=Path, default=RESULTS / "corpus_weight.json")
    args = parser.parse_args()
    config = load_config(args.config, {"data.corpus_repeat": 1})  # repeated here, not twice
    if hasattr(config.params, "progress"):
        config.params.progress = False
    fits = []
    for fold, scored, train in harness_folds(config, args.schemes, []):
        texts = [scored.texts[i] for i in fold.test]
        row = {"scheme": fold.scheme, "fold": fold.name, "y": scored.y[fold.test].tolist()}
        variants = (("as_is", train), ("repeated", train.with_corpus_repeated(args.repeat)))
        for variant, data in variants:
            started = time.perf_counter()
            model = fit_model(config, data, 0)
            proba, pred = score(model, texts, config.name)
            row[variant] = {
                "training_sentences": len(data),
                "fit_seconds": round(time.perf_counter() - started, 1),
                "proba": proba.tolist(),
                "pred": pred.tolist(),
            }
            print(
                f"{fold.scheme} {fold.name} {variant}: {len(data)} sentences, "
                f"macro-F1 {float(macro_f1(scored.y[fold.test], pred)):.3f}",
                flush=True,
            )
        fits.append(row)
    summary = {}
    for scheme in dict.fromkeys(f["scheme"] for f in fits):
        rows = [f for f in fits if f["scheme"] == scheme]
        y = np.concatenate([np.asarray(f["y"]) for f in rows])
        pooled = {
            v: tuple(np.concatenate([np.asarray(f[v][k]) for f in rows]) for k in ("proba", "pred"))
            for v in ("as_is", "repeated")
        }
        summary[scheme] = {
            "sentences": len(y),
            **{
                v: {
                    "macro_f1": float(macro_f1(y, pred)),
                    "per_label": label_f1(y, pred).round(4).tolist(),
                }
                for v, (_, pred) in pooled.items()
            },
            "repeated_minus_as_is": paired_bootstrap(y, pooled["repeated"], pooled["as_is"]),
        }
    result = {
        "config": args.config,
        "repeat": args.repeat,
        "machine": f"{platform.machine()}, {usable_cores()} cores, "
        f"Python {platform.python_version()}",
        "summary": summary,
        "fits": fits,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
