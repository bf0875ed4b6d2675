"""The active-learning benchmark's outputs: ``active_learning.json``, ``.md`` and ``.png``.

Written by ``python -m training.active_learning`` from the result of
``stancelab.active.simulation.simulate``; ``report_section(report_dir)`` is the section the
entry points hand to the evaluation report, and ``refresh_report(report_dir)`` puts a new
run's section into a report that already holds one.
"""

from __future__ import annotations

from pathlib import Path

from stancelab.active.simulation import RESULT_FILE, read_result
from stancelab.files import atomic_open, write_json
from stancelab.labels import LABELS

MARKDOWN_FILE = "active_learning.md"
FIGURE_FILE = "active_learning.png"
SECTION_TITLE = "Active learning (simulated): what to label next"
REPORT_FILE = "report.md"  # the evaluation report a pipeline run writes beside these files
NAMES = {"uncertainty": "uncertainty (+ diversity)", "random": "random", "diversity": "diversity"}


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def simulation_verdict(result: dict) -> str:
    """One plain sentence: does uncertainty sampling help here, with the numbers behind it."""
    diff = result.get("difference")
    if diff is None:
        return "Uncertainty and random selection were not both simulated: no verdict."
    lo, hi = diff["average_gain_interval"]
    gain = diff["average_gain"]
    seeds = len(diff["average_gain_per_seed"])
    ahead = sum(g > 0 for g in diff["average_gain_per_seed"])
    numbers = (
        f"averaged over the budgets after the first batch, uncertainty sampling changes "
        f"macro-F1 by {_points(gain)} points (95% interval {_points(lo)} to {_points(hi)}; "
        f"ahead on {ahead} of {seeds} seeds)"
    )
    if lo > 0:
        head = "**Yes: uncertainty sampling helps here.**"
    elif hi < 0:
        head = "**No: uncertainty sampling does worse than random here.**"
    else:
        head = "**Not shown: uncertainty sampling does not measurably beat random selection here.**"
    text = f"{head} On this gold set, {numbers}."
    if lo <= 0 <= hi:
        text += (
            f" A gain larger than {_points(hi)[1:]} points is unlikely; so is a loss larger "
            f"than {_points(lo)[1:]}."
        )
    final = diff["mean"][-1]
    flo, fhi = diff["interval"][0][-1], diff["interval"][1][-1]
    text += (
        f" At {result['budgets'][-1]} labelled corpus sentences the difference is "
        f"{_points(final)} points ({_points(flo)} to {_points(fhi)})."
    )
    match = diff.get("to_match_random_final")
    if lo > 0 and match is not None and match < result["budgets"][-1]:
        text += (
            f" Uncertainty sampling reaches random selection's final macro-F1 with {match} "
            f"labelled sentences instead of {result['budgets'][-1]}."
        )
    return text


