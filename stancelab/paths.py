"""Default paths, relative to the working directory, and the per-user state directory.

Every command, script and config default names its files from here.
"""

from __future__ import annotations

import os
from pathlib import Path

SEEDS_DIR = Path("seeds")
SENTENCES_PATH = Path("data/sentences.jsonl")
GOLD_PATH = Path("labels/gold.jsonl")
EXPORTS_DIR = Path("labels/exports")
AUGMENT_DIR = Path("labels/augment")
HF_EXPORT_DIR = Path("data/hf")  # stancelab data export
RUNS_DIR = Path("runs")
DEFAULT_MODEL_DIR = RUNS_DIR / "transformer"  # what predict and suggest use by default
REPORTS_DIR = Path("reports/latest")


def state_dir() -> Path:
    """stancelab's per-user state: ``$STANCELAB_HOME`` or ``~/.local/share/stancelab``."""
    env = os.environ.get("STANCELAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "stancelab"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
