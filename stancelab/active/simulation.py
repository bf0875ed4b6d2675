"""Simulated active learning on the corpus gold set: does uncertainty sampling beat random?

    python -m training.active_learning [--out DIR] [--seeds N]   (``training/active_learning.py``)

Pool-based: per seed and fold, the baseline starts from a warm start of augmentation sentences
and each strategy picks batches from the pool with ``stancelab.active.selection.select``,
exactly as ``suggest`` does; at each budget the test-fold predictions are kept. Why it is built
this way: README, "The active-learning benchmark". Outputs: ``stancelab.active.simreport``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stancelab.config import load_config
from stancelab.data.labelled import LabelledSet, load_augmentation, load_labelled
from stancelab.errors import InputError
from stancelab.evaluation.augmentation import unseen_noted
from stancelab.labels import LABELS

RESULT_FILE = "active_learning.json"


@dataclass(frozen=True)
class Setup:
    seeds: int = 5
    folds: int = 5
    warm_start: int = 200  # authored sentences every model starts from
    batch: int = 20  # corpus sentences chosen per round
    budget: int = 100  # corpus sentences labelled by the end (of about 135 in a pool)
    strategies: tuple[str, ...] = ("uncertainty", "random")
    config: str = "configs/baseline.yaml"
    n_boot: int = 1000
    workers: int = 2  # processes (the fits are independent per seed and fold)

    def budgets(self) -> list[int]:
        return list(range(0, self.budget + 1, self.batch))


def _warm_start(authored: LabelledSet, size: int, seed: int) -> LabelledSet:
    """``size`` sentences of ``authored`` (the augmentation set without copies of corpus
    sentences, ``simulate``) drawn by ``seed``."""
    if size > len(authored):
        raise InputError(
            f"--warm-start {size} exceeds the {len(authored)} usable authored sentences"
        )
    warm = authored.subset(np.random.default_rng(seed).permutation(len(authored))[:size])
    scarce = [LABELS[j] for j in np.flatnonzero(warm.y.sum(axis=0) < 2)]
    if scarce:
        raise InputError(
            f"a warm start of {size} authored sentences holds fewer than 2 examples of "
            f"{', '.join(scarce)}; raise --warm-start"
        )
    return warm


def _run_fold(
    params, seed: int, warm: LabelledSet, gold: LabelledSet, pool, test, setup: Setup
) -> dict[str, np.ndarray]:
    """One seed and fold: per strategy, test-fold predictions (budgets, n_test, L) as int8.

    Also ``cpu``: the CPU seconds the job took (the benchmark reports its cost in CPU time too,
    since wall time depends on what else the machine runs).
    """
    cpu = time.process_time()
    from stancelab.active.selection import select
    from stancelab.models.baseline import BaselineModel, single_threaded_blas

    def fit(chosen: list[int]) -> BaselineModel:
        texts = warm.texts + [gold.texts[i] for i in chosen]
        labels = warm.labels + [gold.labels[i] for i in chosen]
        return BaselineModel(params, seed=seed).fit(texts, labels)

    def predict(model: BaselineModel) -> np.ndarray:
        proba = model.predict_proba([gold.texts[i] for i in test])
        return (proba >= np.asarray(model.thresholds_)).astype(np.int8)

    out = {}
    with single_threaded_blas():
        first = fit([])
        for strategy in setup.strategies:
            model, chosen, preds = first, [], [predict(first)]
            for step, _ in enumerate(setup.budgets()[1:], start=1):
                taken = set(chosen)
                remaining = [int(i) for i in pool if i not in taken]
                texts = [gold.texts[i] for i in remaining]
                proba = model.predict_proba(texts) if strategy == "uncertainty" else None
                picks = select(
                    strategy,
                    texts,
                    setup.batch,
                    proba=proba,
                    thresholds=model.thresholds_,
                    labelled_texts=warm.texts + [gold.texts[i] for i in chosen],
                    seed=seed * 1000 + step,
                )
                chosen += [remaining[p.index] for p in picks]
                model = fit(chosen)
                preds.append(predict(model))
            out[strategy] = np.stack(preds)
    out["cpu"] = np.array(time.process_time() - cpu)
    return out


def summarize_curves(pred: np.ndarray, y: np.ndarray, setup: Setup) -> dict:
    """Curves, paired differences and their intervals from ``pred`` (seeds, K, budgets, n, L)."""
    from stancelab.evaluation.metrics import macro_f1, repeat_picks, resample_weights

    n_seeds = pred.shape[0]
    point = macro_f1(y, pred)  # (seeds, K, budgets)
    w = resample_weights(len(y), setup.n_boot, seed=0)
    boot = macro_f1(y, pred, w)  # (R, seeds, K, budgets)
    pick = repeat_picks(n_seeds, setup.n_boot, seed=1)
    boot = np.take_along_axis(boot, pick[:, :, None, None], axis=1).mean(axis=1)  # (R, K, B)
    budgets = setup.budgets()
    curves = {}
    for k, strategy in enumerate(setup.strategies):
        values = point[:, k]
        lo, hi = np.percentile(boot[:, k], [2.5, 97.5], axis=0)
        curves[strategy] = {
            "mean": values.mean(axis=0).tolist(),
            "min": values.min(axis=0).tolist(),
            "max": values.max(axis=0).tolist(),
            "std": values.std(axis=0, ddof=1).tolist() if n_seeds > 1 else [0.0] * len(budgets),
            "interval": [lo.tolist(), hi.tolist()],
            "per_seed": values.tolist(),
            "per_label_f1": _per_label(y, pred[:, k]),
        }
    out = {"budgets": budgets, "curves": curves}
    if {"uncertainty", "random"} <= set(setup.strategies):
        u, r = setup.strategies.index("uncertainty"), setup.strategies.index("random")
        diff, boot_diff = point[:, u] - point[:, r], boot[:, u] - boot[:, r]
        lo, hi = np.percentile(boot_diff, [2.5, 97.5], axis=0)
        later = slice(1, None)  # budget 0 is the shared first model: no difference by design
        gain = diff[:, later].mean(axis=1)
        boot_gain = boot_diff[:, later].mean(axis=1)
        out["difference"] = {
            "mean": diff.mean(axis=0).tolist(),
            "interval": [lo.tolist(), hi.tolist()],
            "seeds_ahead": (diff > 0).sum(axis=0).tolist(),
            "average_gain": float(gain.mean()),
            "average_gain_interval": np.percentile(boot_gain, [2.5, 97.5]).tolist(),
            "average_gain_per_seed": gain.tolist(),
            "to_match_random_final": _to_match(point[:, u].mean(0), point[:, r].mean(0), budgets),
        }
    return out


def _per_label(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Per-label F1 averaged over seeds and over the budgets after the first."""
    from stancelab.evaluation.metrics import label_f1

    f1 = label_f1(y, pred[:, 1:])
    return {name: float(f1[..., j].mean()) for j, name in enumerate(LABELS)}