def render_section(result: dict, level: int = 2) -> str:
    """The markdown section: setup, verdict, table, per-label F1 and the figure."""
    setup, data, budgets = result["setup"], result["data"], result["budgets"]
    curves, diff = result["curves"], result.get("difference")
    strategies = [s for s in setup["strategies"] if s in curves]
    h = "#" * level
    lines = [
        f"{h} {SECTION_TITLE}",
        "",
        simulation_verdict(result),
        "",
        f"Pool-based simulation with the baseline ({setup['config']}) on the corpus gold set "
        f"({data['gold_sentences']} sentences): {setup['folds']}-fold, each fold in turn held "
        f"out for testing while about {data['pool_per_fold']} sentences of the other folds form "
        f"the pool; every model starts from {setup['warm_start']} random authored "
        f"(augmentation) sentences and gains {setup['batch']} corpus sentences per round, "
        f"chosen as `stancelab label suggest` would. Macro-F1 over all gold sentences, each "
        f"predicted by a model that never saw it; {setup['seeds']} seeds (folds, warm start "
        f"and random picks change with the seed); 95% intervals from a bootstrap over seeds "
        f"and sentences. The real model trains on the whole augmentation set, so absolute "
        f"scores here are lower than the evaluation's; the comparison between strategies is "
        f"the point. Run time {result['seconds']:.0f} s wall, "
        f"{result.get('cpu_seconds', 0):.0f} s CPU in {result.get('workers', 1)} process(es).",
        "",
    ]
    header = "| labelled corpus sentences | " + " | ".join(
        f"{NAMES.get(s, s)}: mean (seed range)" for s in strategies
    )
    header += (
        " | difference (uncertainty − random) [95% interval] | seeds ahead |" if diff else " |"
    )
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for b, budget in enumerate(budgets):
        cells = [
            f"{c['mean'][b]:.3f} ({c['min'][b]:.3f}–{c['max'][b]:.3f})"
            for c in (curves[s] for s in strategies)
        ]
        if diff:
            lo, hi = diff["interval"][0][b], diff["interval"][1][b]
            cells.append(
                f"{diff['mean'][b]:+.3f} [{lo:+.3f}, {hi:+.3f}]" if b else "0 (same first model)"
            )
            cells.append(f"{diff['seeds_ahead'][b]}/{setup['seeds']}" if b else "–")
        lines.append(f"| {budget} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per-label F1, averaged over seeds and the budgets after the first "
        f"(gold positives: {', '.join(f'{k} {v}' for k, v in data['gold_positives'].items())}):",
        "",
        "| strategy | " + " | ".join(LABELS) + " |",
        "|---|" + "---|" * len(LABELS),
    ]
    for s in strategies:
        f1 = curves[s]["per_label_f1"]
        lines.append(f"| {NAMES.get(s, s)} | " + " | ".join(f"{f1[n]:.3f}" for n in LABELS) + " |")
    lines += ["", f"![Macro-F1 against labelled corpus sentences]({FIGURE_FILE})", ""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> Path:
    """Left: macro-F1 per strategy (mean over seeds, band = seed range). Right: the gap."""
    from stancelab.evaluation.plots import COLOURS, _pyplot, _save

    plt = _pyplot()
    budgets, curves, diff = result["budgets"], result["curves"], result.get("difference")
    fig, axes = plt.subplots(1, 2 if diff else 1, figsize=(11 if diff else 6, 4.4), squeeze=False)
    ax = axes[0, 0]
    for colour, strategy in zip(COLOURS, result["setup"]["strategies"], strict=False):
        c = curves[strategy]
        ax.fill_between(budgets, c["min"], c["max"], color=colour, alpha=0.15, linewidth=0)
        ax.plot(
            budgets,
            c["mean"],
            color=colour,
            marker="o",
            linewidth=2,
            label=f"{NAMES.get(strategy, strategy)}",
        )
    ax.set_xlabel("labelled corpus sentences (beyond the authored warm start)")
    ax.set_ylabel("macro-F1 on held-out gold sentences")
    ax.set_title(f"Macro-F1 by budget (mean of {result['setup']['seeds']} seeds; band = range)")
    ax.set_xticks(budgets)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    if diff:
        ax = axes[0, 1]
        lo, hi = diff["interval"]
        ax.axhline(0, color="black", linewidth=0.8)
        ax.fill_between(budgets, lo, hi, color=COLOURS[0], alpha=0.2, label="95% interval")
        ax.plot(
            budgets,
            diff["mean"],
            color=COLOURS[0],
            marker="o",
            linewidth=2,
            label="mean over seeds",
        )
        ax.set_xlabel("labelled corpus sentences")
        ax.set_ylabel("macro-F1 difference")
        ax.set_title("Uncertainty − random (above 0: uncertainty better)")
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=9)
    return _save(fig, path)


def write_simulation(result: dict, out: str | Path, command: str = "") -> dict[str, Path]:
    """Write the JSON, the markdown page and the figure into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / RESULT_FILE, "markdown": out / MARKDOWN_FILE, "png": out / FIGURE_FILE}
    write_json(paths["json"], {**result, "command": command})
    plot(result, paths["png"])
    with atomic_open(paths["markdown"]) as handle:
        handle.write("# Active learning benchmark (simulated)\n\n")
        if command:
            handle.write(f"Command: `{command}`\n\n")
        handle.write(render_section(result, level=2))
    return paths


def report_section(report_dir: str | Path) -> str | None:
    """The simulated benchmark's markdown section (``## Active learning ...``), or None.

    Reads ``active_learning.json`` written by ``python -m training.active_learning`` into the
    same folder; the figure it refers to, ``active_learning.png``, sits beside it.
    """
    path = Path(report_dir) / RESULT_FILE
    if not path.exists():
        return None
    return render_section(read_result(path))


def refresh_report(report_dir: str | Path) -> bool:
    """Put the section of ``active_learning.json`` in ``report_dir`` into the folder's
    ``report.md`` in place of the one it holds; returns whether the report held one.

    A pipeline run's report carries the benchmark's section; a later
    ``python -m training.active_learning`` into its folder replaces the benchmark's files,
    and without this the report would show the old run's table under the new run's figure.
    The rest of the report is kept byte for byte; a report without the section (one of
    ``training.evaluate``) is left alone.
    """
    report = Path(report_dir) / REPORT_FILE
    section = report_section(report_dir)
    if section is None or not report.is_file():
        return False
    lines = report.read_text(encoding="utf-8").split("\n")
    heading = f"## {SECTION_TITLE}"
    if heading not in lines:
        return False
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "\n".join(lines[end:])
    text = "\n".join(lines[:start]) + "\n" + section.rstrip("\n") + "\n"
    if tail.strip():
        text += "\n" + tail
    with atomic_open(report) as handle:
        handle.write(text)
    return True
