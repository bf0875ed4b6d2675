"""Record run directories and evaluation reports that are already written in MLflow.

    python -m training.track runs/baseline [reports/latest ...] [--experiment NAME]

Each PATH is a training run directory (``run.json``) or an evaluation report folder
(``metrics.json``), recorded as ``training.train`` and ``training.evaluate`` record them
(``stancelab.tracking``) in the store at ``MLFLOW_TRACKING_URI`` (MLflow's default,
``sqlite:///mlflow.db``, when it is not set). For a run whose tracking failed after its
work was saved: the scripts' error names this command.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stancelab import tracking
from stancelab.errors import USER_ERRORS, ArgumentParser, print_error


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m training.track", description=__doc__.split("\n")[0])
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a training run directory or an evaluation report folder",
    )
    parser.add_argument(
        "--experiment",
        default=tracking.EXPERIMENT,
        type=tracking.experiment_name,
        help=f"MLflow experiment name (default {tracking.EXPERIMENT!r})",
    )
    args = parser.parse_args(argv)
    try:
        tracking.check_store(args.experiment)
        print(tracking.record_and_describe(args.paths, experiment=args.experiment))
    except USER_ERRORS as exc:  # a bad input, a full disk: one line
        return print_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
