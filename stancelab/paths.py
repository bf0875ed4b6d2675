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


def state_dir_problem() -> str | None:
    """Why the state directory cannot be a folder (it, or a folder above it, is a file, or
    the system refuses to look: a name too long, a folder above it that cannot be read),
    said with what to do; None when nothing stands in the way."""
    home = state_dir()
    env = os.environ.get("STANCELAB_HOME")
    named = f"STANCELAB_HOME={env}" if env else f"the state directory {home}"
    fix = "set STANCELAB_HOME to a folder (it is created if missing)"
    if env:
        fix += ", or unset it to use ~/.local/share/stancelab"
    try:
        above = home
        while not (above.exists() or above.is_symlink()) and above != above.parent:
            above = above.parent  # the nearest that exists: the rest is created
        if above.is_dir():
            return None
    except OSError as exc:
        from stancelab.errors import os_error_line

        return f"{named} cannot be used ({os_error_line(exc)}); {fix}"
    what = "a file" if above.is_file() else "not a folder"
    where = f"is {what}" if above == home else f"is under {above}, which is {what}"
    return f"{named} {where}; stancelab keeps its state (caches, locks) in a folder: {fix}"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
