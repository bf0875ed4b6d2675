"""``stancelab cache info|clear``: the state directory's caches, listed and cleared safely.

Real packaged MiniLM weights, a tiny one-epoch fit with cached layers, real ONNX exports, the
real command line; the state directory is a temporary STANCELAB_HOME.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402

from stancelab.config import TransformerParams  # noqa: E402
from stancelab.models.registry import load_model  # noqa: E402
from stancelab.models.transformer import onnx as fastpath  # noqa: E402
from stancelab.models.transformer.model import TransformerModel  # noqa: E402

pytestmark = pytest.mark.slow
TEXTS = ["The weather is nice today.", "We will strike back.", "Talks resumed."]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def state(home, monkeypatch):
    monkeypatch.setenv("STANCELAB_HOME", str(home))


@pytest.fixture(scope="module")
def runs(home, tmp_path_factory) -> Path:
    """A folder of runs holding one transformer run, trained with 2 cached layers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STANCELAB_HOME", str(home))
        params = TransformerParams(
            max_length=32, batch_size=8, epochs=1, cache_layers=2, progress=False
        )
        model = TransformerModel(params, seed=3)
        model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
        folder = tmp_path_factory.mktemp("runs")
        model.save(folder / "transformer")
    return folder


def cache(*args: str, home: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "STANCELAB_MODEL"}
    return subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "cache", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environ, "STANCELAB_HOME": str(home), **env},
        timeout=120,
    )


def exports(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "onnx").glob("*") if not p.name.startswith("."))


