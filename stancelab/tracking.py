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
  ``metrics.json``, predictions, plots) under ``report/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stancelab.errors import StancelabError, first_line

EXPERIMENT = "stancelab"  # the project's name: the default experiment


class TrackingError(StancelabError):
    """MLflow is missing, or its store could not be written."""


def enabled(track: bool = False) -> bool:
    """Whether to track: ``--track``, or ``MLFLOW_TRACKING_URI`` set to anything non-empty."""
    return track or bool(os.environ.get("MLFLOW_TRACKING_URI", "").strip())


def track_training(run_dir: str | Path, *, experiment: str = EXPERIMENT, command: str = "") -> str:
    """Record a training run directory as one MLflow run; returns the MLflow run id."""
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
    }
    return _log(
        experiment, config.get("name", run_dir.name), config, metrics, tags, {"run": run_dir}
    )


def track_evaluation(
    report_dir: str | Path, *, experiment: str = EXPERIMENT, command: str = ""
) -> list[str]:
    """Record an evaluation as one MLflow run per config (or model); returns the run ids."""
    report_dir = Path(report_dir)
    metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
    ids = []
    for name, info in metrics["models"].items():
        figures: dict[str, float] = {}
        for scheme, per_model in metrics["results"].items():
            summary = per_model.get(name, {}).get(info["primary"])
            if summary:
                figures.update(_scheme_figures(scheme, summary))
        figures["fit_seconds"] = metrics["timing"]["per_model"][name]["seconds"]
        tags = {
            "stancelab.stage": "evaluate",
            "stancelab.kind": info["kind"],
            "stancelab.protocol": metrics["protocol"]["name"],
            "stancelab.training_mix": info["primary"],
            "stancelab.folds_sha256": metrics.get("folds_sha256", ""),
            "stancelab.config_path": info["config"],
            "stancelab.command": command or metrics.get("command", ""),
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


def _log(
    experiment: str,
    run_name: str,
    config: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, Path],
) -> str:
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "tracking needs MLflow: pip install 'stancelab[track]' "
            "(or unset MLFLOW_TRACKING_URI and drop --track)"
        ) from None
    try:
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params(flatten(config))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags({k: v for k, v in tags.items() if v})
            for name, directory in artifacts.items():
                mlflow.log_artifacts(str(directory), artifact_path=name)
    except mlflow.exceptions.MlflowException as exc:
        raise TrackingError(
            f"MLflow tracking at {mlflow.get_tracking_uri()} failed: {first_line(exc)}"
        ) from None
    return run.info.run_id


def describe(run_ids: list[str], experiment: str) -> str:
    """One line for the scripts to print after tracking."""
    import mlflow

    runs = "run " + run_ids[0] if len(run_ids) == 1 else f"{len(run_ids)} runs"
    return (
        f"tracked: MLflow experiment {experiment!r}, {runs} at {mlflow.get_tracking_uri()} "
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
        help=f"MLflow experiment name (default {EXPERIMENT!r})",
    )
