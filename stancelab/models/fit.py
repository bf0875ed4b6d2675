"""Training a configured model: data assembly, the model factory and the run directory.

``train_run(config_path)`` is what ``python -m training.train`` calls; ``build_model`` and
``training_data`` are what the evaluation harness uses, so both paths build models and data
the same way.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stancelab.config import RunConfig, load_config
from stancelab.data.labelled import LabelledSet, load_augmentation, load_labelled
from stancelab.errors import InputError, first_line
from stancelab.evaluation.augmentation import unseen_noted
from stancelab.files import (
    exclusive_lock,
    followed,
    move_into_place,
    refuse_input_as_output,
    remove_path,
    remove_stale_temporaries,
    restore_replaced,
    temporary_folder,
)
from stancelab.labels import LABELS
from stancelab.models.base import MANIFEST, StanceModel, is_main_process
from stancelab.models.registry import model_class
from stancelab.paths import RUNS_DIR


def build_model(config: RunConfig) -> StanceModel:
    """A fresh, unfitted model of the configured kind."""
    return model_class(config.model).from_config(config)


def training_data(config: RunConfig, notes: list[str] | None = None) -> LabelledSet:
    """The gold set, plus the augmentation set when the config asks for it, minus any
    augmentation sentence that copies a gold sentence, as the evaluation's training folds
    (``evaluation.augmentation.unseen_noted``; a note in ``notes`` says how many): a copy
    would be trained on twice and, in the inner cross-validation, land on both sides of a
    fold, inflating the held-out figures."""
    data = load_labelled(config.data.gold, default_source="corpus")
    check_corpus_rows(config, data)
    if config.data.augment:
        aug = load_augmentation(config.data.augment_dir)
        data = data.concat(
            aug.subset(unseen_noted(aug, data, [] if notes is None else notes, "training"))
        )
    return data


def check_corpus_rows(config: RunConfig, gold: LabelledSet) -> None:
    """Refuse ``data.corpus_repeat`` above 1 on a gold set none of whose rows is a corpus
    sentence (each row's ``source`` names another): nothing would be repeated, silently."""
    from stancelab.errors import ConfigError

    if config.data.corpus_repeat > 1 and "corpus" not in gold.sources:
        others = sorted(set(gold.sources))
        raise ConfigError(
            f"data.corpus_repeat: {config.data.corpus_repeat} repeats the rows whose source "
            f"is 'corpus' (the default of a gold row without one), but every row of "
            f"{config.data.gold} names another source ({', '.join(map(repr, others))}); "
            "set data.corpus_repeat: 1, or drop 'source' from the rows to repeat"
        )


def fit_on(model: StanceModel, config: RunConfig, data: LabelledSet) -> StanceModel:
    """Fit ``model`` on ``data`` as the config asks: each corpus sentence
    ``data.corpus_repeat`` times. Training runs and every fit of the harness go through here."""
    rows = data.with_corpus_repeated(config.data.corpus_repeat)
    return model.fit(rows.texts, rows.labels, rows.groups)


def rows_fitted(config: RunConfig, data: LabelledSet) -> int:
    """How many rows ``fit_on`` trains on for ``data``, copies counted: what a fit's time
    grows with (a corpus-only fit with ``data.corpus_repeat: 3`` trains on three rows per
    sentence, a mixed one on about 1.14)."""
    return len(data.with_corpus_repeated(config.data.corpus_repeat))


@dataclass
class TrainResult:
    out: Path
    config: RunConfig
    model: StanceModel
    seconds: float
    data: LabelledSet  # each sentence once
    metrics: dict
    written: bool = True  # False in the other processes of a multi-process launch
    notes: list[str] = field(default_factory=list)  # what was left out of the data, and why

    @property
    def rows(self) -> int:
        """What the fit trained on, copies counted (``rows_fitted``)."""
        return rows_fitted(self.config, self.data)

    def summary(self) -> str:
        lines = [
            f"trained {self.model.kind} on {len(self.data)} sentences "
            f"in {self.seconds:.1f} s -> {self.out}",
            "thresholds: "
            + ", ".join(
                f"{n} {t:.2f}" for n, t in zip(LABELS, self.model.thresholds_, strict=True)
            ),
        ]
        if self.metrics:
            lines.append(
                f"held-out figures, from {self.metrics['source']}:\n  "
                + ", ".join(f"{k} {v:.3f}" for k, v in self.metrics.items() if isinstance(v, float))
            )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def oof_metrics(model: StanceModel) -> dict[str, Any]:
    """Held-out figures a model kept from fitting (``oof_``), for the model card.

    ``oof_["source"]`` says where they come from (inner CV for the baseline, a held-out part
    for the transformer). Figures on the rows the calibration and thresholds were fitted on
    would be fitted to themselves, so each row is calibrated and thresholded by maps fitted
    on the other rows: ``oof_["proba"]`` and ``["pred"]`` hold such values (the transformer),
    or ``oof_["scores"]``, raw out-of-fold scores, are cross-fitted here (the baseline: its
    many fits in an evaluation never pay for it).
    """
    oof = getattr(model, "oof_", None)
    if not oof:
        return {}

    from stancelab.evaluation.metrics import (
        expected_calibration_error,
        label_f1,
        macro_f1,
        micro_f1,
    )
    from stancelab.models.calibration import crossfit_heldout

    y = oof["y"]
    if "scores" in oof:
        proba, pred = crossfit_heldout(y, oof["scores"], oof["seed"])
    else:
        proba, pred = oof["proba"], oof["pred"]
    metrics: dict[str, Any] = {
        "source": oof.get("source", "out-of-fold predictions of the training data"),
        "sentences": int(len(y)),
        "macro_f1": float(macro_f1(y, pred)),
        "micro_f1": micro_f1(y, pred),
        "ece": expected_calibration_error(y, proba),
    }
    for name, f1 in zip(LABELS, label_f1(y, pred), strict=True):
        metrics[f"f1_{name}"] = float(f1)
    return metrics


def train_run(
    config_path: str | Path,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train the configured model and write its run directory ``out``.

    ``out`` must be new, empty, or a run directory: a folder holding anything else is
    refused, even with ``overwrite``. An existing run is refused unless ``overwrite``; then
    the new run is written beside it and swapped in whole once complete, so a failed write
    (a full disk) leaves the old run as it was and no stale file of it survives. While it
    trains, the directory is locked: a second training into it is refused at once. In a
    multi-process launch (``accelerate launch``, ``torchrun``) every process trains and only
    the first one checks, locks and writes the directory; the launched script then calls
    ``end_processes()`` (``stancelab.models.base``) so that they all leave together.
    """
    config = load_config(config_path, overrides)
    out = followed(Path(out) if out else RUNS_DIR / config.name)  # a linked run: its target
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; --out needs a directory")
    refuse_input_as_output(out, [config.data.gold, config.data.augment_dir])
    notes: list[str] = []
    data = training_data(config, notes)
    model = build_model(config)
    if not is_main_process():
        # Another process of a multi-process launch: it trains its share of every batch and
        # leaves the run directory (its checks, lock and files) to the first process. If
        # that one refuses the directory, the launcher stops this one.
        started = time.perf_counter()
        fit_on(model, config, data)
        seconds = time.perf_counter() - started
        return TrainResult(
            out, config, model, seconds, data, oof_metrics(model), written=False, notes=notes
        )
    restore_replaced(out)  # a run that a killed training had moved aside
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the run directory ({first_line(exc)})") from None
    try:
        return _train_locked(config, out, data, model, overwrite, notes)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failed training leaves no empty run directory behind
        raise


def _train_locked(config, out: Path, data, model, overwrite: bool, notes: list[str]) -> TrainResult:
    busy = (
        f"{out}: another training is writing this run directory; wait for it or use another --out"
    )
    with exclusive_lock(out, busy):
        _check_replaceable(out, overwrite)
        # The new run is written beside OUT and swapped in whole; where the folder above OUT
        # cannot be written (a mount point, a shared folder), inside OUT, replacing the old
        # files only once the new ones are complete. Decided before the fit, not after it.
        beside = os.access(out.parent, os.W_OK | os.X_OK)
        if beside:
            remove_stale_temporaries(out.parent, f".{glob.escape(out.name)}.new-*")
        started = time.perf_counter()
        fit_on(model, config, data)
        seconds = time.perf_counter() - started
        metrics = oof_metrics(model)
        extra = {"thresholds": list(model.thresholds_)}
        if notes:
            extra["notes"] = notes
        if getattr(model, "search_", None):
            extra["grid_search"] = model.search_
        if getattr(model, "calibration_report_", None):
            extra["calibration"] = model.calibration_report_
        from stancelab.models.runs import write_run

        new = None
        try:
            new = temporary_folder(out if beside else out / out.name, "new")
            model.save(new)
            write_run(
                new, config.to_dict(), data, seconds, kind=model.kind, metrics=metrics, extra=extra
            )
            if beside:
                move_into_place(new, out)
            else:
                _replace_contents(out, new)
        except OSError as exc:
            raise InputError(
                f"{out}: the new run could not be written ({first_line(exc)}); "
                + ("the old run is unchanged" if overwrite else "nothing was written")
            ) from None
        finally:
            if new is not None:
                remove_path(new)
    return TrainResult(Path(out), config, model, seconds, data, metrics, notes=notes)


def _replace_contents(out: Path, new: Path) -> None:
    """Replace what ``out`` holds with what ``new`` (a complete run inside it) holds."""
    for entry in out.iterdir():
        if entry != new:
            remove_path(entry)
    for entry in new.iterdir():
        os.replace(entry, out / entry.name)


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse a folder that holds anything but a run, and a run unless ``overwrite``."""
    if not any(out.iterdir()):
        return
    if not ((out / MANIFEST).is_file() or (out / "run.json").is_file()):
        raise InputError(
            f"{out}: is not empty and holds no stancelab run, so it is not replaced, even with "
            "--overwrite; choose a new or empty --out"
        )
    if not overwrite:
        raise InputError(
            f"{out}: holds a run already; pass --overwrite to replace it, or choose another --out"
        )
