"""Compare models on identical folds of the corpus gold set, or score trained models on a file.

    python -m training.evaluate configs/baseline.yaml configs/transformer.yaml [--out DIR]
        [--full] [--contrast] [--articles] [--dyads] [--repeats N]
    python -m training.evaluate --model runs/baseline [--model runs/transformer] \
        --data FILE.jsonl [--out DIR]

The first form runs the cross-validation protocol (default: 5-fold x 1 repeat; ``--contrast``:
also train each config with the augmentation switched the other way; ``--articles``: also leave
one article out; ``--dyads``: also leave dyads out; ``--repeats N``: the 5-fold CV N times
over; ``--full``: 5-fold x 3 repeats, all of those and a learning curve) and the second
scores already trained models on any labelled JSONL file (``text``, ``labels``). Both write
``report.md``, ``metrics.json``, ``predictions.jsonl`` and PNG plots to ``--out`` (default
``reports/latest/``; an earlier report there is replaced whole, a folder of other files is
refused unless ``--overwrite``) and print the comparison table. With ``MLFLOW_TRACKING_URI`` set, or
``--track``, each config (or model) is also recorded as one MLflow run (``stancelab.tracking``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from stancelab import tracking
from stancelab.errors import USER_ERRORS, ArgumentParser, print_error
from stancelab.paths import REPORTS_DIR

DEFAULT_OUT = REPORTS_DIR


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="*", type=Path, help="model configs (YAML) to compare")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --out folder that holds other files than an earlier report (the "
        "report's files are replaced, the others kept)",
    )
    parser.add_argument(
        "--full", action="store_true", help="the full protocol (5-fold x 3 repeats, ...)"
    )
    parser.add_argument(
        "--contrast",
        action="store_true",
        help="also train each config with the augmentation switched the other way, on the "
        "5-fold CV (part of --full)",
    )
    parser.add_argument(
        "--articles",
        action="store_true",
        help="also leave one article out (part of --full)",
    )
    parser.add_argument(
        "--dyads",
        action="store_true",
        help="also leave dyads out: 5 folds of whole conflicts of the augmentation set "
        "(part of --full)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="repeat the 5-fold CV N times, with other folds and model seeds each time: "
        "figures averaged over the repeats, and their spread reported (default 1; 3 with --full)",
    )
    parser.add_argument(
        "--model",
        action="append",
        type=Path,
        default=[],
        metavar="RUN_DIR",
        help="a trained model directory to score on --data (repeatable)",
    )
    parser.add_argument("--data", type=Path, help="a labelled JSONL file to score --model on")
    parser.add_argument(
        "--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    tracking.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.model or args.data:
        if args.configs:
            parser.error("give either configs (cross-validation) or --model/--data, not both")
        if not (args.model and args.data):
            parser.error("--model and --data go together")
        if args.full or args.dyads or args.articles or args.contrast or args.repeats:
            parser.error(
                "--full, --contrast, --articles, --dyads and --repeats apply to "
                "cross-validation, not to --model/--data"
            )
    elif not args.configs:
        parser.error("give one or more configs, or --model RUN_DIR --data FILE.jsonl")
    if args.n_boot < 100:
        parser.error("--n-boot must be at least 100")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def protocol_for(args: argparse.Namespace):
    """The cross-validation protocol the flags ask for: the default or ``--full``, plus extras."""
    import dataclasses

    from stancelab.evaluation.protocol import DEFAULT, FULL

    protocol = dataclasses.replace(FULL if args.full else DEFAULT, n_boot=args.n_boot)
    added = []  # the flags that change the protocol name it, so reports and MLflow tell runs apart
    if args.contrast and not protocol.contrast:
        protocol = dataclasses.replace(protocol, contrast=("kfold",))
        added.append("contrast")
    if args.articles and not protocol.leave_one_article_out:
        protocol = dataclasses.replace(protocol, leave_one_article_out=True)
        added.append("articles")
    if args.dyads and not protocol.leave_dyads_out:
        protocol = dataclasses.replace(protocol, leave_dyads_out=FULL.leave_dyads_out)
        added.append("dyads")
    if args.repeats is not None and args.repeats != protocol.repeats:
        protocol = dataclasses.replace(protocol, repeats=args.repeats)
        added.append(f"repeats{args.repeats}")
    if added:
        protocol = dataclasses.replace(protocol, name="+".join([protocol.name, *added]))
    return protocol


def run(args: argparse.Namespace, command: str) -> int:
    from stancelab.evaluation.folders import report_folder
    from stancelab.evaluation.report import write_outputs
    from stancelab.files import check_output_path, refuse_input_as_output

    # Checked before the evaluation runs, not found out when it writes its outputs.
    refuse_input_as_output(args.out, [args.data, *args.model] if args.model else args.configs)
    check_output_path(args.out, "--out", folder=True)
    track = tracking.enabled(args.track)
    if track:  # a store that does not answer: before the evaluation, not after it
        tracking.check_store(args.experiment)
    # Held from before the evaluation to its last file, which replaces --out whole.
    with report_folder(args.out, overwrite=args.overwrite) as staging:
        if args.model:
            from stancelab.evaluation.heldout import evaluate_saved

            result = evaluate_saved(
                args.model, args.data, progress=not args.quiet, n_boot=args.n_boot
            )
        else:
            from stancelab.evaluation.crossval import evaluate

            result = evaluate(args.configs, protocol_for(args), progress=not args.quiet)
        outputs = write_outputs(result, args.out, command=command, staging=staging)
    print(outputs.table)
    print(outputs.verdict)
    print(f"\nreport: {outputs.report}")
    if track:
        print(tracking.record_and_describe([args.out], experiment=args.experiment, command=command))
    return 0


def main(argv: list[str] | None = None) -> int:
    # Evaluation never downloads: models load from packaged or local weights only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = parse_args(argv)
    command = "python -m training.evaluate " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        from stancelab.models.base import refuse_launched_processes

        refuse_launched_processes("training.evaluate")
        return run(args, command)
    except USER_ERRORS as exc:  # a bad input, a full disk: one line
        return print_error(exc)


if __name__ == "__main__":
    sys.exit(main())
