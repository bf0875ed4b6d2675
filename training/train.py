"""Train one model from a config and write its run directory.

    python -m training.train configs/baseline.yaml [--out DIR] [--set params.C=8] [--track]

Trains on the gold set (plus the augmentation set when ``data.augment`` is true) and writes
``runs/<name>/`` (or ``--out``): the model files, ``config.yaml`` (resolved), ``run.json``
(data checksum, code version, training time, out-of-fold metrics) and a model card. With
``MLFLOW_TRACKING_URI`` set, or ``--track``, the run is also recorded in MLflow
(``stancelab.tracking``): the store is checked before the training, and if it fails after,
the run stays saved and ``python -m training.track RUN_DIR`` records it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from stancelab import tracking
from stancelab.errors import USER_ERRORS, ArgumentParser, print_error


def parse_override(text: str) -> tuple[str, object]:
    import yaml

    from stancelab.config import load_yaml

    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE, got {text!r}")
    try:
        return key.strip(), load_yaml(value)
    except yaml.YAMLError as exc:  # argparse turns this error, not YAML's, into one line
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.constructor.ConstructorError):  # a key given twice
            raise argparse.ArgumentTypeError(f"{key.strip()}: {value!r}: {problem}") from None
        raise argparse.ArgumentTypeError(
            f"{key.strip()}: {value!r} is not a YAML value ({problem}); quote a text "
            "that holds YAML's special characters"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(  # a launch's processes print a usage error once
        prog="python -m training.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("config", type=Path, help="a YAML file in configs/")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. params.epochs=2",
    )
    tracking.add_arguments(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory"
    )
    args = parser.parse_args(argv)
    command = "python -m training.train " + shlex.join(sys.argv[1:] if argv is None else argv)
    track = tracking.enabled(args.track)
    try:
        from stancelab.models.base import end_processes, is_main_process
        from stancelab.models.fit import train_run

        if track and is_main_process():  # a store that does not answer: before the training
            tracking.check_store(args.experiment)
        result = train_run(
            args.config, out=args.out, overrides=dict(args.overrides), overwrite=args.overwrite
        )
        end_processes()  # several processes: they leave together, once the run is written
        if not result.written:  # another process of a multi-process launch
            return 0
        print(result.summary())
        if track:
            print(
                tracking.record_and_describe(
                    [result.out], experiment=args.experiment, command=command
                )
            )
    except USER_ERRORS as exc:  # a bad input, a full disk: one line
        return print_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
