"""Report folders (``--out`` of ``training.evaluate``, ``training.pipeline`` and
``training.active_learning``, default ``reports/latest``).

A report folder is held by one writer at a time (``report_folder``): a second evaluation,
pipeline or active-learning run into it is refused at once. It may be missing, empty or an
earlier report, which is replaced whole; a folder of other files is refused unless
``--overwrite``, and even then only the report's files in it are replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from stancelab.errors import USER_ERRORS, InputError
from stancelab.evaluation.plots import FIGURES
from stancelab.files import (
    copy_linked,
    followed,
    read_json_object,
    written_whole,
)

# The files ``write_outputs`` writes. In an earlier report, one that a new report does not
# write (a figure it did not draw) is stale and goes with the old folder.
REPORT_FILES = ("report.md", "metrics.json", "predictions.jsonl", *(f"{f}.png" for f in FIGURES))
# Keys of the metrics.json of ``write_outputs`` and of the active-learning benchmark's
# active_learning.json: they tell a report of this harness from a folder of other files that
# happens to hold a file of that name.
REPORT_KEYS = ("protocol", "models", "results", "comparisons", "verdict")
BENCHMARK_KEYS = ("setup", "budgets", "curves")
# Who writes report folders; any of them refuses the others in the same folder.
WRITERS = "training.evaluate, training.pipeline or training.active_learning"


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds a report of this harness: the metrics.json ``write_outputs``
    writes, or the active_learning.json of ``training.active_learning`` (which may have
    written into the folder alone)."""
    from stancelab.active.simulation import RESULT_FILE

    for name, keys in (("metrics.json", REPORT_KEYS), (RESULT_FILE, BENCHMARK_KEYS)):
        if not (folder / name).is_file():
            continue
        try:
            if all(key in read_json_object(folder / name) for key in keys):
                return True
        except USER_ERRORS:  # not JSON, not an object, unreadable: not ours
            continue
    return False


def refuse_foreign(out: Path, overwrite: bool = False) -> None:
    """InputError when ``out`` is a folder that holds files but no report of this harness
    (a project, a folder of the user's results), unless ``overwrite``."""
    if overwrite or not out.is_dir() or not any(out.iterdir()) or is_report(out):
        return
    raise InputError(
        f"{out}: holds files and no earlier report (a metrics.json of training.evaluate); "
        "pass --overwrite to write the report among them (files of the report's names are "
        "replaced) or choose another --out"
    )


@contextlib.contextmanager
def report_folder(
    out: str | Path, *, overwrite: bool = False, adding: bool = False
) -> Iterator[Path]:
    """Hold the report folder ``out`` for the block (a second writer is refused at once,
    after ``refuse_foreign``), and yield a new temporary folder beside it to write the
    report into. When the block ends it replaces ``out`` whole, so a failed or interrupted
    run leaves the old folder as it was, never a mix of old and new files. What ``out`` held
    besides an earlier report's files (the active-learning benchmark's, a file of the
    user's) is carried over. With ``adding`` (``training.active_learning``, which adds its
    files to a report) the temporary folder starts as a copy of ``out`` and all of it is
    kept: the block replaces files in it (its section in report.md among them) and a kill
    never leaves some of them new and the others old."""
    out = followed(out)
    refuse_foreign(out, overwrite)  # before any work
    with written_whole(out, WRITERS, "--out") as staging:
        refuse_foreign(out, overwrite)  # again, under the lock
        if adding:
            _carry_over(out, staging)
        yield staging
        _carry_over(out, staging, () if adding or not is_report(out) else REPORT_FILES)


def _carry_over(out: Path, staging: Path, dropped: tuple[str, ...] = ()) -> None:
    """Copy (as hard links) what ``out`` holds into ``staging``, but for the names in
    ``dropped`` and those ``staging`` holds already."""
    if not out.is_dir():
        return
    for entry in out.iterdir():
        kept = staging / entry.name
        if entry.name not in dropped and not (kept.exists() or kept.is_symlink()):
            copy_linked(entry, kept)
