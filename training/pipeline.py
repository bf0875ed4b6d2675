"""The main job: corpus -> gold -> train both models -> evaluate on identical folds -> report.

    python -m training.pipeline [--full] [--out DIR] [--configs A.yaml B.yaml ...]

1. corpus: split ``seeds/`` into ``data/sentences.jsonl`` (``stancelab.corpus.ingest``);
2. gold: rebuild ``labels/gold.jsonl`` from the Label Studio exports in ``labels/exports/``
   (``stancelab.annotation.gold``); with no stored export, the committed gold file is used as it is;
3. train: every config into ``runs/<name>/`` (``stancelab.models.fit.train_run``);
4. evaluate: every config on the same folds of the gold set (default protocol: 5-fold x 1
   repeat; ``--full``: 5-fold x 3 repeats, leave one article out,
   leave dyads out and more), then print the comparison table and the report's path (default
   ``reports/latest/report.md``). The report folder is held from the start (a second writer
   is refused) and replaced whole at the end; a folder of other files is refused unless
   ``--overwrite``.

The default protocol is sized to finish within 25 minutes on 2 CPU cores. With
``MLFLOW_TRACKING_URI`` set, or ``--track``, every training run and every evaluated config is
also recorded in MLflow, as by ``training.train`` and ``training.evaluate`` (the store checked
before the work; if it fails after, ``python -m training.track`` records what was saved).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from stancelab import tracking
from stancelab.errors import (
    USER_ERRORS,
    ArgumentParser,
    ConfigError,
    InputError,
    print_error,
)
from stancelab.paths import EXPORTS_DIR, GOLD_PATH, REPORTS_DIR, SEEDS_DIR, SENTENCES_PATH

CONFIGS = (Path("configs/baseline.yaml"), Path("configs/transformer.yaml"))
SEEDS, SENTENCES, OUT = SEEDS_DIR, SENTENCES_PATH, REPORTS_DIR
EXPORTS, GOLD = EXPORTS_DIR, GOLD_PATH


def active_section(out: Path) -> list[str]:
    """The active-learning benchmark's report section, read from what this run wrote into
    ``out``, its new report folder (a file left by an earlier run is not reported)."""
    from stancelab.active.simreport import report_section

    section = report_section(out)
    return [section] if section else []


def refuse_other_gold(paths: list[Path], configs: list) -> None:
    """ConfigError for a config whose gold set is not ``GOLD``: the pipeline's corpus and gold
    steps rebuild that one (from ``seeds/`` and ``labels/exports/``) and its active-learning
    benchmark simulates on it, so a report of another gold set's models would hold them."""
    for path, config in zip(paths, configs, strict=True):
        if Path(config.data.gold).resolve() != GOLD.resolve():
            raise ConfigError(
                f"{path}: data.gold is {config.data.gold}, not {GOLD}, the gold set this "
                f"pipeline rebuilds from {EXPORTS} and {SEEDS} (and runs its active-learning "
                "benchmark on); train and evaluate your own gold set with training.train and "
                "training.evaluate (README, 'Using your own corpus')"
            )


def step_corpus() -> dict:
    from stancelab.corpus.ingest import ingest

    sentences, dropped = ingest([SEEDS], SENTENCES, overwrite=True)  # derived: remade each run
    docs = len({s.doc_id for s in sentences})
    print(
        f"corpus: {len(sentences)} sentences from {docs} articles -> {SENTENCES} "
        f"({len(dropped)} furniture lines dropped)"
    )
    return {"sentences": len(sentences), "articles": docs, "ids": {s.id for s in sentences}}


def step_gold(corpus_ids: set[str]) -> dict:
    from stancelab.annotation.exports import list_exports
    from stancelab.data.labelled import load_labelled

    if list_exports(EXPORTS):
        from stancelab.annotation.gold import update_gold

        update = update_gold(EXPORTS, GOLD)
        source = f"derived from {len(update.result.exports)} export(s) in {EXPORTS}"
        ties = len(update.result.ties)
        if ties:
            source += f"; {ties} tied sentence(s) await adjudication and are left out"
    elif GOLD.exists():
        source = f"no Label Studio export in {EXPORTS}: using {GOLD} as committed"
    else:
        raise InputError(f"no gold set: {EXPORTS} holds no export and {GOLD} does not exist")
    gold = load_labelled(GOLD, default_source="corpus")
    stale = [i for i in gold.ids if i not in corpus_ids]
    print(f"gold: {len(gold)} labelled sentences ({source})")
    if stale:
        print(
            f"warning: {len(stale)} gold sentence id(s) are not in the current corpus "
            f"(e.g. {stale[0]}); the gold set may be stale",
            file=sys.stderr,
        )
    return {"sentences": len(gold), "source": source, "stale_ids": len(stale)}


