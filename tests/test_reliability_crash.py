"""Issue #17, item 3: a SIGKILL at any step of `label import` leaves a usable exports folder.

A real `stancelab label import` runs in a child process whose exports module kills the
process (SIGKILL, no clean-up of any kind) just before its k-th file operation, for every k
until the import completes. After each kill, the next command must work: the folder is
repaired (stale temporary files removed), and importing the same file again stores it once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from reliability_common import env, export_json, one_error_line, stancelab

from stancelab.annotation.exports import list_exports
from stancelab.annotation.gold import update_gold
from stancelab.data.labelled import load_labelled
from stancelab.files import checksum_path

KILLER = """
import os, runpy, signal, sys
import stancelab.annotation.exports as exports
step, seen = int(sys.argv[1]), [0]
class KillAtStep:
    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in ("fdopen", "fsync", "chmod", "link", "replace", "unlink"):
            return real
        def counted(*args, **kwargs):
            seen[0] += 1
            if seen[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return counted
exports.os = KillAtStep()
sys.argv = ["stancelab", *sys.argv[2:]]
runpy.run_module("stancelab.cli", run_name="__main__", alter_sys=True)
"""


def export_bytes(sid: str, labels: list[str]) -> bytes:
    return export_json(sid, f"Sentence {sid}: we will strike back.", labels).encode("utf-8")


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_kill_at_each_step_of_an_import_leaves_a_usable_folder(tmp_path):
    import subprocess
    import sys

    new = tmp_path / "new.json"
    new.write_bytes(export_bytes("s2", ["denial"]))
    killed = 0
    for step in range(1, 30):
        case = tmp_path / f"step{step}"
        exports, gold = case / "exports", case / "gold.jsonl"
        update_gold(exports, gold, ("first", export_bytes("s1", ["threat"])))
        ran = subprocess.run(
            [sys.executable, "-c", KILLER, str(step), "label", "import", str(new)]
            + ["--exports", str(exports), "--gold", str(gold)],
            capture_output=True,
            text=True,
            env=env(),
        )
        if ran.returncode == 0:
            break
        assert ran.returncode == -signal.SIGKILL, ran.stderr
        killed += 1
        # the next command repairs the folder and works; the import, run again, completes
        update_gold(exports, gold)
        assert not temporaries(exports), f"step {step}: {temporaries(exports)}"
        update_gold(exports, gold, ("new", new.read_bytes()))
        stored = list_exports(exports)
        assert len(stored) == 2, f"step {step}: {[s.path.name for s in stored]}"
        assert sorted(load_labelled(gold).ids) == ["s1", "s2"]
        assert not temporaries(exports)
    assert killed >= 5  # every write, sync and link of the import was a kill point
    assert ran.returncode == 0, ran.stderr


def old_crash_state(exports: Path, data: bytes) -> Path:
    """What the old import left when killed after linking the export: the export, an empty
    checksum file and the temporary file still linked to the export."""
    exports.mkdir(parents=True)
    tmp = exports / ".export.abc123.tmp"
    tmp.write_bytes(data)
    path = exports / "big-20260101T000000Z.json"
    os.link(tmp, path)
    checksum_path(path).write_text("")
    return path


def test_an_empty_checksum_of_a_whole_export_is_recovered(tmp_path):
    exports, gold = tmp_path / "exports", tmp_path / "gold.jsonl"
    path = old_crash_state(exports, export_bytes("s1", ["threat"]))
    ran = stancelab("label", "gold", "--exports", str(exports), "--gold", str(gold))
    assert ran.returncode == 0, ran.stderr
    assert [e.path for e in list_exports(exports)] == [path]
    assert not temporaries(exports)
    assert load_labelled(gold).ids == ["s1"]


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_an_unrecoverable_checksum_says_what_to_do(tmp_path, state):
    exports = tmp_path / "exports"
    path = old_crash_state(exports, export_bytes("s1", ["threat"]))
    (exports / ".export.abc123.tmp").unlink()  # no proof that the export is whole
    if state == "missing":
        checksum_path(path).unlink()
    ran = stancelab("label", "gold", "--exports", str(exports), "--gold", str(tmp_path / "g"))
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert f"is {state}" in line and f"sha256sum {path.name} > {path.name}.sha256" in line
