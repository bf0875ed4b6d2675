"""Run directories: what every training run writes beside the model files.

``write_run`` records the resolved config (``config.yaml``), the training data's checksum and
counts, the code version, the wall time and the library versions (``run.json``), a model
card (``README.md``) with intended use, labels, data, thresholds and metrics, and a hash of
each training sentence (``training_texts.json``), so that an evaluation on another file can
tell which of its sentences the model learned from (``seen_in_training``).
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from stancelab import __version__
from stancelab.corpus.text import copy_key
from stancelab.data.labelled import LabelledSet
from stancelab.errors import InputError
from stancelab.files import atomic_open, read_json_object, write_json
from stancelab.labels import LABELS, SCHEME, display
from stancelab.models.base import launched_processes
from stancelab.paths import REPORTS_DIR, usable_cores

TRAINING_TEXTS = "training_texts.json"


def code_version() -> str:
    """``stancelab <version>`` plus the git commit (and ``-dirty``) when run from a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"stancelab {__version__} ({commit})"


def describe_training_data(data: LabelledSet) -> dict:
    counts = Counter(label for labels in data.labels for label in labels)
    return {
        "sentences": len(data),
        "checksum_sha256": data.checksum(),
        "per_label": {name: counts.get(name, 0) for name in LABELS},
        "none": sum(1 for labels in data.labels if not labels),
        "by_source": dict(Counter(s or "corpus" for s in data.sources)),
    }


def text_hash(text: str) -> str:
    """What ``training_texts.json`` keeps of a sentence: a hash of its words as the models
    read them (``corpus.text.copy_key``), so a copy with other quotes or case matches."""
    key = " ".join(copy_key(text))  # a sentence without words: the sentence itself
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def seen_in_training(run_dir: str | Path, texts: list[str]) -> list[bool] | None:
    """Which ``texts`` the run in ``run_dir`` was trained on (the same words), or None for a
    run that does not list its training sentences (saved by ``model.save`` alone, or by a
    stancelab before this list)."""
    path = Path(run_dir) / TRAINING_TEXTS
    if not path.is_file():
        return None
    hashes = read_json_object(path).get("hashes")
    # A list without its hashes would read as "none of these sentences was trained on".
    if not (hashes and isinstance(hashes, list) and all(isinstance(h, str) for h in hashes)):
        raise InputError(
            f"{path}: 'hashes' is not the list of the run's training sentences; restore the "
            "file, or remove it to score without checking which sentences the model learned from"
        )
    seen = set(hashes)
    return [text_hash(t) in seen for t in texts]


def write_run(
    out: str | Path,
    config: dict,
    data: LabelledSet,
    seconds: float,
    *,
    kind: str,
    metrics: dict | None = None,
    extra: dict | None = None,
) -> None:
    import yaml

    out = Path(out)
    with atomic_open(out / "config.yaml") as handle:
        yaml.safe_dump(config, handle, sort_keys=False, allow_unicode=True)
    run = {
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code_version": code_version(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {usable_cores()} CPU(s)",
        # Several processes each train on their share of a step's batches (accelerate
        # launch, torchrun): the result differs from a one-process run's, so say so.
        "processes": launched_processes(),
        "train_seconds": round(seconds, 2),
        "data": describe_training_data(data),
        "metrics": metrics or {},
        **(extra or {}),
    }
    write_json(out / "run.json", run)
    write_json(
        out / TRAINING_TEXTS,
        {
            "hash": "blake2b (8 bytes) of the words, case and punctuation aside "
            "(of a sentence without words: the sentence)",
            "hashes": sorted({text_hash(t) for t in data.texts}),
        },
    )
    with atomic_open(out / "README.md") as handle:
        handle.write(model_card(run, config))


def _repeat_note(times: int) -> str:
    if times == 1:
        return ""
    return f" Each corpus sentence joined training {times} times (`data.corpus_repeat`)."


def model_card(run: dict, config: dict) -> str:
    data = run["data"]
    lines = [
        f"# stancelab model card: {config.get('name', run['kind'])}",
        "",
        f"Kind: `{run['kind']}`. Trained {run['created']} with {run['code_version']} "
        f"in {run['train_seconds']} s on {run['machine']}"
        + (f", over {run['processes']} processes." if run["processes"] > 1 else "."),
        "",
        "## Intended use",
        "Labels the rhetorical acts in single English sentences from news reports about armed "
        "conflicts and official statements: a decision aid for analysts, to be read with its "
        "scores and checked against the source. Not for automated decisions about people. "
        "Trained on a small corpus about one conflict plus an authored augmentation set: "
        "expect lower accuracy on other registers (social media, transcripts) and languages.",
        "",
        "## Labels",
        *(f"- `{label.name}`: {label.description}" for label in SCHEME),
        "- none: the empty set.",
        "",
        "## Training data",
        f"{data['sentences']} sentences (sha256 `{data['checksum_sha256'][:16]}…`), "
        f"by source: {data['by_source']}."
        + _repeat_note((config.get("data") or {}).get("corpus_repeat", 1)),
        *(f"- {note}" for note in run.get("notes", [])),
        "",
        "| label | sentences |",
        "|---|---|",
        *(f"| {name} | {count} |" for name, count in data["per_label"].items()),
        f"| none | {data['none']} |",
        "",
    ]
    thresholds = run.get("thresholds")
    if thresholds:
        lines += ["## Decision thresholds (tuned on held-out scores)", ""]
        lines += [f"- {name}: {t:.2f}" for name, t in zip(LABELS, thresholds, strict=True)]
        lines.append("")
    if run.get("metrics"):
        metrics = dict(run["metrics"])
        source = metrics.pop("source", "out-of-fold predictions of the training data")
        lines += ["## Metrics", "", f"Measured on {source}:", ""]
        lines += [f"- {key}: {_fmt(value)}" for key, value in metrics.items()]
        lines += [
            "",
            "These sentences come from the same distribution as the training data (with the "
            "shipped data, mostly authored augmentation sentences), so expect much lower "
            "figures on articles the model has not seen.",
            "",
        ]
    lines += [
        "For the comparison on identical folds with confidence intervals, run "
        f"`python -m training.evaluate` and read `{REPORTS_DIR}/report.md`.",
        "",
        f"Example: the labels print as `{display(('threat', 'accusation'))}` or `{display(())}`.",
        "",
    ]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)
