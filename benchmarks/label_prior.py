"""Do thresholds tuned at the augmentation set's label shares over-predict rare labels on news?

    python benchmarks/label_prior.py [--schemes kfold logo dyads] [--configs A.yaml B.yaml]

The authored augmentation set holds each rare label in about one sentence of five; the
corpus of news sentences holds conditional de-escalation and denial in one of 25. Each model
tunes its thresholds on held-out rows drawn mostly from the augmentation set, so its F1-best
cut is the one for that mix. This benchmark fits each config on the harness's own folds
(5-fold CV and leave one article out on the corpus, leave-dyads-out folds 1-4 on authored
text) and scores two rules on the same fits:

* ``tuned``: the thresholds the model shipped with (what the harness reports);
* ``prior``: thresholds that maximise F1 on the same held-out rows after reweighting them to
  the label shares of the training fold's corpus sentences (positives of label j weighted
  by pi_corpus / pi_heldout, negatives by (1 - pi_corpus) / (1 - pi_heldout)): the F1-best
  cut for text with news-like label shares. Nothing from a test fold is used.

Pooled macro-F1 per scheme and rule, and paired bootstraps (prior − tuned, and transformer −
baseline under each rule; on the dyads scheme they draw whole dyads), go to
``benchmarks/results/label_prior.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np

from stancelab.config import load_config
from stancelab.data.labelled import load_labelled
from stancelab.evaluation.augmentation import augmentation_set
from stancelab.evaluation.crossval import fit_model, score
from stancelab.evaluation.metrics import label_f1, macro_f1, paired_bootstrap
from stancelab.evaluation.protocol import (
    AUGMENTED,
    DEFAULT,
    build_dyad_folds,
    build_folds,
    training_set,
)
from stancelab.files import write_json
from stancelab.models.calibration import tune_thresholds
from stancelab.models.transformer.model import holdout_split
from stancelab.paths import usable_cores

RESULTS = Path(__file__).parent / "results"
HARNESS = dataclasses.replace(DEFAULT, leave_one_article_out=True, leave_dyads_out=5)


def harness_folds(config, schemes, dyad_folds):
    """(fold, scored set, training set) of the harness's folds (``training.evaluate
    --articles --dyads``): the same sets, orders and seeds, so a fit here is the harness's."""
    corpus = load_labelled(config.data.gold, default_source="corpus")
    aug = augmentation_set(config, corpus, [], HARNESS.seed)
    plans = [(f, corpus, aug) for f in build_folds(corpus, HARNESS) if f.scheme in schemes]
    if "dyads" in schemes:
        by_id = aug.subset(np.argsort(aug.ids, kind="stable"))
        folds = build_dyad_folds(by_id, HARNESS)
        plans += [(folds[i], by_id, corpus) for i in dyad_folds]
    for fold, scored, extra in plans:
        yield fold, scored, training_set(scored, extra, fold, AUGMENTED, HARNESS.seed + fold.repeat)


def fold_dyads(fold, scored) -> dict:
    """What a fit of ``fold`` records for ``resampled_units``: its test rows' dyads, on the
    dyads scheme."""
    return {"test_dyads": [scored.dyads[i] for i in fold.test]} if fold.scheme == "dyads" else {}


def resampled_units(scheme: str, fits: list[dict]) -> dict:
    """``paired_bootstrap``'s ``groups`` and ``unit`` for the pooled test rows of ``fits``:
    whole dyads on the dyads scheme, whose figures claim to hold for unseen conflicts (the
    sentences of one conflict are not independent draws), sentences otherwise."""
    if scheme != "dyads":
        return {}
    return {"groups": [d for f in fits for d in f["test_dyads"]], "unit": "dyads"}


def heldout_rows(model, config, train) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """(labels, calibrated probabilities, keys) of the rows the model tuned its thresholds on;
    ``keys`` as the model passed them to ``tune_thresholds`` (copies of one sentence count
    once), so that the prior rule differs from the tuned one only in its reweighting."""
    if model.kind == "baseline":  # inner cross-validation over every training row, no keys
        # oof_ keeps the raw scores; the thresholds were tuned on them calibrated by the
        # calibration fitted to all of them, which is what the prior rule must see too.
        oof = model.oof_
        scores = np.asarray(oof["scores"])
        return np.asarray(oof["y"]), model.calibration_.transform(scores), None
    rows = train.with_corpus_repeated(config.data.corpus_repeat)  # the rows it was fit on
    fraction = model.params.validation_fraction
    _, val, _ = holdout_split(rows.y, fraction, model.seed, rows.groups, rows.texts)
    texts = [rows.texts[i] for i in val]
    return rows.y[val], np.asarray(model.predict_proba(texts)), texts


