"""Optional MLflow tracking for ``python -m training.train`` and ``python -m training.evaluate``.

Tracking is on when ``MLFLOW_TRACKING_URI`` is set or the script gets ``--track`` (then
MLflow's own default store, ``sqlite:///mlflow.db`` in the working directory, is used).
Without either, nothing here runs and ``mlflow`` is never imported.

Everything is read back from what the scripts already wrote, so a tracked run holds exactly
what the run directory or the report says:

* ``track_training(run_dir)``: one MLflow run per trained model. Params: the resolved
  ``config.yaml``; metrics: the held-out figures of ``run.json`` (``heldout.macro_f1``,
  ``heldout.f1.<label>``, ``heldout.ece``, ...) and ``train_seconds``; artifacts: the run
  directory (model files, config, ``run.json``, model card) under ``run/``.
* ``track_evaluation(report_dir)``: one MLflow run per evaluated config (or model). Params:
  its resolved config; metrics per scheme (``kfold.``, ``logo.``, ``dyads.``, ``held-out.``)
  of its primary training mix: macro-F1 with its 95% interval bounds
  (``kfold.macro_f1.ci_low`` and ``.ci_high``), micro-F1, ECE, F1 per label; ``fit_seconds``
  (every fit and scoring call of that config); artifacts: the report folder (``report.md``,
  ``metrics.json``, predictions, plots) under ``report/``; tags: the code version, the
  checksum and path of the data scored, the report's verdict (with its caution when a model
  was scored on sentences it was trained on) and, for a saved model, ``seen_in_training``.

``check_store`` is called by the scripts before their work: a tracking URI that does not
answer (a server that is down, a file that is not a database) is one line and nothing is
run. A store that fails once the work is done leaves the run directory and the report as
they were written; ``python -m training.track DIR ...`` (``record``) records them later.
Each MLflow run is tagged with the checksum of the file it was read from
(``stancelab.source``), and a file already recorded in the experiment is not recorded again:
rerunning ``training.track`` after a store failed partway adds only what is missing. A
second process recording the same file into the same store and experiment at once is
refused (``stancelab._tracking_lock``), or both would find it unrecorded and record it twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from stancelab._tracking_lock import lock_folder, recording, sqlite_file
from stancelab.errors import TrackingError, first_line, os_error_line

EXPERIMENT = "stancelab"  # the project's name: the default experiment
# The probe before the work asks once and waits at most this long (MLflow's documented
# variables; a value the user set is kept). The logging after the work keeps MLflow's own
# retries (5, with backoff, 120 s each): a store that answered a moment ago may just hiccup.
PROBE_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_TAG = 5000  # characters of a tag value (MLflow 3 takes 8,000, older ones 5,000)
SOURCE_TAG = "stancelab.source"  # source_key: a run recorded once per source


class Recorded(NamedTuple):
    """One MLflow run of a recording: its id, and whether this call made it (False: the
    same file was recorded before, and that run is returned)."""

    run_id: str
    new: bool


def enabled(track: bool = False) -> bool:
    """Whether to track: ``--track``, or ``MLFLOW_TRACKING_URI`` set to anything non-empty."""
    return track or bool(os.environ.get("MLFLOW_TRACKING_URI", "").strip())


def check_store(experiment: str = EXPERIMENT) -> None:
    """Before the work: the store at the tracking URI answers and holds (or takes) the
    experiment, else a ``TrackingError`` naming the URI. A SQLite file is opened directly
    first (MLflow retries a database it cannot open for about 100 s), and an HTTP store gets
    one request bounded by ``PROBE_HTTP``."""
    try:
        lock_folder()  # where the recording after the work takes its lock
    except TrackingError as exc:
        raise TrackingError(f"{exc}; nothing was run") from None
    mlflow = _mlflow()
    uri = mlflow.get_tracking_uri()
    try:
        _check_sqlite(uri)
        with _environment(PROBE_HTTP):
            mlflow.set_experiment(experiment)
    except _store_errors(mlflow) as exc:
        raise TrackingError(
            f"MLflow tracking at {uri} is not usable: {_cause(exc)}; nothing was run "
            "(fix MLFLOW_TRACKING_URI, or unset it and drop --track)"
        ) from None


def record(
    paths: Sequence[str | Path], *, experiment: str = EXPERIMENT, command: str = ""
) -> list[Recorded]:
    """Record run directories (``run.json``) and evaluation reports (``metrics.json``) in
    turn; returns their MLflow runs. When the store fails, the ``TrackingError`` says that
    the files are saved and gives the command that records those not yet recorded."""
    paths = [Path(p) for p in paths]
    trackers = [_tracker(path) for path in paths]  # every path checked before the first run
    ids: list[Recorded] = []
    for i, (path, track) in enumerate(zip(paths, trackers, strict=True)):
        try:
            ids += track(path, experiment=experiment, command=command)
        except TrackingError as exc:
            later = ["python", "-m", "training.track", *map(str, paths[i:])]
            if experiment != EXPERIMENT:
                later += ["--experiment", experiment]
            saved = ", ".join(map(str, paths[i:]))
            raise TrackingError(
                f"{exc}; {saved} saved but not recorded: record later with `{shlex.join(later)}`"
            ) from None
    return ids


def _tracker(path: Path):
    if (path / "run.json").is_file():
        return _track_run
    if (path / "metrics.json").is_file():
        return track_evaluation
    raise TrackingError(
        f"{path}: neither a training run directory (run.json) nor an evaluation report "
        "(metrics.json)"
    )


def _track_run(run_dir: Path, **options: str) -> list[Recorded]:
    return [track_training(run_dir, **options)]


def track_training(
    run_dir: str | Path, *, experiment: str = EXPERIMENT, command: str = ""
) -> Recorded:
    """Record a training run directory as one MLflow run."""
    import yaml

    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    metrics = {
        f"heldout.{_metric_key(k)}": v
        for k, v in run.get("metrics", {}).items()
        if isinstance(v, int | float) and k != "sentences"
    }
    metrics["train_seconds"] = run["train_seconds"]
    tags = {
        "stancelab.stage": "train",
        "stancelab.kind": run["kind"],
        "stancelab.code_version": run["code_version"],
        "stancelab.data_sha256": run["data"]["checksum_sha256"],
        "stancelab.heldout_source": str(run.get("metrics", {}).get("source", "")),
        "stancelab.command": command,
        SOURCE_TAG: source_key(run_dir / "run.json"),
    }
    return _log(
        experiment, config.get("name", run_dir.name), config, metrics, tags, {"run": run_dir}
    )


def track_evaluation(
    report_dir: str | Path, *, experiment: str = EXPERIMENT, command: str = ""
) -> list[Recorded]:
    """Record an evaluation as one MLflow run per config (or model)."""
    report_dir = Path(report_dir)
    metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
    data = metrics.get("data", {})
    ids = []
    for name, info in metrics["models"].items():
        figures: dict[str, float] = {}
        for scheme, per_model in metrics["results"].items():
            summary = per_model.get(name, {}).get(info["primary"])
            if summary:
                figures.update(_scheme_figures(scheme, summary))
        figures["fit_seconds"] = metrics["timing"]["per_model"][name]["seconds"]
        if isinstance(info.get("seen_in_training"), int):  # a saved model scored on a file
            figures["seen_in_training"] = info["seen_in_training"]
        tags = {
            "stancelab.stage": "evaluate",
            "stancelab.kind": info["kind"],
            "stancelab.protocol": metrics["protocol"]["name"],
            "stancelab.training_mix": info["primary"],
            "stancelab.folds_sha256": metrics.get("folds_sha256", ""),
            "stancelab.config_path": info["config"],
            "stancelab.code_version": metrics.get("code_version", ""),
            "stancelab.data_path": str(data.get("path", "")),
            "stancelab.data_sha256": data.get("checksum_sha256", ""),
            "stancelab.augmentation_sha256": data.get("augmentation_sha256", ""),
            "stancelab.verdict": metrics.get("verdict", "")[:MAX_TAG],
            "stancelab.command": command or metrics.get("command", ""),
            SOURCE_TAG: source_key(report_dir / "metrics.json", name),
        }
        run_name = f"{name} · {metrics['protocol']['name']}"
        config = _resolved_config(info["config"])
        ids.append(_log(experiment, run_name, config, figures, tags, {"report": report_dir}))
    return ids


def _scheme_figures(scheme: str, summary: dict) -> dict[str, float]:
    overall, out = summary["overall"], {}
    for key in ("macro_f1", "micro_f1", "ece", "exact_match"):
        value = overall[key]["value"]
        if value is not None:
            out[f"{scheme}.{key}"] = value
    low, high = overall["macro_f1"]["ci"]
    if low is not None:
        out[f"{scheme}.macro_f1.ci_low"], out[f"{scheme}.macro_f1.ci_high"] = low, high
    present = summary.get("macro_f1_labels_with_examples")  # labels missing from the data
    if present and present["value"] is not None:
        out[f"{scheme}.macro_f1_labels_with_examples"] = present["value"]
    for label, row in summary["per_label"].items():
        if row["f1"]["value"] is not None:
            out[f"{scheme}.f1.{label}"] = row["f1"]["value"]
    out[f"{scheme}.sentences"] = summary["sentences"]
    return out


def _resolved_config(path: str) -> dict:
    """A config file resolved with its defaults, or a run directory's recorded config."""
    path_ = Path(path)
    if path_.is_dir():
        import yaml

        return yaml.safe_load((path_ / "config.yaml").read_text(encoding="utf-8")) or {}
    from stancelab.config import load_config

    return load_config(path_).to_dict()


