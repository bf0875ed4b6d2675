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
    """Score trained models on any labelled JSONL file (``text``, ``labels``)."""
    from stancelab.models.registry import load_model

    started = time.perf_counter()
    data = load_labelled(data_path)
    models, runs, explanations = {}, [], {}
    fitted = {}
    for directory in model_dirs:
        model = load_model(directory)
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
        models[name] = {
            "config": str(directory),
            "kind": model.kind,
            "primary": "as trained",
            "fits": 0,
        }
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
        data_path=str(data_path),
        seconds=time.perf_counter() - started,
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