def reweighted_thresholds(
    y: np.ndarray, proba: np.ndarray, target: np.ndarray, keys=None
) -> list[float]:
    """Per-label F1-best cut on rows reweighted from their own label shares to ``target``:
    positives of label j by target_j / share_j, negatives by (1 - target_j) / (1 - share_j).
    ``keys`` as in ``tune_thresholds``."""
    share = np.clip(y.mean(axis=0), 1e-9, 1 - 1e-9)
    weights = np.where(y == 1, target / share, (1 - target) / (1 - share))
    return tune_thresholds(y, proba, weights=weights, keys=keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schemes", nargs="+", default=["kfold", "logo", "dyads"])
    parser.add_argument("--dyad-folds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument(
        "--configs", nargs="+", default=["configs/baseline.yaml", "configs/transformer.yaml"]
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "label_prior.json")
    args = parser.parse_args()
    configs = [load_config(c) for c in args.configs]
    for config in configs:
        if hasattr(config.params, "progress"):
            config.params.progress = False
    fits = []
    for fold, scored, train in harness_folds(configs[0], args.schemes, args.dyad_folds):
        is_corpus = np.asarray([s == "corpus" for s in train.sources])
        target = train.y[is_corpus].mean(axis=0)
        test_texts = [scored.texts[i] for i in fold.test]
        for config in configs:
            started = time.perf_counter()
            model = fit_model(config, train, 0)
            seconds = time.perf_counter() - started
            proba, _ = score(model, test_texts, config.name)
            y_held, p_held, keys = heldout_rows(model, config, train)
            fits.append(
                {
                    "scheme": fold.scheme,
                    "fold": fold.name,
                    "model": config.name,
                    "fit_seconds": round(seconds, 1),
                    "test_ids": [scored.ids[i] for i in fold.test],
                    **fold_dyads(fold, scored),
                    "y": scored.y[fold.test].tolist(),
                    "proba": proba.tolist(),
                    "tuned": list(model.thresholds_),
                    "prior": reweighted_thresholds(y_held, p_held, target, keys),
                    "heldout_share": y_held.mean(axis=0).tolist(),
                    "corpus_share": target.tolist(),
                }
            )
            print(
                f"{fold.scheme} {fold.name} {config.name}: fit {seconds:.0f} s, "
                f"tuned {np.round(model.thresholds_, 2).tolist()}, "
                f"prior {np.round(fits[-1]['prior'], 2).tolist()}",
                flush=True,
            )
    result = {
        "configs": args.configs,
        "machine": f"{platform.machine()}, {usable_cores()} cores, "
        f"Python {platform.python_version()}",
        "summary": summarise(fits, [c.name for c in configs]),
        "fits": fits,
    }
    write_json(args.out, result)
    print(json.dumps(result["summary"], indent=1))
    print(f"-> {args.out}")


def summarise(fits: list[dict], models: list[str]) -> dict:
    """Pooled macro-F1 per scheme, model and rule, with the paired bootstraps."""
    out = {}
    for scheme in dict.fromkeys(f["scheme"] for f in fits):
        pooled = {}
        for name in models:
            rows = [f for f in fits if f["scheme"] == scheme and f["model"] == name]
            y = np.concatenate([np.asarray(f["y"]) for f in rows])
            proba = np.concatenate([np.asarray(f["proba"]) for f in rows])
            preds = {
                rule: np.concatenate(
                    [(np.asarray(f["proba"]) >= np.asarray(f[rule])).astype(int) for f in rows]
                )
                for rule in ("tuned", "prior")
            }
            pooled[name] = (y, proba, preds)
        units = resampled_units(scheme, rows)  # the same test rows for every model
        figures = {}
        for name, (y, proba, preds) in pooled.items():
            figures[name] = {
                rule: {
                    "macro_f1": float(macro_f1(y, pred)),
                    "per_label": label_f1(y, pred).round(4).tolist(),
                }
                for rule, pred in preds.items()
            }
            figures[name]["prior_minus_tuned"] = paired_bootstrap(
                y, (proba, preds["prior"]), (proba, preds["tuned"]), **units
            )
        if len(models) == 2:
            (a, (y, pa, preds_a)), (b, (_, pb, preds_b)) = list(pooled.items())
            for rule in ("tuned", "prior"):
                figures[f"{b}_minus_{a}_{rule}"] = paired_bootstrap(
                    y, (pb, preds_b[rule]), (pa, preds_a[rule]), **units
                )
        out[scheme] = figures
    return out


if __name__ == "__main__":
    main()