def test_clear_keeps_the_exports_of_runs_in_use_and_rebuilds_what_it_removed(home, runs, tmp_path):
    run = runs / "transformer"
    before = load_model(run).use_backend("onnx", precision="fp32").predict(TEXTS)
    load_model(run).use_backend("onnx", precision="int8")
    key = load_model(run).weights_key_
    assert exports(home) == sorted(
        [f"{key}.onnx", f"{key}.onnx.sha256", f"{key}.int8.onnx", f"{key}.int8.onnx.sha256"]
    )
    (layer_folder,) = (home / "layer-cache").iterdir()

    shown = cache("info", "--keep", str(runs), home=home, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"{key}  used by {run}" in shown.stdout
    assert layer_folder.name in shown.stdout
    assert "2 item(s)" in shown.stdout

    # A dry run removes nothing.
    dry = cache("clear", "--keep", str(tmp_path), "--dry-run", home=home, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 item(s)" in dry.stdout
    assert len(exports(home)) == 4 and layer_folder.exists()

    # The run's export is in use, so only the layer cache goes.
    kept = cache("clear", "--keep", str(runs), home=home, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "kept: onnx" in kept.stdout and "(in use)" in kept.stdout
    assert len(exports(home)) == 4
    assert not layer_folder.exists()

    # With no run using it, the export goes too (both precisions, with their checksums),
    # and the next ONNX prediction makes it again, with the same labels.
    gone = cache("clear", "--onnx", "--keep", str(tmp_path), home=home, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert "removed 1 item(s)" in gone.stdout
    assert exports(home) == []
    assert load_model(run).use_backend("onnx", precision="fp32").predict(TEXTS) == before
    assert exports(home) == [f"{key}.onnx", f"{key}.onnx.sha256"]


def test_clear_leaves_an_export_another_process_is_making(home, runs, tmp_path):
    from filelock import FileLock

    load_model(runs / "transformer").use_backend("onnx", precision="fp32")
    made = exports(home)
    base = fastpath.cache_dir() / made[0]
    with FileLock(str(fastpath.export_lock_path(base))):  # as an export under way holds it
        busy = cache("clear", "--onnx", "--keep", str(tmp_path), home=home, cwd=tmp_path)
    assert busy.returncode == 0, busy.stderr
    assert "another process is making it now" in busy.stdout
    assert exports(home) == made


def test_by_default_the_runs_kept_are_those_under_runs_even_through_a_link(home, runs, tmp_path):
    load_model(runs / "transformer").use_backend("onnx", precision="fp32")
    project = tmp_path / "project"
    (project / "runs").mkdir(parents=True)
    (project / "runs" / "linked").symlink_to(runs / "transformer", target_is_directory=True)
    shown = cache("info", home=home, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "used by runs/linked" in shown.stdout
    cleared = cache("clear", "--onnx", home=home, cwd=project)
    assert "(in use)" in cleared.stdout and exports(home)


def test_a_keep_folder_that_is_not_there_is_refused_and_nothing_is_removed(home, runs, tmp_path):
    load_model(runs / "transformer").use_backend("onnx", precision="fp32")
    made = exports(home)
    manifest = runs / "transformer" / "stancelab.json"
    for wrong in (tmp_path / "rnus", manifest):  # a typo; a file inside the run
        refused = cache("clear", "--onnx", "--keep", str(wrong), home=home, cwd=tmp_path)
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"error: --keep {wrong}: not a folder (name the folder that holds your runs)"
        )
    assert exports(home) == made


KEY = "0123456789abcdef" * 2  # the shape of files.weights_key


def fake_export(home: Path, key: str = KEY) -> list[Path]:
    """The four files of an export, as runner_for leaves them (contents do not matter here)."""
    (home / "onnx").mkdir(parents=True, exist_ok=True)
    paths = [home / "onnx" / f"{key}{tail}" for tail in (".onnx", ".int8.onnx")]
    paths += [p.with_name(p.name + ".sha256") for p in paths]
    for path in paths:
        path.write_bytes(b"x" * 10)
    return paths


def test_files_in_onnx_that_are_not_exports_are_neither_listed_nor_removed(tmp_path):
    home = tmp_path / "home"
    made = fake_export(home)
    strays = [home / "onnx" / n for n in ("README.txt", "NOTES", "my.model.onnx", "ABC.onnx")]
    for stray in strays:
        stray.write_text("mine\n")
    shown = cache("info", "--keep", str(tmp_path), home=home, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "1 item(s), 40 B" in shown.stdout and "README" not in shown.stdout
    cleared = cache("clear", "--onnx", "--keep", str(tmp_path), home=home, cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert "removed 1 item(s), 40 B" in cleared.stdout
    assert not any(p.exists() for p in made)
    assert all(p.read_text() == "mine\n" for p in strays)


def test_a_run_whose_manifest_is_damaged_uses_no_export_and_is_no_traceback(tmp_path):
    home, runs = tmp_path / "home", tmp_path / "runs"
    made = fake_export(home)
    for name, text in {
        "truncated": "{",
        "list": "[]",
        "lists": '{"files": {"model.safetensors": ["a"], "head.safetensors": ["b"]}}',
        "baseline": '{"files": {"model.skops": "abc"}}',
    }.items():
        (runs / name).mkdir(parents=True)
        (runs / name / "stancelab.json").write_text(text)
    for args in (["info"], ["clear", "--onnx"]):
        done = cache(*args, "--keep", str(runs), home=home, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "used by" not in done.stdout
    assert not any(p.exists() for p in made)


def test_a_linked_encoder_is_unlinked_not_emptied_and_does_not_stop_the_rest(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "shared-encoder"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "sub" / "model.safetensors").write_bytes(b"w" * 1000)
    (home / "encoders").mkdir(parents=True)
    (home / "encoders" / "a-linked").symlink_to(elsewhere, target_is_directory=True)
    (home / "encoders" / "b-real").mkdir()
    (home / "encoders" / "b-real" / "f").write_bytes(b"r")
    (home / "layer-cache" / "0-linked").parent.mkdir()
    (home / "layer-cache" / "0-linked").symlink_to(elsewhere, target_is_directory=True)
    cleared = cache("clear", "--encoders", "--layers", home=home, cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert "removed 3 item(s)" in cleared.stdout
    for area in ("encoders", "layer-cache"):  # (the unpack locks stay, as for any encoder)
        assert [p for p in (home / area).iterdir() if not p.name.startswith(".")] == []
    assert (elsewhere / "sub" / "model.safetensors").read_bytes() == b"w" * 1000


def test_an_item_that_cannot_be_removed_is_said_and_the_others_go(tmp_path, monkeypatch):
    from stancelab.models.transformer import caches

    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / "home"))
    for name in ("a", "b"):
        (tmp_path / "home" / "layer-cache" / name).mkdir(parents=True)
        (tmp_path / "home" / "layer-cache" / name / "shard").write_bytes(b"s")
    real = caches.shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if Path(path).name.startswith(".a.removing-"):  # renamed first, then removed
            raise PermissionError(13, "Permission denied", str(path))
        real(path, *args, **kwargs)

    monkeypatch.setattr(caches.shutil, "rmtree", rmtree)
    removed, kept = caches.clear(["layers"])
    assert [i.name for i in removed] == ["b"]
    assert [(i.name, why.split(":")[0]) for i, why in kept] == [("a", caches.CANNOT)]
    # What could not be removed no longer sits under its name, half gone.
    assert sorted(p.name for p in (tmp_path / "home" / "layer-cache").iterdir()) == [
        f".a.removing-{os.getpid()}"
    ]


def test_a_dry_run_says_an_export_another_process_is_making_is_kept(tmp_path):
    from filelock import FileLock

    home = tmp_path / "home"
    made = fake_export(home)
    with FileLock(str(home / "onnx" / f".{KEY}.lock")):  # as an export under way holds it
        dry = cache(
            "clear", "--onnx", "--dry-run", "--keep", str(tmp_path), home=home, cwd=tmp_path
        )
    assert dry.returncode == 0, dry.stderr
    assert "another process is making it now" in dry.stdout
    assert "would remove 0 item(s)" in dry.stdout
    assert all(p.exists() for p in made)


def snapshot(home: Path) -> dict[str, tuple[bytes, int] | str]:
    """Every path under ``home``, dot files included, with what a file holds and its mtime."""
    return {
        str(p.relative_to(home)): (p.read_bytes(), p.stat().st_mtime_ns)
        if p.is_file()
        else "folder"
        for p in sorted(home.rglob("*"))
    }


def test_a_dry_run_leaves_the_state_directory_as_it_was(tmp_path):
    # Taking an item's lock to see whether it is busy would make its lock file.
    from filelock import FileLock

    home, busy_key = tmp_path / "home", "fedcba9876543210" * 2
    fake_export(home)
    fake_export(home, busy_key)
    (home / "onnx" / f".{KEY}.lock").touch()  # left by the export's making, free now
    for area in ("encoders", "layer-cache"):
        (home / area / "0123abcd").mkdir(parents=True)
        (home / area / "0123abcd" / "f").write_bytes(b"e" * 5)
    with FileLock(str(home / "onnx" / f".{busy_key}.lock")):  # an export under way
        before = snapshot(home)
        areas = ["--onnx", "--layers", "--encoders"]
        dry = cache("clear", *areas, "--dry-run", "--keep", str(tmp_path), home=home, cwd=tmp_path)
        assert snapshot(home) == before
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert [line.split()[:2] + line.split()[-1:] for line in lines[:3]] == [
        ["would", "remove:", KEY],
        ["would", "remove:", "0123abcd"],
        ["would", "remove:", "0123abcd"],
    ]
    assert lines[3].startswith("kept: onnx") and lines[3].endswith(
        f"{busy_key} (another process is making it now)"
    )
    assert lines[4:] == ["would remove 3 item(s), 50 B"]


def test_without_runs_here_clear_says_that_no_export_is_kept(tmp_path):
    home = tmp_path / "home"
    fake_export(home)
    dry = cache("clear", "--dry-run", home=home, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "note: no runs/ folder here" in dry.stderr
    (tmp_path / "runs").mkdir()
    dry = cache("clear", "--dry-run", home=home, cwd=tmp_path)
    assert dry.stderr == ""


def test_predicts_default_model_stancelab_model_is_kept_wherever_clear_runs(home, runs, tmp_path):
    run = runs / "transformer"
    load_model(run).use_backend("onnx", precision="fp32")
    made = exports(home)
    kept = cache("clear", "--onnx", home=home, cwd=tmp_path, STANCELAB_MODEL=str(run))
    assert kept.returncode == 0, kept.stderr
    assert f"used by {run}" in kept.stdout and "(in use)" in kept.stdout
    assert "note:" not in kept.stderr
    assert exports(home) == made
    # Without it, and with no runs/ here, the command says why nothing is in use.
    gone = cache("clear", "--onnx", home=home, cwd=tmp_path)
    assert "note: no runs/ folder here" in gone.stderr
    assert exports(home) == []


def fake_run(folder: Path, key: str = KEY) -> Path:
    """A transformer run's manifest whose weights have the ONNX key ``key``."""
    folder.mkdir(parents=True)
    files = {"model.safetensors": key[:16] + "0" * 48, "head.safetensors": key[16:] + "0" * 48}
    (folder / "stancelab.json").write_text(json.dumps({"kind": "transformer", "files": files}))
    return folder


def test_predicts_default_model_runs_transformer_is_kept_when_other_folders_are_named(tmp_path):
    home, project = tmp_path / "home", tmp_path / "project"
    made = fake_export(home)
    fake_run(project / "runs" / "transformer")
    (tmp_path / "old-runs").mkdir()
    kept = cache("clear", "--onnx", "--keep", str(tmp_path / "old-runs"), home=home, cwd=project)
    assert kept.returncode == 0, kept.stderr
    assert "used by runs/transformer" in kept.stdout and "(in use)" in kept.stdout
    assert all(p.exists() for p in made)


def test_what_a_failed_clear_left_is_listed_and_cleared_next_time(tmp_path):
    home = tmp_path / "home"
    left = home / "layer-cache" / ".0123abcd.removing-999999999"  # a pid that is not running
    left.mkdir(parents=True)
    (left / "shard").write_bytes(b"s" * 100)
    shown = cache("info", home=home, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert left.name in shown.stdout and "1 item(s), 100 B" in shown.stdout
    cleared = cache("clear", "--layers", home=home, cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert "removed 1 item(s), 100 B" in cleared.stdout
    assert list((home / "layer-cache").iterdir()) == []


@contextlib.contextmanager
def reader(home: Path, setup: str, lock: str) -> Iterator[None]:
    """A process holding ``lock`` (the context manager a loader reads the files under) from
    the block's start to its end, as a process loading them right then would."""
    code = f"import sys\n{setup}\nwith {lock}:\n    print('holding', flush=True)\n"
    code += "    sys.stdin.readline()\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "STANCELAB_HOME": str(home)},
    )
    try:
        assert proc.stdout.readline() == "holding\n", "the reader did not take its lock"
        yield
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0


def test_clear_keeps_an_encoder_another_process_is_loading_and_removes_it_once_loaded(tmp_path):
    # Renamed away between its config, tokenizer and weights, it would fail the load.
    from stancelab.models.transformer.packaged import PACKAGED, unpacked_name

    home = tmp_path / "home"
    folder = home / "encoders" / unpacked_name(PACKAGED["all-mpnet-base-v2"])
    folder.mkdir(parents=True)
    files = ["config.json", "tokenizer.json", "model.safetensors", ".stancelab-verified"]
    for name in files:
        (folder / name).write_bytes(b"e" * 10)
    setup = "from stancelab.models.transformer.packaged import loading"
    with reader(home, setup, "loading('all-mpnet-base-v2')"):
        dry = cache("clear", "--encoders", "--dry-run", home=home, cwd=tmp_path)
        busy = cache("clear", "--encoders", home=home, cwd=tmp_path)
    for done in (dry, busy):
        assert done.returncode == 0, done.stderr
        (line,) = [line for line in done.stdout.splitlines() if line.startswith("kept:")]
        assert line.startswith("kept: encoders")
        assert line.endswith(f"{folder.name} (in use by another process)")
        assert done.stdout.splitlines()[-1].endswith(" 0 item(s), 0 B")
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    # Loaded (the lock released): the next clear removes it.
    gone = cache("clear", "--encoders", home=home, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert "removed 1 item(s), 40 B" in gone.stdout
    assert not folder.exists()


def test_clear_keeps_an_export_another_process_is_loading_and_removes_it_once_loaded(tmp_path):
    # Removed after its checksum was checked, it would be rebuilt (minutes for mpnet) under
    # a warning that it would not load.
    home = tmp_path / "home"
    made = fake_export(home)
    setup = (
        "from pathlib import Path\n"
        "from stancelab.files import shared_lock\n"
        "from stancelab.models.transformer.onnx import export_reader_lock_path"
    )
    lock = f"shared_lock(export_reader_lock_path(Path({str(made[0])!r})))"
    with reader(home, setup, lock):
        busy = cache("clear", "--onnx", "--keep", str(tmp_path), home=home, cwd=tmp_path)
    assert busy.returncode == 0, busy.stderr
    assert "kept: onnx" in busy.stdout
    assert f"{KEY} (in use by another process)" in busy.stdout
    assert all(p.exists() for p in made)
    gone = cache("clear", "--onnx", "--keep", str(tmp_path), home=home, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert "removed 1 item(s), 40 B" in gone.stdout
    assert not any(p.exists() for p in made)


def waits_for_shared_lock(proc: subprocess.Popen, lock: Path) -> bool:
    """Whether ``proc`` comes to wait for a shared ``flock`` on ``lock`` (as the kernel lists
    it in /proc/locks), rather than ending first."""
    import time

    waiting = f"-> FLOCK  ADVISORY  READ {proc.pid} "
    inode = f":{lock.stat().st_ino} "
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        with open("/proc/locks") as table:
            if any(waiting in row and inode in row for row in table):
                return True
        time.sleep(0.02)
    return False


def test_a_prediction_checks_and_loads_its_export_under_the_lock_clear_takes(home, runs, tmp_path):
    from stancelab.files import exclusive_lock

    run = runs / "transformer"
    before = load_model(run).use_backend("onnx", precision="fp32").predict(TEXTS)
    base = fastpath.cache_dir() / f"{load_model(run).weights_key_}.onnx"
    code = (
        "from stancelab.models.registry import load_model\n"
        f"print(load_model({str(run)!r}).use_backend('onnx', precision='fp32')"
        f".predict({TEXTS!r}))"
    )
    lock = fastpath.export_reader_lock_path(base)
    with exclusive_lock(lock, "busy"):  # as a clear removing the export holds it
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "STANCELAB_HOME": str(home)},
        )
        waited = waits_for_shared_lock(proc, lock)
    out, err = proc.communicate(timeout=120)
    assert waited, err
    assert proc.returncode == 0, err
    assert out.strip() == repr(before) and "rebuilding" not in err