def step_train(configs: list[Path]) -> dict[str, dict]:
    from stancelab.models.fit import train_run

    trained = {}
    for config in configs:
        result = train_run(config, overwrite=True)
        print(result.summary())
        # The config's name, which the evaluation's progress bar looks hints up by; the run
        # directory's own name differs when runs/NAME is a link (followed to its target).
        name = result.config.name
        trained[name] = {
            "run": str(result.out),
            "seconds": round(result.seconds, 1),
            "sentences": len(result.data),
            "rows": result.rows,
        }
    return trained


def run_steps(
    args: argparse.Namespace, command: str, staging: Path, started: float, steps: dict
) -> tuple:
    """Every step, returning the report's outputs and the training runs. The report and the
    active-learning benchmark's files go into ``staging``, the temporary folder that
    replaces ``args.out`` whole."""
    from stancelab.evaluation.crossval import evaluate
    from stancelab.evaluation.protocol import DEFAULT, FULL
    from stancelab.evaluation.report import write_outputs

    t = time.perf_counter()
    corpus = step_corpus()
    steps["corpus"] = time.perf_counter() - t
    t = time.perf_counter()
    gold = step_gold(corpus.pop("ids"))
    steps["gold"] = time.perf_counter() - t
    t = time.perf_counter()
    trained = step_train(args.configs)
    steps["train"] = time.perf_counter() - t
    # The training runs tell the progress bar what a fit costs per row trained on.
    hints = {name: info["seconds"] / max(info["rows"], 1) for name, info in trained.items()}
    t = time.perf_counter()
    protocol = FULL if args.full else DEFAULT
    print(f"evaluating {len(args.configs)} model(s), protocol '{protocol.name}' ...")
    result = evaluate(args.configs, protocol, rate_hints=hints, progress=not args.quiet)
    steps["evaluate"] = time.perf_counter() - t
    if not args.skip_active_learning:
        from training import active_learning

        t = time.perf_counter()
        print("simulated active learning (baseline; uncertainty vs random) ...")
        given = ["--out", str(args.out)]  # the command it records: as if run on its own
        _, setup = active_learning.parse_args(given)
        active_learning.run(setup, args.out, active_learning.command_line(given), staging=staging)
        steps["active_learning"] = time.perf_counter() - t
    pipeline = {
        "corpus": corpus,
        "gold": gold,
        "trained": trained,
        "step_seconds": {k: round(v, 1) for k, v in steps.items()},
        "seconds_before_report": round(time.perf_counter() - started, 1),
    }
    return write_outputs(
        result,
        args.out,
        command=command,
        extra={"pipeline": pipeline},
        sections=[] if args.skip_active_learning else active_section(staging),
        staging=staging,
    ), trained


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = ArgumentParser(prog="python -m training.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the full evaluation protocol (slower)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"report folder (default {OUT})")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --out folder that holds other files than an earlier report (the "
        "report's files are replaced, the others kept)",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        type=Path,
        default=list(CONFIGS),
        help="model configs to train and compare (default: baseline and transformer)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--skip-active-learning",
        action="store_true",
        help="leave out the simulated active-learning benchmark (about 2 minutes)",
    )
    tracking.add_arguments(parser)
    args = parser.parse_args(argv)
    command = "python -m training.pipeline " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    steps: dict[str, float] = {}
    track = tracking.enabled(args.track)
    try:
        from stancelab.models.base import refuse_launched_processes

        refuse_launched_processes("training.pipeline")
        from stancelab.files import check_output_path

        check_output_path(args.out, "--out", folder=True)  # before the work, not at its end
        if track:  # a store that does not answer: before the work too
            tracking.check_store(args.experiment)
        from stancelab.evaluation.folders import report_folder

        # Held from before the first step to the report, which replaces --out whole.
        with report_folder(args.out, overwrite=args.overwrite) as staging:
            from stancelab.evaluation.crossval import load_configs

            # a mistake, or two of one name: before any run is replaced
            refuse_other_gold(args.configs, load_configs(args.configs))
            outputs, trained = run_steps(args, command, staging, started, steps)
    except USER_ERRORS as exc:  # a bad input, a full disk: one line
        return print_error(exc)
    total = time.perf_counter() - started
    print()
    print(outputs.table)
    print(outputs.verdict)
    print(
        "\n"
        + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items())
        + f"; total {total / 60:.1f} min"
    )
    print(f"report: {outputs.report}")
    if track:  # after the results are shown: a store failing now loses none of them
        saved = [info["run"] for info in trained.values()] + [args.out]
        try:
            print(tracking.record_and_describe(saved, experiment=args.experiment, command=command))
        except USER_ERRORS as exc:  # a bad input, a full disk: one line
            return print_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
