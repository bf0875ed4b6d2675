"""The evaluation report: ``report.md``, ``metrics.json``, ``predictions.jsonl`` and PNG plots.

``write_outputs(result, out_dir)`` is what ``python -m training.evaluate`` and
``python -m training.pipeline`` call. Every figure in ``report.md`` carries its 95% interval;
``metrics.json`` holds every figure (``stancelab.evaluation.comparison``); ``predictions.jsonl``
holds the
out-of-fold (or held-out) predictions of every model and training variant, one row per
sentence, repeat and run.

A report folder (``--out``, default ``reports/latest``) is held by one writer at a time
(``report_folder``, ``report_lock``): a second evaluation, pipeline or active-learning run
into it is refused at once. It may be missing, empty or an earlier report, which is replaced
whole; a folder of other files is refused unless ``--overwrite``, and even then only the
report's files in it are replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stancelab.errors import USER_ERRORS, InputError
from stancelab.evaluation.comparison import (
    build_metrics,
    describe_scheme,
    fmt_p,
    labels_without_examples,
)
from stancelab.evaluation.erroranalysis import error_section
from stancelab.evaluation.metrics import PER_LABEL
from stancelab.evaluation.plots import FIGURES
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
    copy_linked,
    followed,
    output_lock,
    read_json_object,
    restore_replaced,
    write_json,
    write_jsonl,
    written_whole,
)
from stancelab.labels import LABELS

# The files ``write_outputs`` writes. In an earlier report, one that a new report does not
# write (a figure it did not draw) is stale and goes with the old folder.
REPORT_FILES = ("report.md", "metrics.json", "predictions.jsonl", *(f"{f}.png" for f in FIGURES))
# Keys of the metrics.json of ``write_outputs`` and of the active-learning benchmark's
# active_learning.json: they tell a report of this harness from a folder of other files that
# happens to hold a file of that name.
REPORT_KEYS = ("protocol", "models", "results", "comparisons", "verdict")
BENCHMARK_KEYS = ("setup", "budgets", "curves")
# Who writes report folders; any of them refuses the others in the same folder.
WRITERS = "training.evaluate, training.pipeline or training.active_learning"


@dataclass
class Outputs:
    directory: Path
    report: Path
    metrics: Path
    predictions: Path
    plots: dict[str, str]
    table: str  # the headline comparison table, for printing
    verdict: str


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds a report of this harness: the metrics.json ``write_outputs``
    writes, or the active_learning.json of ``training.active_learning`` (which may have
    written into the folder alone)."""
    from stancelab.active.simulation import RESULT_FILE

    for name, keys in (("metrics.json", REPORT_KEYS), (RESULT_FILE, BENCHMARK_KEYS)):
        if not (folder / name).is_file():
            continue
        try:
            if all(key in read_json_object(folder / name) for key in keys):
                return True
        except USER_ERRORS:  # not JSON, not an object, unreadable: not ours
            continue
    return False


def refuse_foreign(out: Path, overwrite: bool = False) -> None:
    """InputError when ``out`` is a folder that holds files but no report of this harness
    (a project, a folder of the user's results), unless ``overwrite``."""
    if overwrite or not out.is_dir() or not any(out.iterdir()) or is_report(out):
        return
    raise InputError(
        f"{out}: holds files and no earlier report (a metrics.json of training.evaluate); "
        "pass --overwrite to write the report among them (files of the report's names are "
        "replaced) or choose another --out"
    )


@contextlib.contextmanager
def report_lock(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Hold the report folder ``out`` for the block (a second writer is refused at once),
    after ``refuse_foreign``; yields it (where it points, if it is a link). For writers that
    add their files to the folder (``training.active_learning``)."""
    out = followed(out)
    refuse_foreign(out, overwrite)  # before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out, WRITERS, "--out"):
        restore_replaced(out, locked=True)  # what a killed report_folder had moved aside
        refuse_foreign(out, overwrite)  # again, under the lock
        yield out


@contextlib.contextmanager
def report_folder(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Hold the report folder ``out`` for the block like ``report_lock``, and yield a new
    temporary folder beside it to write the report into. When the block ends it replaces
    ``out`` whole, so a failed or interrupted run leaves the old folder as it was, never a
    mix of old and new files. What ``out`` held besides an earlier report's files (the
    active-learning benchmark's, a file of the user's) is carried over."""
    out = followed(out)
    refuse_foreign(out, overwrite)  # before any work
    with written_whole(out, WRITERS, "--out") as staging:
        refuse_foreign(out, overwrite)  # again, under the lock
        yield staging
        if out.is_dir():
            earlier = REPORT_FILES if is_report(out) else ()
            for entry in out.iterdir():
                kept = staging / entry.name
                if entry.name not in earlier and not (kept.exists() or kept.is_symlink()):
                    copy_linked(entry, kept)


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
        f"Protocol `{p['name']}`; intervals are 95% percentile bootstrap over sentences "
        f"({p['n_boot']} resamples, seed {p['seed']}).",
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
