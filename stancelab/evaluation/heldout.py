"""Scoring trained models on any labelled JSONL file, with the evaluation's figures and report.

    python -m training.evaluate --model runs/baseline --data my_heldout.jsonl [--out DIR]

The file needs ``text`` and ``labels`` per row (the format of ``stancelab.data.labelled``). Several
``--model`` directories are scored on the same sentences and compared like in cross-validation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stancelab.corpus.text import preview
from stancelab.data.labelled import load_labelled
from stancelab.evaluation.crossval import EXPLAIN_PER_FOLD, EvaluationResult, Run, score
from stancelab.evaluation.erroranalysis import select_cases
from stancelab.evaluation.protocol import Protocol


def evaluate_saved(
    model_dirs: Sequence[str | Path],
    data_path: str | Path,
    *,
    progress: bool = True,
    n_boot: int = 2000,
) -> EvaluationResult:
    """Score trained models on any labelled JSONL file (``text``, ``labels``).

    A transformer is scored on ONNX Runtime fp32 (PyTorch's labels; ``$STANCELAB_BACKEND=torch``
    keeps PyTorch) whatever ``$STANCELAB_PRECISION`` says: int8 changes labels, and these are
    figures to report. Each model's engine, and how many of the file's sentences it was trained
    on (``seen_in_training``, from its run directory), are recorded and noted.
    """
    from stancelab.models.registry import load_model
    from stancelab.models.runs import seen_in_training

    started = time.perf_counter()
    data = load_labelled(data_path)
    models, runs, explanations, notes = {}, [], {}, []
    fitted = {}
    for directory in model_dirs:
        model = load_model(directory)
        if hasattr(model, "use_default_backend"):
            model.use_default_backend("fp32")
        name = Path(directory).resolve().name
        while name in models:
            name += "'"
        t0 = time.perf_counter()
        proba, pred = _score_batched(model, data.texts, name, progress)
        runs.append(
            Run(
                name,
                "as trained",
                "held-out",
                proba[None],
                pred[None],
                [["held-out"] * len(data)],
                seconds={"held-out": time.perf_counter() - t0},
            )
        )
        seen = seen_in_training(directory, data.texts)
        models[name] = {
            "config": str(directory),
            "kind": model.kind,
            "engine": model.engine,
            "primary": "as trained",
            "fits": 0,
            "seen_in_training": None if seen is None else sum(seen),
        }
        notes.append(_seen_note(name, seen, data.texts, data_path))
        if hasattr(model, "explain"):
            fitted[name] = model
    scored = {r.config: (r.proba[0], r.pred[0]) for r in runs}
    for case in select_cases(data.y, scored, limit=EXPLAIN_PER_FOLD * 2):
        for name, model in fitted.items():
            explanations[(name, case["index"])] = model.explain(data.texts[case["index"]])
    protocol = Protocol(
        "held-out", folds=0, leave_one_article_out=False, contrast=(), curve=(), n_boot=n_boot
    )
    return EvaluationResult(
        data,
        protocol,
        models,
        runs,
        explanations=explanations,
        notes=notes + [f"{n} scored with {m['engine']}." for n, m in models.items()],
        data_path=str(data_path),
        seconds=time.perf_counter() - started,
    )


def _seen_note(name: str, seen: list[bool] | None, texts: list[str], data_path: str | Path) -> str:
    n = len(texts)
    if seen is None:
        return (
            f"{name}'s run directory does not list its training sentences (training_texts.json), "
            f"so whether it learned from sentences of {data_path} was not checked."
        )
    if not any(seen):
        return f"None of the {n} sentences are in {name}'s training data."
    return (
        f"{sum(seen)} of the {n} sentences are in {name}'s training data (the same words; the "
        f"first: {preview(texts[seen.index(True)])!r}): its figures on them are not held-out."
    )


def _score_batched(
    model, texts: list[str], name: str, progress: bool, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    from tqdm import tqdm

    parts = [
        score(model, texts[i : i + batch], name)
        for i in tqdm(
            range(0, len(texts), batch),
            desc=f"scoring with {name}",
            unit="batch",
            disable=not progress,
        )
    ]
    return np.concatenate([p for p, _ in parts]), np.concatenate([h for _, h in parts])
