"""Error analysis: which sentences a reader should look at, most telling first.

``select_cases`` picks, from out-of-fold (or held-out) predictions, the sentences every model
gets wrong and those where the models disagree and at least one is right. The report prints
them with each model's scores, the gold labels and, for a model that can explain itself
(``explain``, e.g. the TF-IDF baseline), the n-grams that drove its scores.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from stancelab.labels import LABELS, display

if TYPE_CHECKING:
    from stancelab.evaluation.results import EvaluationResult

ALL_FAIL, DISAGREE = "all_fail", "disagree"
SHOW_CASES = 8  # sentences per kind in the report


def select_cases(
    y: np.ndarray, models: dict[str, tuple[np.ndarray, np.ndarray]], limit: int = 12
) -> list[dict]:
    """Up to ``limit`` cases of each kind: ``{"index", "kind", "score"}``.

    ``models`` maps a name to (proba, pred) over the same sentences as ``y``. Sentences every
    model gets wrong (the exact label set) come ranked by the models' mean largest probability
    error; disagreements (sets differ, at least one model right) by the largest probability gap
    between two models on any label.
    """
    y = np.asarray(y)
    if not models or len(y) == 0:
        return []
    probas = [np.asarray(p, dtype=float) for p, _ in models.values()]
    preds = [np.asarray(h) for _, h in models.values()]
    wrong = np.array([(h != y).any(axis=1) for h in preds])
    all_fail = wrong.all(axis=0)
    error = np.mean([np.abs(p - y).max(axis=1) for p in probas], axis=0)
    cases = _ranked(np.flatnonzero(all_fail), error, ALL_FAIL, limit)
    if len(preds) > 1:
        differ = np.zeros(len(y), dtype=bool)
        gap = np.zeros(len(y))
        for a, b in combinations(range(len(preds)), 2):
            differ |= (preds[a] != preds[b]).any(axis=1)
            gap = np.maximum(gap, np.abs(probas[a] - probas[b]).max(axis=1))
        cases += _ranked(np.flatnonzero(differ & ~all_fail), gap, DISAGREE, limit)
    return cases


def _ranked(candidates: np.ndarray, score: np.ndarray, kind: str, limit: int) -> list[dict]:
    order = candidates[np.argsort(-score[candidates], kind="stable")][:limit]
    return [{"index": int(i), "kind": kind, "score": float(score[i])} for i in order]


def error_section(result: EvaluationResult, titles: dict[str, str]) -> list[str]:
    """The report's error-analysis section: the selected cases with scores and n-grams."""
    scheme = next(
        (s for s in ("kfold", "held-out") if any(r.scheme == s for r in result.runs)), None
    )
    runs = {n: r for n in result.models if scheme and (r := result.primary(n, scheme)) is not None}
    if not runs:
        return []
    mask = np.logical_and.reduce([r.scored for r in runs.values()])
    index = np.flatnonzero(mask)
    y = result.data.y[index]
    models = {n: (r.proba[0, index], r.pred[0, index]) for n, r in runs.items()}
    cases = select_cases(y, models, limit=SHOW_CASES)
    lines = [
        "## Error analysis",
        "",
        f"From the first {'repeat of the ' if scheme == 'kfold' else ''}"
        f"{titles[scheme].lower()} predictions. Scores are calibrated probabilities; "
        "n-grams (where a model can explain itself) are those that raised its score for the "
        "gold or predicted labels, from the model trained without the sentence.",
        "",
    ]
    kinds = {
        ALL_FAIL: "Every model wrong" if len(runs) > 1 else "Wrong",
        DISAGREE: "The models disagree (at least one right)",
    }
    for kind, title in kinds.items():
        chosen = [c for c in cases if c["kind"] == kind]
        if not chosen:
            continue
        lines += [f"### {title}", ""]
        for k, case in enumerate(chosen, 1):
            i = int(index[case["index"]])
            gold = result.data.labels[i]
            lines.append(
                f"{k}. “{result.data.texts[i]}” — gold **{display(gold)}** (`{result.data.ids[i]}`)"
            )
            for name, run in runs.items():
                predicted = tuple(
                    n for n, on in zip(LABELS, run.pred[0, i], strict=True) if on == 1
                )
                scores = ", ".join(
                    f"{n} {p:.2f}" for n, p in zip(LABELS, run.proba[0, i], strict=True)
                )
                mark = "✓" if predicted == gold else "✗"
                lines.append(
                    f"   - {mark} {name}: **{display(predicted)}** ({scores})"
                    + _ngrams(result.explanations.get((name, i)), set(gold) | set(predicted))
                )
        lines.append("")
    return lines


def _ngrams(explanation: dict | None, labels: set[str]) -> str:
    if not explanation:
        return ""
    parts = [
        f"{label}: " + ", ".join(f"`{g}` {w:+.2f}" for g, w in explanation[label][:3])
        for label in LABELS
        if label in labels and explanation.get(label)
    ]
    return ("; n-grams " + "; ".join(parts)) if parts else ""
