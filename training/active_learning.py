"""Simulated active learning: macro-F1 against labelled corpus sentences, uncertainty vs random.

    python -m training.active_learning [--out DIR] [--seeds N] [--warm-start N] [--batch N]
        [--budget N] [--strategies uncertainty random [diversity]] [--workers N]

Writes ``active_learning.json``, ``active_learning.md`` and ``active_learning.png`` into
``--out`` (default ``reports/latest/``, the evaluation's report folder: one writer at a time,
and a folder of other files is refused unless ``--overwrite``) and prints the verdict: does
uncertainty sampling, as ``stancelab label suggest`` does it, beat random selection on this
gold set? The design is in ``stancelab.active.simulation``; the evaluation report takes its
section from ``stancelab.active.simreport.report_section(out)``. The default run takes about
2-4 minutes on 2 cores.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from stancelab.errors import USER_ERRORS, ArgumentParser, print_error
from stancelab.paths import REPORTS_DIR

DEFAULT_OUT = REPORTS_DIR


def parse_args(argv: list[str] | None):
    from stancelab.active.simulation import Setup

    d = Setup()
    parser = ArgumentParser(
        prog="python -m training.active_learning", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --out folder that holds other files than a report (those are kept)",
    )
    parser.add_argument("--seeds", type=int, default=d.seeds, help=f"default {d.seeds}")
    parser.add_argument("--folds", type=int, default=d.folds, help=f"default {d.folds}")
    parser.add_argument(
        "--warm-start",
        type=int,
        default=d.warm_start,
        help=f"authored sentences every model starts from (default {d.warm_start})",
    )
    parser.add_argument(
        "--batch", type=int, default=d.batch, help=f"sentences per round (default {d.batch})"
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=d.budget,
        help=f"labelled corpus sentences at the end (default {d.budget})",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=list(d.strategies),
        choices=["uncertainty", "random", "diversity"],
    )
    parser.add_argument("--config", default=d.config, help=f"baseline config (default {d.config})")
    parser.add_argument("--workers", type=int, default=d.workers, help=f"default {d.workers}")
    parser.add_argument("--n-boot", type=int, default=d.n_boot, help=f"default {d.n_boot}")
    args = parser.parse_args(argv)
    setup = Setup(
        seeds=args.seeds,
        folds=args.folds,
        warm_start=args.warm_start,
        batch=args.batch,
        budget=args.budget,
        strategies=tuple(dict.fromkeys(args.strategies)),
        config=args.config,
        n_boot=args.n_boot,
        workers=max(1, args.workers),
    )
    return args, setup


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args, setup = parse_args(argv)
    command = command_line(sys.argv[1:] if argv is None else argv)
    try:
        from stancelab.models.base import refuse_launched_processes

        refuse_launched_processes("training.active_learning")
        from stancelab.files import check_output_path

        check_output_path(args.out, "--out", folder=True)  # before the work, not at its end
        from stancelab.evaluation.folders import report_folder

        # Held for the whole run; the folder, its report.md among it, changes in one step.
        with report_folder(args.out, overwrite=args.overwrite, adding=True) as staging:
            run(setup, args.out, command, staging=staging)
    except USER_ERRORS as exc:  # a bad input, a full disk: one line
        return print_error(exc)
    return 0


def command_line(argv: list[str]) -> str:
    return " ".join(["python -m training.active_learning", shlex.join(argv)]).strip()


def run(setup, out: Path, command: str, *, staging: Path) -> None:
    """Simulate, write the benchmark's files into ``staging`` (the report folder ``out``,
    or the temporary folder that will replace it: the caller holds it) and print the
    verdict, naming the files in ``out``."""
    from stancelab.active.simreport import (
        REPORT_FILE,
        refresh_report,
        simulation_verdict,
        write_simulation,
    )
    from stancelab.active.simulation import simulate

    result = simulate(setup)
    paths = write_simulation(result, staging, command=command)
    # A pipeline's report in the folder shows this run's section, not the replaced run's.
    refreshed = refresh_report(staging)
    print(simulation_verdict(result).replace("**", ""))
    for note in result["notes"]:
        print(f"note: {note}")
    print(
        f"{result['seconds']:.0f} s wall, {result['cpu_seconds']:.0f} s CPU "
        f"({setup.workers} worker(s)) -> {out / paths['markdown'].name}, "
        f"{out / paths['png'].name}"
        + (f"; its section in {out / REPORT_FILE}" if refreshed else "")
    )


if __name__ == "__main__":
    sys.exit(main())
