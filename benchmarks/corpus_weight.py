"""Does the transformer read news better when the corpus weighs more in training?

    python benchmarks/corpus_weight.py [--repeat 3] [--schemes kfold logo] [--seed-offset 0]
    python benchmarks/corpus_weight.py --pool A.json B.json --out C.json

A training fold of the corpus schemes holds about 135 news sentences and 1,794 authored
ones, so real text is 7% of what the model learns from. This benchmark fits the config on
the harness's own folds twice: as the harness does, and with every corpus sentence of the
training fold repeated ``--repeat`` times (the copies stay in their article's group, so the
held-out part of whole articles and dyads never splits them). Pooled macro-F1 per scheme and
the paired bootstrap (repeated − as is) go to ``benchmarks/results/corpus_weight.json``.
``--seed-offset K`` fits both variants with the config's seed + K (the folds stay the
harness's): the same comparison again, with other initialisations and batch orders.
``--pool A.json B.json ... --out C.json`` summarises such runs together (figures averaged
over the seeds, the bootstrap over sentences and seeds); it reads the config, repeat,
schemes and seeds from the files, and refuses ``--config``, ``--repeat``, ``--schemes`` and
``--seed-offset``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from label_prior import (  # the harness's folds, shared by the benchmarks
    fold_dyads,
    harness_folds,
    resampled_units,
)

from stancelab.config import load_config
from stancelab.evaluation.crossval import fit_model, score
from stancelab.evaluation.metrics import label_f1, macro_f1, paired_bootstrap
from stancelab.files import write_json
from stancelab.paths import usable_cores

RESULTS = Path(__file__).parent / "results"
# The options of a run; --pool takes them from its files and refuses them.
RUN_DEFAULTS = {
    "config": "configs/transformer.yaml",
    "repeat": 3,
    "schemes": ["kfold", "logo"],
    "seed_offset": 0,
}


def summarize(runs: list[list[dict]]) -> dict:
    """Pooled macro-F1 per scheme and variant, and the paired bootstrap (repeated − as is),
    over one or more runs of the same folds with other seeds: each figure is the mean over
    the seeds; the bootstrap resamples sentences (whole dyads on the dyads scheme) and seeds,
    each seed of one variant drawn with the same seed of the other (``paired_bootstrap``)."""
    summary = {}
    for scheme in dict.fromkeys(f["scheme"] for f in runs[0]):
        per_seed = [[f for f in fits if f["scheme"] == scheme] for fits in runs]
        y = np.concatenate([np.asarray(f["y"]) for f in per_seed[0]])
        pooled = {
            v: tuple(
                np.stack([np.concatenate([np.asarray(f[v][k]) for f in rows]) for rows in per_seed])
                for k in ("proba", "pred")
            )
            for v in ("as_is", "repeated")
        }
        summary[scheme] = {
            "sentences": len(y),
            **{
                v: {
                    "macro_f1": float(np.mean([macro_f1(y, p) for p in pred])),
                    "macro_f1_per_seed": [round(float(macro_f1(y, p)), 4) for p in pred],
                    "per_label": np.mean([label_f1(y, p) for p in pred], axis=0).round(4).tolist(),
                }
                for v, (_, pred) in pooled.items()
            },
            "repeated_minus_as_is": paired_bootstrap(
                y, pooled["repeated"], pooled["as_is"], **resampled_units(scheme, per_seed[0])
            ),
        }
    return summary


def pool(paths: list[Path], out: Path) -> None:
    """``--pool A.json B.json ...``: one summary over runs of the same folds with other seeds."""
    if any(out.resolve() == p.resolve() for p in paths):
        raise SystemExit(f"--pool: --out {out} is one of the runs it reads; give another --out")
    results = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    for p, r in zip(paths, results, strict=True):
        if "fits" not in r:
            raise SystemExit(f"--pool: {p} holds no fits (a summary, not a run of this script)")
    folds = [[(f["scheme"], f["fold"], f["y"]) for f in r["fits"]] for r in results]
    if any(f != folds[0] for f in folds[1:]):
        raise SystemExit("--pool: the files were not run on the same folds")
    for key in ("config", "repeat"):  # other seeds of one comparison, not other comparisons
        if len({r[key] for r in results}) > 1:
            raise SystemExit(f"--pool: the files differ in {key} ({[r[key] for r in results]})")
    seeds = [r.get("seed", 13) for r in results]  # 13: the first run, before "seed"
    if len(set(seeds)) < len(seeds):
        raise SystemExit(f"--pool: a seed occurs twice ({seeds}); each run must have its own")
    summary = summarize([r["fits"] for r in results])
    pooled = {
        "pooled": [str(p) for p in paths],
        "seeds": seeds,
        "repeat": results[0]["repeat"],
        "summary": summary,
    }
    write_json(out, pooled)
    print(json.dumps(summary, indent=1))
    print(f"-> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # A run's options default to None, so that --pool can tell those given (even with their
    # default value) and refuse them; a run fills in RUN_DEFAULTS below.
    parser.add_argument("--config", help=f"default: {RUN_DEFAULTS['config']}")
    parser.add_argument("--repeat", type=int, help=f"default: {RUN_DEFAULTS['repeat']}")
    parser.add_argument(
        "--schemes", nargs="+", help=f"default: {' '.join(RUN_DEFAULTS['schemes'])}"
    )
    parser.add_argument(
        "--seed-offset",
        type=int,
        help=f"added to the config's seed (both variants); default: {RUN_DEFAULTS['seed_offset']}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="default: results/corpus_weight.json (seed offset K: corpus_weight_seed<seed>.json), "
        "with --pool results/corpus_weight_pooled.json",
    )
    parser.add_argument(
        "--pool", type=Path, nargs="+", help="results of other seeds: summarise them together"
    )
    args = parser.parse_args()
    given = [f"--{key.replace('_', '-')}" for key in RUN_DEFAULTS if getattr(args, key) is not None]
    if args.pool:
        if given:  # pool would ignore them, and they would seem to have had an effect
            raise SystemExit(
                f"--pool: {', '.join(given)} not allowed: --pool reads the config, repeat, "
                "schemes and seeds from the files"
            )
        # by default not corpus_weight.json: the first run, which it reads
        return pool(args.pool, args.out or RESULTS / "corpus_weight_pooled.json")
    for key, default in RUN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    config = load_config(args.config, {"data.corpus_repeat": 1})  # repeated here, not twice
    seed = config.seed + args.seed_offset
    # Another seed's run never replaces the first one's file unless told to.
    args.out = args.out or RESULTS / (
        f"corpus_weight_seed{seed}.json" if args.seed_offset else "corpus_weight.json"
    )
    if hasattr(config.params, "progress"):
        config.params.progress = False
    fits = []
    for fold, scored, train in harness_folds(config, args.schemes, []):
        texts = [scored.texts[i] for i in fold.test]
        row = {"scheme": fold.scheme, "fold": fold.name, "y": scored.y[fold.test].tolist()}
        row.update(fold_dyads(fold, scored))
        variants = (("as_is", train), ("repeated", train.with_corpus_repeated(args.repeat)))
        for variant, data in variants:
            started = time.perf_counter()
            model = fit_model(config, data, args.seed_offset)
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
    summary = summarize([fits])
    result = {
        "config": args.config,
        "repeat": args.repeat,
        "seed": seed,
        "machine": f"{platform.machine()}, {usable_cores()} cores, "
        f"Python {platform.python_version()}",
        "summary": summary,
        "fits": fits,
    }
    write_json(args.out, result)
    print(json.dumps(summary, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