def _to_match(unc: np.ndarray, rnd: np.ndarray, budgets: list[int]) -> int | None:
    """Fewest labelled sentences at which uncertainty's mean reaches random's final mean."""
    hits = [b for b, value in zip(budgets, unc, strict=True) if value >= rnd[-1] - 1e-12]
    return hits[0] if hits else None


def simulate(setup: Setup, log=print) -> dict:
    """Run the whole simulation; returns the JSON-ready result (``stancelab.active.simreport``)."""
    from stancelab.data.folds import multilabel_kfold

    unknown = set(setup.strategies) - {"uncertainty", "diversity", "random"}
    if unknown:
        raise InputError(f"unknown strategy: {', '.join(sorted(unknown))}")
    if setup.seeds < 1 or setup.batch < 1 or setup.budget < setup.batch:
        raise InputError("need --seeds >= 1, --batch >= 1 and --budget >= --batch")
    if setup.budget % setup.batch:  # rounds of --batch sentences: it would stop short, unsaid
        low = setup.budget - setup.budget % setup.batch
        raise InputError(
            f"--budget {setup.budget} is not a multiple of --batch {setup.batch} (each round "
            f"labels --batch sentences); use --budget {low} or {low + setup.batch}"
        )
    # Checked before the work: the fold split would quietly run 2 folds for 1 (and one per
    # sentence for more than the gold set holds), a negative warm start would slice all but
    # that many sentences, and the bootstrap needs resamples (as training.evaluate's).
    if setup.folds < 2 or setup.warm_start < 1 or setup.n_boot < 100:
        raise InputError("need --folds >= 2, --warm-start >= 1 and --n-boot >= 100")
    started = time.perf_counter()
    config = load_config(setup.config)
    if config.model != "baseline":
        raise InputError(f"{setup.config}: the simulation fits the baseline, not {config.model}")
    gold = load_labelled(config.data.gold, default_source="corpus")
    if setup.folds > len(gold):
        raise InputError(f"--folds {setup.folds} exceeds the {len(gold)} gold sentences")
    aug = load_augmentation(config.data.augment_dir)
    # as in a training run: a copy of a gold sentence would leak a test sentence into training
    notes: list[str] = []
    authored = aug.subset(unseen_noted(aug, gold, notes, "the warm starts"))
    jobs = []
    for seed in range(setup.seeds):
        warm = _warm_start(authored, setup.warm_start, seed)
        for fold, (pool, test) in enumerate(multilabel_kfold(gold.y, setup.folds, seed=seed)):
            jobs.append((seed, fold, warm, pool, test))
    smallest = min(len(job[3]) for job in jobs)  # each fold's pool of sentences to label
    if smallest < setup.budget:
        raise InputError(
            f"--budget {setup.budget} exceeds the smallest pool of the folds, {smallest} "
            f"sentences: give --budget {smallest // setup.batch * setup.batch} or less"
        )
    log(
        f"active learning: {setup.seeds} seed(s) x {setup.folds} folds x "
        f"{len(setup.strategies)} strategies, budgets {setup.budgets()} ({len(jobs)} jobs)"
    )
    args = [(config.params, s, w, gold, p, t, setup) for s, _, w, p, t in jobs]
    if setup.workers > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=setup.workers)(delayed(_run_fold)(*a) for a in args)
    else:
        results = [_run_fold(*a) for a in args]
    pred = np.zeros(
        (setup.seeds, len(setup.strategies), len(setup.budgets()), len(gold), len(LABELS)),
        dtype=np.int8,
    )
    for (seed, _, _, _, test), out in zip(jobs, results, strict=True):
        for k, strategy in enumerate(setup.strategies):
            pred[seed, k][:, test] = out[strategy]
    result = summarize_curves(pred, gold.y, setup)
    result.update(
        setup={**asdict(setup), "strategies": list(setup.strategies)},
        data={
            "gold": config.data.gold,
            "gold_sentences": len(gold),
            "gold_positives": dict(zip(LABELS, gold.y.sum(axis=0).tolist(), strict=True)),
            "pool_per_fold": int(round(len(gold) * (setup.folds - 1) / setup.folds)),
            "augmentation_sentences": len(aug),
        },
        notes=notes,
        seconds=round(time.perf_counter() - started, 1),
        cpu_seconds=round(float(sum(out["cpu"] for out in results)), 1),
        workers=setup.workers,
    )
    return result


def read_result(path: str | Path) -> dict:
    from stancelab.files import read_json_object

    return read_json_object(path)
