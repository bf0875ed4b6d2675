"""The evaluation protocol: every model on identical folds, augmentation in training folds only.

Run it with ``python -m training.evaluate configs/baseline.yaml configs/transformer.yaml``
(or through ``python -m training.pipeline``). This module produces out-of-fold predictions;
``stancelab.evaluation.comparison`` turns them into figures and ``stancelab.evaluation.report``
into the report.

Folds are built once from the corpus gold set (repeated iterative-stratified k-fold, and
leave-one-article-out by ``doc_id``) and every config gets exactly the same folds. Per fold a
fresh model is built from its config and fit on the training fold only; its own inner
cross-validation tunes thresholds and calibration. Augmentation sentences, when a training
mix asks for them, are appended to the training fold and never enter a test fold. Nothing
here asks which kind of model it holds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stancelab.config import RunConfig, load_config
from stancelab.data.folds import multilabel_kfold
from stancelab.data.labelled import LabelledSet, label_matrix, load_labelled
from stancelab.errors import ConfigError
from stancelab.evaluation.augmentation import (
    augmentation_set,
    different_sets,
    dyads_problem,
    unseen_noted,
)
from stancelab.evaluation.erroranalysis import select_cases
from stancelab.evaluation.progress import FitProgress
from stancelab.evaluation.protocol import (
    AUGMENTED,
    CORPUS,
    DEFAULT,
    Fold,
    Mix,
    Protocol,
    build_dyad_folds,
    build_folds,
    folds_fingerprint,
    training_set,
)
from stancelab.evaluation.results import EvaluationResult, Run
from stancelab.labels import LABELS
from stancelab.models.base import StanceModel
from stancelab.models.baseline import single_threaded_blas
from stancelab.models.fit import build_model, check_corpus_rows, fit_on, rows_fitted

EXPLAIN_PER_FOLD = 12  # error-analysis candidates explained per fold (the report shows fewer)


def fit_model(config: RunConfig, train: LabelledSet, seed_offset: int) -> StanceModel:
    """A fresh model of the config, its seed shifted by ``seed_offset``, fit on ``train``."""
    config = dataclasses.replace(config, seed=config.seed + seed_offset)
    return fit_on(build_model(config), config, train)


def out_of_fold(
    config: RunConfig,
    gold: LabelledSet,
    aug: LabelledSet | None,
    folds: int,
    seed: int,
    log: Callable[[str], object] = print,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (proba, pred) of a config on ``gold`` (stratified k-fold).

    ``aug``, when given, joins every training fold minus the sentences copying a gold
    sentence, as in a training run (``unseen_noted``: a note in ``notes`` says how many);
    test folds are gold sentences only.
    """
    if aug is not None:
        notes = [] if notes is None else notes
        aug = aug.subset(unseen_noted(aug, gold, notes, "every training fold"))
    proba = np.zeros(gold.y.shape)
    pred = np.zeros(gold.y.shape, dtype=int)
    with single_threaded_blas():
        for k, (train, test) in enumerate(multilabel_kfold(gold.y, folds, seed=seed), start=1):
            part = gold.subset(train)
            if aug is not None:
                part = part.concat(aug)
            log(
                f"cross-validating {config.name}: fold {k}/{folds} ({len(part)} training sentences)"
            )
            model = fit_model(config, part, seed)
            proba[test], pred[test] = score(model, [gold.texts[i] for i in test], config.name)
    return proba, pred


@dataclass(frozen=True)
class _Job:
    fold: Fold
    config: int
    mix: Mix
    primary: bool


def _plan(
    configs: list[RunConfig], folds: list[Fold], protocol: Protocol, has_aug: list[bool]
) -> list[_Job]:
    jobs = []
    for fold in folds:
        for c, config in enumerate(configs):
            primary = _primary(config)
            mixes = [primary]
            if has_aug[c] and fold.scheme in protocol.contrast:
                mixes.append(CORPUS if primary == AUGMENTED else AUGMENTED)
            if fold.scheme == "kfold" and fold.repeat == 0:
                mixes += [m for m in protocol.curve if has_aug[c] or m.augment == 0]
            for mix in dict.fromkeys(mixes):  # ordered and without duplicates
                jobs.append(_Job(fold, c, mix, mix == primary))
    return jobs


def load_configs(config_paths: Sequence[str | Path]) -> list[RunConfig]:
    """The configs to compare; ConfigError for a mistake in one, two of one name or two
    gold sets. ``training.pipeline`` calls it before its first step, so that it never trains
    (and replaces runs/<name>) for an evaluation that would refuse the configs."""
    configs = [load_config(p) for p in config_paths]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"configs must have distinct names to be compared, got {names}")
    golds = {str(Path(c.data.gold)) for c in configs}
    if len(golds) > 1:
        raise ConfigError(
            f"configs use different gold sets ({', '.join(sorted(golds))}); "
            "models are compared on one gold set"
        )
    return configs


