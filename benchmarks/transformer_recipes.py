"""Measure the transformer: training time of a config, and a first comparison of recipes.

    python benchmarks/transformer_recipes.py speed configs/transformer.yaml [--gold FILE]
    python benchmarks/transformer_recipes.py compare configs/transformer.yaml \
        configs/transformer_setfit.yaml configs/baseline.yaml [--folds 5] [--repeats 1]

``speed`` runs ``python -m training.train``'s code path (``train_run``) on the configured
data into a temporary run directory and prints the wall time. Without a gold file in place it
uses a stand-in: the tiny test fixture, three variants of each sentence, plus the
augmentation set (about 1,700 sentences, like the shipped data).

``compare`` cross-validates each config on identical stratified folds of the gold set, each
training on the gold training folds plus the augmentation set (``--on augment``: folds over
the augmentation set alone), and prints macro-F1, micro-F1 and ECE per config (mean and
standard deviation over folds), pooled per-label F1 and the training time.
The evaluation harness (``training.evaluate``) makes the definitive comparison; this is the
quick first look used to choose the shipped default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def stand_in_gold(path: Path) -> Path:
    """The tiny fixture sentences in three variants each, as a gold file."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import TINY

    frames = ["{}", "{} officials said.", "According to a statement, {}"]
    with path.open("w", encoding="utf-8") as handle:
        for k, frame in enumerate(frames):
            for i, (text, labels) in enumerate(TINY):
                body = text if k != 2 else text[0].lower() + text[1:]
                row = {"id": f"standin-{k}-{i}", "text": frame.format(body), "labels": labels}
                handle.write(json.dumps(row) + "\n")
    return path


def speed(config: Path, gold: Path | None) -> None:
    from stancelab.config import load_config
    from stancelab.training import train_run

    with tempfile.TemporaryDirectory() as tmp:
        overrides = {}
        if gold is None and not Path(load_config(config).data.gold).exists():
            gold = stand_in_gold(Path(tmp) / "gold.jsonl")
            print(f"no gold set: using a stand-in of the test fixture ({gold})")
        if gold is not None:
            overrides["data.gold"] = str(gold)
        started = time.perf_counter()
        result = train_run(config, out=Path(tmp) / "run", overrides=overrides)
        total = time.perf_counter() - started
    print(result.summary())
    for row in getattr(result.model, "history_", []):
        print("  epoch", ", ".join(f"{k} {v}" for k, v in row.items()))
    print(
        f"{config}: fit {result.seconds:.1f} s, whole train_run {total:.1f} s, "
        f"{len(result.data)} sentences"
    )


def compare(
    configs: list[Path], folds: int, repeats: int, seed: int, on: str, results: Path | None
) -> None:
    from sklearn.metrics import f1_score

    from stancelab.calibration import expected_calibration_error
    from stancelab.config import load_config
    from stancelab.data import load_augmentation, load_labelled
    from stancelab.folds import repeated_multilabel_kfold
    from stancelab.labels import LABELS
    from stancelab.training import build_model

    first = load_config(configs[0])
    augment = load_augmentation(first.data.augment_dir)
    if on == "gold":  # folds over gold; each config trains on gold-train (+ augmentation)
        data = load_labelled(first.data.gold, default_source="corpus")
    else:  # folds over the augmentation set alone
        data, augment = augment, None
    print(f"cross-validating on {on} ({len(data)} sentences)", flush=True)
    y = data.y
    rows: dict[str, list[dict]] = {str(c): [] for c in configs}
    pooled = {str(c): np.zeros((repeats, *y.shape)) for c in configs}
    # Finished (repeat, fold, config) results, so an interrupted comparison resumes.
    done = {}
    if results is not None and results.exists():
        for line in results.read_text().splitlines():
            row = json.loads(line)
            done[(row["repeat"], row["fold"], row["config"])] = row
    for repeat, fold, train, test in repeated_multilabel_kfold(y, folds, repeats, seed=seed):
        for config_path in configs:
            key = (repeat, fold, str(config_path))
            if key in done:
                pooled[str(config_path)][repeat][test] = np.asarray(done[key]["pred"])
                rows[str(config_path)].append(done[key]["scores"])
                continue
            config = load_config(config_path)
            if config.model == "transformer":
                config.params.progress = False
            part = data.subset(train)
            if augment is not None and config.data.augment:
                part = part.concat(augment)
            model = build_model(config)
            started = time.perf_counter()
            model.fit(part.texts, part.labels)
            seconds = time.perf_counter() - started
            proba = model.predict_proba([data.texts[i] for i in test])
            pred = (proba >= np.asarray(model.thresholds_)).astype(int)
            pooled[str(config_path)][repeat][test] = pred
            row = {
                "macro_f1": f1_score(y[test], pred, average="macro", zero_division=0),
                "micro_f1": f1_score(y[test], pred, average="micro", zero_division=0),
                "ece": expected_calibration_error(y[test], proba),
                "seconds": seconds,
            }
            rows[str(config_path)].append(row)
            if results is not None:
                record = {
                    "repeat": repeat,
                    "fold": fold,
                    "config": str(config_path),
                    "scores": row,
                    "pred": pred.tolist(),
                }
                with results.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
            print(
                f"repeat {repeat} fold {fold} {config_path} ({len(part)} training sentences): "
                + ", ".join(f"{k} {v:.3f}" for k, v in row.items()),
                flush=True,
            )
    print(f"\n{folds}-fold x {repeats} cross-validation on {on} ({len(data)} sentences)")
    print("Per fold, mean ± standard deviation; pooled = all folds' predictions scored together.")
    print(
        "| config | macro-F1 | micro-F1 | ECE | fit seconds | pooled macro-F1 | "
        + " | ".join(f"pooled F1 {n}" for n in LABELS)
        + " |"
    )
    print("|---" * (6 + len(LABELS)) + "|")
    for name, results in rows.items():
        cells = []
        for key in ("macro_f1", "micro_f1", "ece", "seconds"):
            values = np.array([r[key] for r in results])
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.3f} ± {spread:.3f}")
        pred = pooled[name]
        cells.append(
            f"{np.mean([f1_score(y, p, average='macro', zero_division=0) for p in pred]):.3f}"
        )
        for j in range(len(LABELS)):
            cells.append(
                f"{np.mean([f1_score(y[:, j], p[:, j], zero_division=0) for p in pred]):.3f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/transformer_recipes.py")
    sub = parser.add_subparsers(dest="command", required=True)
    p_speed = sub.add_parser("speed", help="time one training run")
    p_speed.add_argument("config", type=Path)
    p_speed.add_argument(
        "--gold", type=Path, help="gold file (default: the config's, or a stand-in)"
    )
    p_cmp = sub.add_parser("compare", help="cross-validate configs on identical folds")
    p_cmp.add_argument("configs", type=Path, nargs="+")
    p_cmp.add_argument("--folds", type=int, default=5)
    p_cmp.add_argument("--repeats", type=int, default=1)
    p_cmp.add_argument("--seed", type=int, default=0)
    p_cmp.add_argument(
        "--on",
        choices=("gold", "augment"),
        default="gold",
        help="folds over the gold set (training adds the augmentation set) "
        "or over the augmentation set alone",
    )
    p_cmp.add_argument(
        "--results", type=Path, help="JSONL of finished folds: appended to, reused when rerun"
    )
    args = parser.parse_args(argv)
    if args.command == "speed":
        speed(args.config, args.gold)
    else:
        compare(args.configs, args.folds, args.repeats, args.seed, args.on, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
