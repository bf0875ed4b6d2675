"""The evaluation report: ``report.md``, ``metrics.json``, ``predictions.jsonl`` and PNG plots.

``write_outputs(result, out_dir)`` is what ``python -m training.evaluate`` and
``python -m training.pipeline`` call. Every figure in ``report.md`` carries its 95% interval;
``metrics.json`` holds every figure (``stancelab.evaluation.comparison``); ``predictions.jsonl``
holds the
out-of-fold (or held-out) predictions of every model and training variant, one row per
sentence, repeat and run.

The report folder is held and replaced whole through ``stancelab.evaluation.folders``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stancelab.evaluation.comparison import (
    build_metrics,
    describe_scheme,
    fmt_p,
    labels_without_examples,
)
from stancelab.evaluation.erroranalysis import error_section
from stancelab.evaluation.folders import report_folder
from stancelab.evaluation.metrics import ECE_BINS, PER_LABEL
from stancelab.evaluation.results import EvaluationResult
from stancelab.evaluation.tables import (
    SCHEME_TITLES,
    TITLES,
    cell,
    comparison_table,
    diff,
    point,
    table,
)
from stancelab.files import (
    atomic_open,
    write_json,
    write_jsonl,
)
from stancelab.labels import LABELS


@dataclass
class Outputs:
    directory: Path
    report: Path
    metrics: Path
    predictions: Path
    plots: dict[str, str]
    table: str  # the headline comparison table, for printing
    verdict: str


def write_outputs(
    result: EvaluationResult,
    out: str | Path,
    *,
    command: str = "",
    extra: dict | None = None,
    sections: Sequence[str] = (),
    staging: Path | None = None,
) -> Outputs:
    """Write every output of an evaluation into the report folder ``out``.

    ``sections`` are markdown sections the caller appends to the report (the simulated
    active-learning benchmark, when it was run into ``out``). ``staging`` is the folder of
    the caller's ``report_folder(out)`` to write into (a caller that holds the folder for the
    whole evaluation); without it, ``write_outputs`` takes ``report_folder(out)`` itself.
    """
    out = Path(out)
    if staging is None:
        with report_folder(out) as staging:
            return write_outputs(
                result, out, command=command, extra=extra, sections=sections, staging=staging
            )
    from stancelab.evaluation.plots import draw_all

    metrics = build_metrics(result)
    metrics["command"] = command
    if extra:
        metrics.update(extra)
    metrics["plots"] = draw_all(metrics, staging)
    write_json(staging / "metrics.json", metrics)
    write_jsonl(staging / "predictions.jsonl", result.prediction_rows())
    text = render(metrics, result)
    for section in sections:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    with atomic_open(staging / "report.md") as handle:
        handle.write(text)
    main = next(iter(metrics["results"]), None)
    headline = comparison_table(metrics, main) if main else ""
    return Outputs(
        out,
        out / "report.md",
        out / "metrics.json",
        out / "predictions.jsonl",
        metrics["plots"],
        headline,
        metrics["verdict"],
    )


def render(metrics: dict, result: EvaluationResult) -> str:
    schemes = list(metrics["results"])
    p, d = metrics["protocol"], metrics["data"]
    lines = [
        "# stancelab evaluation report",
        "",
        f"Created {metrics['created']}. Data: {d['sentences']} sentences from `{d['path']}`"
        + (f" ({d['articles']} articles)" if d["articles"] else "")
        + (
            f"; augmentation set: {d['augmentation_sentences']} sentences, "
            "used in training folds only"
            if "augmentation_sentences" in d
            else ""
        )
        + ".",
        f"Protocol `{p['name']}`; "
        + (
            "figures are computed on the out-of-fold predictions of all folds pooled (not "
            "averaged over folds), and "
            if schemes != ["held-out"]
            else ""
        )
        + "intervals are 95% percentile bootstrap over sentences "
        + (
            "(leaving dyads out: over whole dyads, as its figures are for conflicts never "
            "seen and the sentences of one conflict are not independent) "
            if "dyads" in schemes
            else ""
        )
        + (
            f"and, for the {p['repeats']} repeats of the k-fold CV, over repeats too (each "
            "resample also draws them with replacement, so an interval holds how much other "
            "seeds and splits would move the figure) "
            if p.get("repeats", 1) > 1
            else ""
        )
        + f"({p['n_boot']} resamples, seed {p['seed']}).",
        "",
    ]
    if metrics.get("folds_sha256"):
        lines += [
            "Every model was evaluated on the same folds "
            f"(fingerprint `{metrics['folds_sha256'][:16]}`).",
            "",
        ]
    lines += ["## Verdict", "", metrics["verdict"], ""]
    for scheme in schemes:
        lines += _scheme_section(metrics, scheme)
    lines += _augmentation_section(metrics)
    lines += _per_label_section(metrics, schemes[0]) if schemes else []
    lines += _repeats_section(metrics)
    lines += _plots_section(metrics)
    lines += error_section(result, SCHEME_TITLES)
    lines += ["## Notes", ""]
    lines += [f"- {n}" for n in metrics["notes"]]
    timing = metrics["timing"]
    fits = ", ".join(
        f"{k}: {v['fits']} fits in {v['seconds']} s" for k, v in timing["per_model"].items()
    )
    lines += [
        f"- Evaluation took {timing['evaluation_seconds']} s ({fits}).",
        "- McNemar tests use the first repeat (one prediction per sentence and model); "
        "Holm: the p-value adjusted over the four labels.",
        f"- ECE (expected calibration error) pools every (sentence, label) probability into "
        f"{ECE_BINS} equal-width bins and sums each bin's share times the gap between its mean "
        "probability and its observed frequency, on the same "
        + ("out-of-fold " if schemes != ["held-out"] else "")
        + "predictions as the other figures (with repeats, the mean over them; the reliability "
        "diagram pools them).",
        "- ECE is biased upwards in bootstrap resamples (duplicated sentences), so its interval "
        "can lie above the point estimate; compare models on its point value and diagram.",
        "- Reproduce: `" + (metrics.get("command") or "python -m training.evaluate ...") + "`.",
        "",
    ]
    return "\n".join(lines)


def _scheme_section(metrics: dict, scheme: str) -> list[str]:
    lines = [
        f"## {SCHEME_TITLES[scheme]}",
        "",
        f"On {describe_scheme(metrics, scheme)}.",
        "",
        comparison_table(metrics, scheme),
    ]
    for c in metrics["comparisons"][scheme]:
        lines.append(
            f"- {c['a']} − {c['b']} on {c['sentences']} sentences: "
            + "; ".join(f"{TITLES[m]} {diff(c[m])}" for m in ("macro_f1", "micro_f1"))
            + "."
        )
    if metrics["comparisons"][scheme]:
        lines.append("")
    missing = labels_without_examples(metrics, scheme)
    lines += [*missing, ""] if missing else []
    articles = {k: v for k, v in metrics["per_article"].items()} if scheme == "logo" else {}
    if articles:
        first = next(iter(articles.values()))
        rows = [
            [
                f"`{doc}`",
                str(first[doc]["sentences"]),
                *(point(articles[name][doc]["macro_f1"]) for name in articles),
                ", ".join(first[doc].get("labels_without_examples", [])) or "–",
            ]
            for doc in sorted(first)
        ]
        lines += [
            "Per held-out article (macro-F1; few sentences each, so read with care; a label "
            "the article has no example of counts as 0 in its macro-F1):",
            "",
        ]
        lines += table(["article", "sentences", *articles, "no example of"], rows)
    return lines


def _augmentation_section(metrics: dict) -> list[str]:
    rows = []
    for scheme, effects in metrics["augmentation_effect"].items():
        for name, c in effects.items():
            res = metrics["results"][scheme][name]
            rows.append(
                [
                    name,
                    SCHEME_TITLES[scheme].lower(),
                    cell(res["corpus"]["overall"]["macro_f1"]),
                    cell(res["corpus+augment"]["overall"]["macro_f1"]),
                    diff(c["macro_f1"]),
                ]
            )
    if not rows:
        return []
    return [
        "## Corpus only vs corpus + augmentation",
        "",
        "The same test folds (corpus sentences only); the augmentation set joins the training "
        "folds only.",
        "",
        *table(
            [
                "model",
                "scheme",
                "macro-F1, corpus only",
                "macro-F1, + augmentation",
                "difference (+aug − corpus)",
            ],
            rows,
        ),
    ]


def _per_label_section(metrics: dict, scheme: str) -> list[str]:
    results = metrics["results"][scheme]
    names = list(results)
    lines = [f"## Per label ({SCHEME_TITLES[scheme].lower()})", ""]
    mcn = {
        (c["a"], c["b"]): c["mcnemar"]["per_label"]
        for c in metrics["comparisons"][scheme]
        if "mcnemar" in c
    }
    header = ["label", "support", *(f"F1 {n}" for n in names)]
    header += [f"McNemar {a} vs {b}: only {a} right / only {b} right, p" for a, b in mcn]
    rows = []
    for label in LABELS:
        first = results[names[0]][metrics["models"][names[0]]["primary"]]
        row = [label, str(first["per_label"][label]["support"])]
        row += [
            cell(results[n][metrics["models"][n]["primary"]]["per_label"][label]["f1"])
            for n in names
        ]
        row += [
            f"{t[label]['a_only']} / {t[label]['b_only']}, p {fmt_p(t[label]['p_value'])} "
            f"(Holm {fmt_p(t[label]['p_holm'])})"
            for t in mcn.values()
        ]
        rows.append(row)
    lines += table(header, rows)
    for name in names:
        variant = metrics["models"][name]["primary"]
        s = results[name][variant]
        lines += [f"**{name}** ({variant}):", ""]
        lines += table(
            ["label", *(TITLES[k] for k in PER_LABEL), "support"],
            [
                [
                    label,
                    *(cell(s["per_label"][label][k]) for k in PER_LABEL),
                    str(s["per_label"][label]["support"]),
                ]
                for label in LABELS
            ],
        )
    return lines


def _repeats_section(metrics: dict) -> list[str]:
    if "kfold" not in metrics["results"]:  # held-out data: nothing is repeated
        return []
    lines = ["## Spread across repeats", ""]
    for name, s in metrics["seed_variance"].items():
        if s["repeats"] > 1:
            lines.append(
                f"- {name}: macro-F1 per repeat {', '.join(f'{v:.3f}' for v in s['values'])}; "
                f"mean {s['mean']:.3f}, standard deviation {s['std']:.3f} (fold split and "
                "model seed both change between repeats)."
            )
        else:
            lines.append(
                f"- {name}: one repeat in this protocol; run `python -m training.evaluate` with "
                "`--repeats 3` (or either script with `--full`) to measure the spread across "
                "seeds and splits."
            )
    return [*lines, ""]


def _plots_section(metrics: dict) -> list[str]:
    captions = {
        "f1_per_label": "F1 per label with 95% intervals",
        "learning_curve": "Learning curve: macro-F1 against training sentences",
        "reliability": "Reliability diagram (calibration)",
        "label_cooccurrence": "Label co-occurrence in the labelled data",
    }
    lines = ["## Plots", ""]
    curve = metrics.get("learning_curve") or {}
    if any(len(v) > 1 for v in curve.values()):
        rows = [
            [name, p["variant"], f"{p['train_sentences']:.0f}", cell(p["macro_f1"])]
            for name, points in curve.items()
            for p in points
        ]
        lines += [
            "Learning curve (first k-fold repeat):",
            "",
            *table(["model", "training data", "training sentences", "macro-F1"], rows),
        ]
    for key, name in metrics["plots"].items():
        lines += [f"![{captions[key]}]({name})", ""]
    return lines