def _load(config_paths: Sequence[str | Path]) -> tuple[list[RunConfig], LabelledSet]:
    configs = load_configs(config_paths)
    gold = load_labelled(configs[0].data.gold, default_source="corpus")
    for config in configs:
        check_corpus_rows(config, gold)
    return configs, gold


def evaluate(
    config_paths: Sequence[str | Path],
    protocol: Protocol = DEFAULT,
    *,
    rate_hints: dict[str, float] | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate every config on the same folds of the corpus gold set.

    With ``protocol.leave_dyads_out``, also on folds of whole dyads of the augmentation set
    (``result.dyads``): trained on the corpus and the other dyads, scored on unseen conflicts.
    """
    started = time.perf_counter()
    configs, corpus = _load(config_paths)
    notes: list[str] = []
    folds = build_folds(corpus, protocol)
    if protocol.leave_one_article_out and not any(f.scheme == "logo" for f in folds):
        notes.append(
            "Leave-one-article-out was skipped: the gold set needs a doc_id on every "
            "sentence and at least two articles."
        )
    # Shuffled once, so a smaller augmentation share is always a subset of a larger one.
    augs = [augmentation_set(c, corpus, notes, protocol.seed) for c in configs]
    # Leaving dyads out scores every model on one set of authored sentences: the one of the
    # configs that train on augmentation (the others are not run on it).
    trained_on = [i for i, c in enumerate(configs) if c.data.augment and augs[i] is not None]
    first = trained_on[0] if trained_on else None
    aug = augs[first] if first is not None else None
    differ = different_sets(configs, augs, trained_on)
    if differ:
        notes.append(
            f"The configs train on different augmentation sets ({differ}); the header counts "
            "the first config's. Their corpus folds are the same."
        )
    # Decided before the corpus folds run, so that a scheme that cannot run costs nothing.
    no_dyads = (
        dyads_problem(aug)
        or (
            differ
            and "the configs train on different augmentation sets, and leaving dyads out "
            "scores every model on the same authored sentences"
        )
        if protocol.leave_dyads_out
        else None
    )
    if no_dyads:
        notes.append(f"Leave-dyads-out was skipped: {no_dyads}.")
    result = _cross_validate(
        configs, config_paths, corpus, augs, folds, protocol, notes, rate_hints, progress
    )
    if protocol.leave_dyads_out and not no_dyads:
        result.dyads = _leave_dyads_out(
            configs, config_paths, corpus, aug, protocol, rate_hints, progress
        )
        result.dyads.data_path = configs[first].data.augment_dir
    result.seconds = time.perf_counter() - started
    return result


def _leave_dyads_out(
    configs: list[RunConfig],
    config_paths: Sequence[str | Path],
    corpus: LabelledSet,
    aug: LabelledSet,
    protocol: Protocol,
    rate_hints: dict[str, float] | None,
    progress: bool,
) -> EvaluationResult:
    """The augmentation set scored by folds of whole dyads; the corpus joins every training
    fold of a config that trains on both (the others are left out, with a note)."""
    notes: list[str] = []
    aug = aug.subset(np.argsort(aug.ids, kind="stable"))  # the same rows in every run
    extras = []
    for config in configs:
        extras.append(corpus if config.data.augment else None)
        if not config.data.augment:
            notes.append(f"{config.name} trains on the corpus only: not run leaving dyads out.")
    kept = [i for i, e in enumerate(extras) if e is not None]
    folds = build_dyad_folds(aug, protocol)
    result = _cross_validate(
        [configs[i] for i in kept],
        [config_paths[i] for i in kept],
        aug,
        [extras[i] for i in kept],
        folds,
        protocol,
        notes,
        rate_hints,  # per row trained on, so they hold for these fits too
        progress,
    )
    return result


def _cross_validate(
    configs: list[RunConfig],
    config_paths: Sequence[str | Path],
    scored: LabelledSet,
    extras: list[LabelledSet | None],
    folds: list[Fold],
    protocol: Protocol,
    notes: list[str],
    rate_hints: dict[str, float] | None,
    progress: bool,
) -> EvaluationResult:
    """Fit every planned (fold, config, mix) and score the fold's test part of ``scored``.

    ``extras[c]`` is what a mix adds to config c's training folds (the augmentation set for
    the corpus schemes, the corpus when dyads are left out); it never reaches a test fold.
    """
    started = time.perf_counter()
    jobs = _plan(configs, folds, protocol, [a is not None for a in extras])
    trains = [
        training_set(scored, extras[j.config], j.fold, j.mix, protocol.seed + j.fold.repeat)
        for j in jobs
    ]
    models = {
        c.name: {"config": str(p), "kind": c.model, "primary": _primary(c).label, "fits": 0}
        for c, p in zip(configs, config_paths, strict=True)
    }
    runs: dict[tuple[str, str, str], Run] = {}
    for job in jobs:  # a run holds as many repeats as it is planned on
        key = (configs[job.config].name, job.mix.label, job.fold.scheme)
        runs[key] = _empty_run(*key, repeats=job.fold.repeat + 1, n=len(scored), old=runs.get(key))
    explanations: dict[tuple[str, int], dict] = {}
    tracker = FitProgress(
        [configs[j.config].name for j in jobs],
        [rows_fitted(configs[j.config], t) for j, t in zip(jobs, trains, strict=True)],
        rate_hints,
        enabled=progress,
    )
    for fold in folds:
        fitted: dict[str, object] = {}
        for k, (job, train) in enumerate(zip(jobs, trains, strict=True)):
            if job.fold is not fold:
                continue
            config = configs[job.config]
            tracker.start(k, f"{config.name} · {job.mix.label} · {fold.name}")
            missing = [LABELS[j] for j in np.flatnonzero(train.y.sum(axis=0) == 0)]
            if missing:
                notes.append(
                    f"{config.name} ({job.mix.label}) fold {fold.name} was not scored: its "
                    f"training data have no example of {', '.join(missing)}."
                )
                tracker.done(k, 0.0)
                continue
            t0 = time.perf_counter()
            try:
                model = fit_model(config, train, fold.repeat)
            except ValueError as exc:  # data a model cannot learn from; bugs still propagate
                notes.append(
                    f"{config.name} ({job.mix.label}) fold {fold.name} was not scored: "
                    f"the model could not be fit ({exc})."
                )
                tracker.done(k, 0.0)
                continue
            proba, pred = score(model, [scored.texts[i] for i in fold.test], config.name)
            seconds = time.perf_counter() - t0
            runs[(config.name, job.mix.label, fold.scheme)].record(
                fold, proba, pred, len(train), seconds
            )
            models[config.name]["fits"] += 1
            tracker.done(k, seconds)
            # A capability, not a kind: any model that can explain itself is asked to.
            if (
                job.primary
                and fold.scheme == "kfold"
                and fold.repeat == 0
                and hasattr(model, "explain")
            ):
                fitted[config.name] = model
        if fitted:
            _explain_fold(fold, scored, runs, models, fitted, explanations)
    tracker.close()
    return EvaluationResult(
        scored,
        protocol,
        models,
        list(runs.values()),
        folds_fingerprint(scored, folds),
        next((a for a in extras if a is not None), None),
        explanations,
        notes,
        time.perf_counter() - started,
        configs[0].data.gold,
    )


def _primary(config: RunConfig) -> Mix:
    return AUGMENTED if config.data.augment else CORPUS


def _empty_run(
    config: str, variant: str, scheme: str, *, repeats: int, n: int, old: Run | None
) -> Run:
    repeats = max(repeats, len(old.proba) if old else 0)
    shape = (repeats, n, len(LABELS))
    return Run(
        config,
        variant,
        scheme,
        np.full(shape, np.nan),
        np.full(shape, -1),
        [[""] * n for _ in range(repeats)],
    )


def score(model: StanceModel, texts: list[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and thresholded label matrix, through the shared model interface only."""
    proba = np.asarray(model.predict_proba(texts), dtype=float)
    if proba.shape != (len(texts), len(LABELS)):
        raise RuntimeError(
            f"{name}: predict_proba returned shape {proba.shape}, "
            f"expected {(len(texts), len(LABELS))}"
        )
    return proba, label_matrix(model.labels_from_proba(proba))


def _explain_fold(
    fold: Fold, corpus: LabelledSet, runs: dict, models: dict, fitted: dict, explanations: dict
) -> None:
    """Explain the fold's likeliest error-analysis cases with every model that can explain."""
    primaries = {
        name: runs[(name, info["primary"], "kfold")]
        for name, info in models.items()
        if (name, info["primary"], "kfold") in runs
    }
    y = corpus.y[fold.test]
    scored = {
        name: (r.proba[0, fold.test], r.pred[0, fold.test])
        for name, r in primaries.items()
        if not np.isnan(r.proba[0, fold.test]).any()
    }
    for case in select_cases(y, scored, limit=EXPLAIN_PER_FOLD):
        i = int(fold.test[case["index"]])
        for name, model in fitted.items():
            explanations[(name, i)] = model.explain(corpus.texts[i])
