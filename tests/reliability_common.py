"""Helpers shared by the tests of issue #17 (bad input, concurrency, crashes)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_root() -> Path:
    """The checkout whose stancelab the tests import (children import the same one)."""
    import stancelab

    return Path(stancelab.__file__).resolve().parent.parent


def env() -> dict[str, str]:
    """The environment of a child process that imports the same stancelab as the tests."""
    return {**os.environ, "PYTHONPATH": f"{code_root()}{os.pathsep}{ROOT / 'tests'}"}


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in a child process (text output captured)."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env(),
        cwd=code_root(),
        **kwargs,
    )


def stancelab(*args: str) -> subprocess.CompletedProcess:
    return run("-m", "stancelab.cli", *args)


def wait_for(predicate, what: str, limit: float = 300.0, proc=None) -> None:
    """Poll until ``predicate()``; a bound on waiting, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line a command printed (no traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


PAUSED = """
import sys, time, importlib
from pathlib import Path
module, name, ready, go = sys.argv[1:5]
target = importlib.import_module(module)
owner, attr = target, name
if "." in name:
    owner, attr = getattr(target, name.split(".")[0]), name.split(".")[1]
real = getattr(owner, attr)
def paused(*args, **kwargs):
    Path(ready).write_text("ready")
    while not Path(go).exists():
        time.sleep(0.02)
    return real(*args, **kwargs)
setattr(owner, attr, paused)
sys.argv = sys.argv[5:]
runpy_target = sys.argv[0]
import runpy
runpy.run_module(runpy_target, run_name="__main__", alter_sys=True)
"""


def start_paused(tmp: Path, patch: str, module_args: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start ``python -m MODULE ARGS`` with ``patch`` ("module:function" or
    "module:Class.method") made to wait, on its first call, until the returned go-file
    exists. Returns once the process is inside that call (so it holds whatever it holds
    there)."""
    module, name = patch.split(":")
    ready, go = tmp / "ready", tmp / "go"
    ready.unlink(missing_ok=True)
    go.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED, module, name, str(ready), str(go), *module_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=code_root(),
    )
    wait_for(ready.exists, f"{patch} to be reached", proc=proc)
    return proc, go


def export_json(sid: str, text: str, labels: list[str]) -> str:
    """A one-task Label Studio export (full JSON) with one annotator's choices."""
    result = {"from_name": "labels", "to_name": "text", "type": "choices"}
    annotation = {
        "id": 1,
        "completed_by": {"id": 1, "email": "a@x"},
        "was_cancelled": False,
        "result": [{**result, "value": {"choices": labels}}],
    }
    task = {"id": 1, "data": {"id": sid, "doc_id": "d", "text": text}, "annotations": [annotation]}
    return json.dumps([task])


@contextlib.contextmanager
def predict_interrupted_at_chunk(n: int):
    """Within the block, ``stream.predict_file`` raises KeyboardInterrupt (as Ctrl-C would)
    at its n-th chunk; the real ``rows_for`` runs for the chunks before."""
    from stancelab.prediction import stream

    real = stream.rows_for
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    stream.rows_for = interrupted
    try:
        yield
    finally:
        stream.rows_for = real


BAD_CALIBRATIONS = [  # (edit of a manifest's "calibration", what the error names)
    (lambda c: c["a"].__setitem__(0, float("nan")), "'a' must hold 4 finite numbers"),
    (lambda c: c["b"].__setitem__(3, float("inf")), "'b' must hold 4 finite numbers"),
    (lambda c: c.update(a=c["a"][:2]), "'a' must hold 4 finite numbers, one per label"),
    (lambda c: c.update(b=[*c["b"], 0.0]), "'b' must hold 4"),
    (lambda c: c.update(a=[True, 1.0, 1.0, 1.0]), "'a' must hold 4"),
    (lambda c: c.update(a="1234"), "'a' must hold 4"),
    (lambda c: c.update(method="isotonic"), "not a Platt calibration"),
]


def edit_calibration(run: Path, copy: Path, edit) -> Path:
    """A copy of the run directory ``run`` (its files hard-linked, the manifest rewritten)
    with ``edit`` applied to the manifest's calibration; a NaN is written as JSON's
    non-standard ``NaN``, which ``json.loads`` reads."""
    shutil.copytree(run, copy, copy_function=os.link)
    manifest = json.loads((copy / "stancelab.json").read_text())
    edit(manifest["calibration"])
    (copy / "stancelab.json").unlink()  # a new file: the run's own manifest stays
    (copy / "stancelab.json").write_text(json.dumps(manifest))
    return copy