def _metric_key(key: str) -> str:
    return key.replace("f1_", "f1.", 1) if key.startswith("f1_") else key


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """``{"params": {"C": 4}}`` -> ``{"params.C": "4"}``; lists and tuples as JSON."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "tracking needs MLflow: pip install 'stancelab[track]' "
            "(or unset MLFLOW_TRACKING_URI and drop --track)"
        ) from None
    return mlflow


def _store_errors(mlflow) -> tuple[type[BaseException], ...]:
    """What a bad tracking URI or a store that fails raises: MLflow's own errors, the
    database's (through SQLAlchemy, or sqlite3 in ``_check_sqlite``), HTTP errors that
    MLflow lets through, and the operating system's (an artifact folder that cannot be
    written). Anything else is a bug and keeps its traceback."""
    import sqlite3

    import requests.exceptions
    import sqlalchemy.exc

    return (
        mlflow.exceptions.MlflowException,
        sqlalchemy.exc.SQLAlchemyError,
        sqlite3.Error,
        requests.exceptions.RequestException,
        OSError,
    )


def _cause(exc: BaseException) -> str:
    return os_error_line(exc) if isinstance(exc, OSError) else first_line(exc)


def _check_sqlite(uri: str) -> None:
    """A ``sqlite:///PATH`` store: open the file and read its header, as MLflow will (its
    parent folders made, a missing file created empty, as MLflow does). A file that is not a
    database or cannot be opened raises ``sqlite3.Error`` or ``OSError`` at once."""
    path = sqlite_file(uri)
    if path is None:
        return
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA schema_version").fetchone()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the variables the user has not set, for the duration of the block."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def source_key(path: Path, part: str = "") -> str:
    """What an MLflow run is recorded from: the SHA-256 of the file it reads (``run.json``,
    ``metrics.json``) and, for one model of a report, its name."""
    import hashlib

    from stancelab.files import sha256_file

    digest = sha256_file(path)
    return hashlib.sha256(f"{digest}:{part}".encode()).hexdigest() if part else digest


def _log(
    experiment: str,
    run_name: str,
    config: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, Path],
) -> Recorded:
    """One MLflow run, or the finished run already recorded from the same source (tag
    ``stancelab.source``): recording a path again, after a store that failed partway, say,
    adds only what is missing."""
    mlflow = _mlflow()
    with recording(mlflow.get_tracking_uri(), experiment, tags[SOURCE_TAG], run_name):
        return _log_once(mlflow, experiment, run_name, config, metrics, tags, artifacts)


def _log_once(mlflow, experiment, run_name, config, metrics, tags, artifacts) -> Recorded:
    try:
        found = mlflow.set_experiment(experiment)
        done = mlflow.search_runs(
            [found.experiment_id],
            f"tags.`{SOURCE_TAG}` = '{tags[SOURCE_TAG]}' and attributes.status = 'FINISHED'",
            max_results=1,
            output_format="list",
        )
        if done:
            return Recorded(done[0].info.run_id, new=False)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params(flatten(config))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags({k: v for k, v in tags.items() if v})
            for name, directory in artifacts.items():
                mlflow.log_artifacts(str(directory), artifact_path=name)
    except _store_errors(mlflow) as exc:
        raise TrackingError(
            f"MLflow tracking at {mlflow.get_tracking_uri()} failed: {_cause(exc)}"
        ) from None
    return Recorded(run.info.run_id, new=True)


def record_and_describe(
    paths: Sequence[str | Path], *, experiment: str = EXPERIMENT, command: str = ""
) -> str:
    """``record`` the paths, then the line the scripts print about it (``describe``)."""
    return describe(record(paths, experiment=experiment, command=command), experiment)


def describe(runs: list[Recorded], experiment: str) -> str:
    """One line for the scripts to print after tracking."""
    import mlflow

    said = "run " + runs[0].run_id if len(runs) == 1 else f"{len(runs)} runs"
    before = sum(not r.new for r in runs)
    if before == len(runs):
        said += " (recorded before from the same files: nothing recorded again)"
    elif before:
        said += f" ({before} of them recorded before from the same files, not again)"
    return (
        f"tracked: MLflow experiment {experiment!r}, {said} at {mlflow.get_tracking_uri()} "
        "(browse with `mlflow ui`)"
    )


def add_arguments(parser: Any) -> None:
    """``--track`` and ``--experiment`` for the training scripts' argument parsers."""
    parser.add_argument(
        "--track",
        action="store_true",
        help="record the run in MLflow (also on when MLFLOW_TRACKING_URI is set; "
        "needs the [track] extra)",
    )
    parser.add_argument(
        "--experiment",
        default=EXPERIMENT,
        type=experiment_name,
        help=f"MLflow experiment name (default {EXPERIMENT!r})",
    )


def experiment_name(text: str) -> str:
    """``--experiment``: a name MLflow takes; an empty one is a usage error naming the option
    (MLflow's own refusal would read as a store that does not answer)."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("an MLflow experiment needs a name")
    return text
