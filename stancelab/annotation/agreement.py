"""Inter-annotator agreement for the gold set, and the report written beside it.

Per label, Krippendorff's alpha (nominal: the label is present or not) over the sentences
that at least two annotators labelled, adjudicators excluded (their votes are not independent).
Every number comes with the counts it rests on: the units (sentences with two or more votes),
the pairable values (votes in those units), each annotator's positives there, and the raw
observed agreement. Alpha is ``null`` with a note when it is undefined (no unit, or every value
the same). ``stancelab.annotation.gold.write_gold`` writes the report as JSON and as a short
Markdown table.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stancelab.labels import LABELS, NONE, display
from stancelab.paths import EXPORTS_DIR

if TYPE_CHECKING:
    from stancelab.annotation.gold import GoldResult
    from stancelab.annotation.votes import AnnotatedSentence


def label_agreement(sentences: list[AnnotatedSentence], label: str) -> dict:
    """Alpha and its counts for one label over the given sentences."""
    units = []
    for sentence in sentences:
        votes = [v for v in sentence.votes.values() if not v.adjudicator]
        if len(votes) >= 2:
            units.append({v.annotator: int(label in v.labels) for v in votes})
    annotators = sorted({name for unit in units for name in unit})
    positives = {name: sum(unit.get(name, 0) for unit in units) for name in annotators}
    pairs = agree = 0
    for unit in units:
        for a, b in combinations(unit.values(), 2):
            pairs += 1
            agree += a == b
    out = {
        "alpha": None,
        "note": "",
        "units": len(units),
        "pairable_values": sum(len(unit) for unit in units),
        "annotators": len(annotators),
        "observed_agreement": round(agree / pairs, 4) if pairs else None,
        "positives": positives,
    }
    values = {value for unit in units for value in unit.values()}
    if not units:
        out["note"] = "undefined, no sentence has two or more annotators"
    elif len(values) == 1:
        word = "present" if values == {1} else "absent"
        out["note"] = f"undefined, no variation: {word} in every pairable value"
    else:
        import krippendorff

        matrix = np.array(
            [[unit.get(name, np.nan) for unit in units] for name in annotators], float
        )
        alpha = krippendorff.alpha(
            reliability_data=matrix, level_of_measurement="nominal", value_domain=[0, 1]
        )
        out["alpha"] = round(float(alpha), 4)
    return out


def agreement_report(result: GoldResult) -> dict:
    sentences = list(result.sentences.values())
    annotators: dict[str, Counter] = {}
    for sentence in sentences:
        for vote in sentence.votes.values():
            annotators.setdefault(vote.annotator, Counter())["votes"] += 1
        for name in sentence.skipped_by:
            annotators.setdefault(name, Counter())["skipped"] += 1
    gold_counts = Counter(label for row in result.rows for label in row["labels"])
    gold_counts[NONE] = sum(1 for row in result.rows if not row["labels"])
    return {
        "exports": result.exports,
        "sentences": {
            "in_exports": len(sentences),
            "gold": len(result.rows),
            "ties": len(result.ties),
            "adjudicated": sum(r["provenance"]["adjudicated"] for r in result.rows),
            "two_or_more_annotators": sum(1 for s in sentences if len(s.votes) >= 2),
            "skipped_only": sum(1 for s in sentences if not s.votes and s.skipped_by),
            "unannotated": sum(1 for s in sentences if not s.votes and not s.skipped_by),
        },
        "superseded_annotations": sum(s.superseded for s in sentences),
        "deleted_in_label_studio": result.deleted,
        "annotators": {
            name: {"votes": c["votes"], "skipped": c["skipped"]}
            for name, c in sorted(annotators.items())
        },
        "gold_label_counts": {name: gold_counts[name] for name in (*LABELS, NONE)},
        "labels": {label: label_agreement(sentences, label) for label in LABELS},
        "ties": result.ties,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def deleted_line(report: dict) -> str:
    gone = report["deleted_in_label_studio"]
    return (
        f"Deleted in Label Studio, as a later pull shows: {gone['dropped']} annotation(s) no "
        f"longer counted, {gone['still_counted']} still counted (held by an export without a "
        "pull record)."
    )


def report_markdown(report: dict, exports_dir: str | Path = EXPORTS_DIR) -> str:
    """The agreement report as markdown, naming the folder of exports it was derived from."""
    s = report["sentences"]
    lines = [
        "# Annotation agreement",
        "",
        "Generated by `stancelab label gold` from "
        f"{len(report['exports'])} export(s) in `{Path(exports_dir)}/`; do not edit.",
        "",
        f"Policy: {report.get('policy', '')}.",
        "",
        f"Sentences: {s['in_exports']} in exports, {s['gold']} gold, {s['ties']} tie(s) to "
        f"adjudicate, {s['adjudicated']} adjudicated, {s['two_or_more_annotators']} with two or "
        f"more annotators, {s['skipped_only']} only skipped, {s['unannotated']} unannotated.",
        "",
        deleted_line(report),
        "",
        "| label | alpha | units | pairable values | observed agreement | positives by annotator |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in report["labels"].items():
        positives = ", ".join(f"{k}: {v}" for k, v in row["positives"].items()) or "-"
        alpha = _fmt(row["alpha"]) + (f" ({row['note']})" if row["note"] else "")
        lines.append(
            f"| {label} | {alpha} | {row['units']} | {row['pairable_values']} | "
            f"{_fmt(row['observed_agreement'])} | {positives} |"
        )
    if report["ties"]:
        lines += ["", "## To adjudicate", ""]
        for tie in report["ties"]:
            votes = "; ".join(f"{k}: {display(v)}" for k, v in tie["votes"].items())
            tied = ", ".join(tie["tied_labels"]) or "-"
            lines.append(f"- `{tie['id']}` ({tie['reason']}; tied: {tied}) {votes}")
    return "\n".join(lines) + "\n"
