"""Markdown tables and cells of evaluation figures, each value with its 95% interval.

Used by ``stancelab.evaluation.report`` for ``report.md`` and by the entry points to print the
headline
comparison table.
"""

from __future__ import annotations

from stancelab.evaluation.comparison import bootstrap_p, significant
from stancelab.evaluation.metrics import OVERALL

TITLES = {
    "macro_f1": "macro-F1",
    "micro_f1": "micro-F1",
    "exact_match": "exact set",
    "none_accuracy": "accuracy on none",
    "ece": "ECE (lower is better)",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "pr_auc": "PR-AUC",
}
SCHEME_TITLES = {
    "kfold": "Cross-validation",
    "logo": "Leave one article out",
    "dyads": "Leave dyads out (unseen conflicts)",
    "held-out": "Held-out data",
}


def cell(fig: dict) -> str:
    value, (lo, hi) = fig["value"], fig["ci"]
    if value is None:
        return "n/a"
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{value:.3f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def comparison_table(metrics: dict, scheme: str) -> str:
    """Model × overall figure, each with its 95% interval (the headline of the report)."""
    rows = []
    for name, variants in metrics["results"][scheme].items():
        primary = metrics["models"][name]["primary"]
        for variant in sorted(variants, key=lambda v: (v != primary, v)):
            if variant not in (primary, "corpus", "corpus+augment"):
                continue
            s = variants[variant]
            rows.append(
                [f"{name}", variant, *(cell(s["overall"][k]) for k in OVERALL), str(s["sentences"])]
            )
    return "\n".join(
        table(["model", "training data", *(TITLES[k] for k in OVERALL), "sentences"], rows)
    )


def diff(test: dict) -> str:
    lo, hi = test["ci"]
    mark = " (significant)" if significant(test) else ""
    p = bootstrap_p(test)
    return f"{test['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}], p {p}{mark}"


def point(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
