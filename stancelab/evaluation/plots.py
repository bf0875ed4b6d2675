"""The evaluation report's figures, drawn from ``metrics.json`` data as PNG files.

Called by ``stancelab.evaluation.report``; each function takes the metrics dict and a path and
returns
the path, or None when the figure does not apply (e.g. no learning curve for held-out data).
matplotlib is imported inside the functions, with the non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path

from stancelab.labels import LABELS

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
DPI = 150


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _save(fig, path: Path) -> Path:
    from stancelab.files import atomic_open

    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def f1_per_label(metrics: dict, scheme: str, path: Path) -> Path | None:
    """Per-label and macro F1 with 95% interval bars, one bar per model and training variant."""
    results = metrics["results"].get(scheme)
    if not results:
        return None
    plt = _pyplot()
    bars = []  # (model index, model, variant, summary)
    for m, (name, variants) in enumerate(results.items()):
        primary = metrics["models"][name]["primary"]
        for variant in sorted(v for v in variants if v in (primary, "corpus", "corpus+augment")):
            bars.append((m, name, variant, variants[variant]))
    any_contrast = any(v != metrics["models"][n]["primary"] for _, n, v, _ in bars)
    groups = [*LABELS, "macro-F1"]
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(groups) + 0.35 * len(bars)), 4.6))
    for b, (m, name, variant, summary) in enumerate(bars):
        cells = [summary["per_label"][label]["f1"] for label in LABELS] + [
            summary["overall"]["macro_f1"]
        ]
        values = [c["value"] or 0.0 for c in cells]
        err = [
            [
                max(0.0, v - (c["ci"][0] if c["ci"][0] is not None else v))
                for v, c in zip(values, cells, strict=True)
            ],
            [
                max(0.0, (c["ci"][1] if c["ci"][1] is not None else v) - v)
                for v, c in zip(values, cells, strict=True)
            ],
        ]
        xs = [g + (b - (len(bars) - 1) / 2) * width for g in range(len(groups))]
        faded = variant != metrics["models"][name]["primary"]
        ax.bar(
            xs,
            values,
            width * 0.92,
            yerr=err,
            capsize=2.5,
            color=COLOURS[m % len(COLOURS)],
            alpha=0.45 if faded else 0.9,
            hatch="//" if faded else None,
            edgecolor="white",
            label=f"{name} ({variant})",
            error_kw={"elinewidth": 0.9, "ecolor": "#333333"},
        )
        for x, v in zip(xs, values, strict=True):
            # Dark text on a white tag at the foot of the bar: readable even for a zero bar.
            ax.text(
                x,
                0.02,
                f"{v:.2f}",
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90,
                color="#111111",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
    ax.set_xticks(range(len(groups)), [g.replace("_", "\n") for g in groups])
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("F1 (bars: 95% bootstrap interval)")
    ax.set_title(f"F1 per label — {_scheme_title(metrics, scheme)}")
    ax.axvline(len(LABELS) - 0.5, color="#999999", linewidth=0.8, linestyle=":")
    ax.legend(
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        title="model (training data)" + ("\nhatched: the contrast variant" if any_contrast else ""),
        title_fontsize=8,
    )
    return _save(fig, path)


def reliability(metrics: dict, path: Path) -> Path | None:
    """Observed frequency against predicted probability (all labels pooled), with bin counts."""
    tables = metrics.get("reliability") or {}
    if not tables:
        return None
    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6.2, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.1]}
    )
    ax.plot(
        [0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1, label="perfect calibration"
    )
    n = len(tables)
    for m, (name, rows) in enumerate(tables.items()):
        scheme = next(s for s in metrics["results"] if name in metrics["results"][s])
        variant = metrics["models"][name]["primary"]
        ece = metrics["results"][scheme][name][variant]["overall"]["ece"]["value"]
        used = [r for r in rows if r["count"]]
        colour = COLOURS[m % len(COLOURS)]
        ax.plot(
            [r["mean_confidence"] for r in used],
            [r["observed_frequency"] for r in used],
            marker="o",
            color=colour,
            label=f"{name} (ECE {ece:.3f})",
        )
        width = 0.1 / (n + 0.5)
        hist.bar(
            [r["bin_low"] + 0.025 + m * width for r in rows],
            [r["count"] for r in rows],
            width=width,
            color=colour,
            align="edge",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed frequency of the label")
    ax.set_title("Reliability (sentence × label probabilities, out of fold)")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    hist.set_yscale("log")
    hist.set_ylabel("count (log)")
    hist.set_xlabel("predicted probability (10 equal-width bins)")
    return _save(fig, path)


def learning_curve(metrics: dict, path: Path) -> Path | None:
    """Macro-F1 with 95% intervals against the number of training sentences, per model."""
    curves = {k: v for k, v in (metrics.get("learning_curve") or {}).items() if len(v) > 1}
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for m, (name, points) in enumerate(curves.items()):
        xs = [p["train_sentences"] for p in points]
        ys = [p["macro_f1"]["value"] or 0.0 for p in points]
        lo = [
            p["macro_f1"]["ci"][0] if p["macro_f1"]["ci"][0] is not None else y
            for p, y in zip(points, ys, strict=True)
        ]
        hi = [
            p["macro_f1"]["ci"][1] if p["macro_f1"]["ci"][1] is not None else y
            for p, y in zip(points, ys, strict=True)
        ]
        colour = COLOURS[m % len(COLOURS)]
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
        ax.plot(xs, ys, marker="o", color=colour, label=name)
        if m == 0:
            for p, x, y in zip(points, xs, ys, strict=True):
                ax.annotate(
                    p["variant"],
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, -12),
                    fontsize=7,
                    color="#444444",
                )
    ax.set_xscale("log")
    ax.set_xlabel("training sentences per fold (log scale; corpus fold + augmentation share)")
    ax.set_ylabel("macro-F1 (band: 95% bootstrap interval)")
    ax.set_ylim(0, 1)
    ax.set_title("Learning curve — first k-fold repeat, same test folds at every size")
    ax.legend(fontsize=9, frameon=False, loc="upper left")
    return _save(fig, path)


def cooccurrence(metrics: dict, path: Path) -> Path | None:
    """Label co-occurrence counts, corpus and augmentation set side by side."""
    block = metrics.get("label_cooccurrence") or {}
    panels = block.get("sets") or []
    if not panels:
        return None
    import numpy as np

    plt = _pyplot()
    names = [n.replace("conditional_deescalation", "cond. de-esc.") for n in block["labels"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 4.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        counts = np.asarray(panel["counts"], dtype=float)
        share = counts / np.maximum(np.diag(counts)[:, None], 1)  # row-normalised: P(col | row)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(counts)):
            for j in range(len(counts)):
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if share[i, j] > 0.55 else "#111111",
                )
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_title(f"{panel['name']}: {panel['sentences']} sentences")
        ax.spines[:].set_visible(False)
    fig.suptitle(
        "Label co-occurrence: sentences with both (diagonal: with the label); "
        "shade = share of the row label",
        fontsize=9,
    )
    return _save(fig, path)


# Every figure a report can hold, each in ``<name>.png``.
FIGURES = ("f1_per_label", "reliability", "learning_curve", "label_cooccurrence")


def draw_all(metrics: dict, out: Path) -> dict[str, str]:
    """Every applicable figure; returns {figure: file name}."""
    scheme = next((s for s in ("kfold", "held-out", "logo") if s in metrics["results"]), None)
    path = {name: out / f"{name}.png" for name in FIGURES}
    made = {
        "f1_per_label": f1_per_label(metrics, scheme, path["f1_per_label"]) if scheme else None,
        "reliability": reliability(metrics, path["reliability"]),
        "learning_curve": learning_curve(metrics, path["learning_curve"]),
        "label_cooccurrence": cooccurrence(metrics, path["label_cooccurrence"]),
    }
    return {k: Path(v).name for k, v in made.items() if v is not None}


def _scheme_title(metrics: dict, scheme: str) -> str:
    p, d = metrics["protocol"], metrics["data"]
    if scheme == "kfold":
        return f"{p['folds']}-fold CV × {p['repeats']}, {d['sentences']} corpus sentences"
    if scheme == "logo":
        return f"leave-one-article-out, {d['articles']} articles"
    return f"{d['sentences']} held-out sentences"
