"""Issue #17, item 1 and its small items: a second writer is refused, never interleaved.

Each test starts a real first writer in a child process, holds it in the middle of its
work (SIGSTOP, or a pause at a named step), runs the second writer, and then lets the first
one finish: the second is refused with one clear line, the first one's output is whole.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import TINY, tree_snapshot
from reliability_common import (
    export_json,
    one_error_line,
    run,
    stancelab,
    start_paused,
    wait_for,
)

from stancelab.annotation.exports import list_exports
from stancelab.config import BaselineParams
from stancelab.errors import InputError
from stancelab.models.baseline import BaselineModel
from stancelab.prediction.api import resolve_model
from stancelab.prediction.stream import predict_file


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("run") / "baseline")


def many_lines(path: Path, n: int) -> Path:
    path.write_text(
        "".join(f"Statement {i}: the army will respond to any attack.\n" for i in range(n)),
        encoding="utf-8",
    )
    return path


def test_second_predict_into_the_same_output_is_refused(run_dir, tmp_path):
    source = many_lines(tmp_path / "in.txt", 3000)
    out = tmp_path / "out.jsonl"
    meta = tmp_path / "out.jsonl.part.json"
    args = ["predict", "--model", str(run_dir), "-i", str(source), "-o", str(out)]
    first = run_popen(*args, "--batch-size", "1", "--no-progress")
    try:
        wait_for(meta.exists, "the first run's first checkpoint", proc=first)
        os.kill(first.pid, signal.SIGSTOP)  # the first writer, held mid-run
        second = stancelab(*args, "--no-progress")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert second.returncode == 1
    assert "another stancelab predict is writing this output" in one_error_line(second.stderr)
    reference = tmp_path / "reference.jsonl"
    predict_file(resolve_model(run_dir), source, reference, progress=False)
    assert out.read_bytes() == reference.read_bytes()  # whole, in order, one model's rows
    assert not meta.exists() and not (tmp_path / "out.jsonl.part").exists()
    assert not (tmp_path / ".out.jsonl.lock").exists()  # the lock is gone with its writer


def run_popen(*args: str):
    import subprocess
    import sys

    from reliability_common import code_root, env

    return subprocess.Popen(
        [sys.executable, "-m", "stancelab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=code_root(),
    )


def export_file(path: Path, sid: str, labels: list[str]) -> Path:
    path.write_text(export_json(sid, f"Sentence {sid} about the border.", labels), encoding="utf-8")
    return path


def test_second_label_import_on_one_exports_folder_is_refused(tmp_path):
    exports, gold = tmp_path / "labels" / "exports", tmp_path / "labels" / "gold.jsonl"
    one = export_file(tmp_path / "one.json", "s1", ["threat"])
    two = export_file(tmp_path / "two.json", "s2", ["denial"])
    common = ["--exports", str(exports), "--gold", str(gold)]
    first, go = start_paused(
        tmp_path,
        "stancelab.annotation.gold:derive",
        ["stancelab.cli", "label", "import", str(one), *common],
    )
    try:
        second = stancelab("label", "import", str(two), *common)
    finally:
        go.write_text("go")
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert second.returncode == 1
    assert "another stancelab label import/pull/gold" in one_error_line(second.stderr)
    stored = list_exports(exports)
    assert len(stored) == 1 and stored[0].path.name.startswith("one-")
    assert [json.loads(line)["id"] for line in gold.read_text().splitlines()] == ["s1"]
    # once the first has finished, the second goes through
    assert stancelab("label", "import", str(two), *common).returncode == 0
    assert len(list_exports(exports)) == 2


def test_second_data_export_into_one_out_is_refused(tmp_path):
    from reliability_common import ROOT

    from stancelab.data import load_export

    gold = tmp_path / "gold.jsonl"
    rows = (ROOT / "labels" / "gold.jsonl").read_text(encoding="utf-8").splitlines(True)
    gold.write_text("".join(rows[:5]), encoding="utf-8")
    out = tmp_path / "hf"
    args = ["--out", str(out), "--gold", str(gold), "--augment-dir", str(ROOT / "labels/augment")]
    first, go = start_paused(
        tmp_path,
        "stancelab.data.hub:dataset_card",  # the first holds the lock, its arrow/ half written
        ["stancelab.cli", "data", "export", *args],
    )
    try:
        second = stancelab("data", "export", *args)
    finally:
        go.write_text("go")
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert second.returncode == 1
    assert "another stancelab data export is writing" in one_error_line(second.stderr)
    assert len(load_export(out)["gold"]) == 5
    assert not list(tmp_path.glob(".hf*"))  # no lock file or temporary folder left


def write_config(tmp_path: Path, gold: Path) -> Path:
    config = tmp_path / "b.yaml"
    config.write_text(
        "model: baseline\nname: b\nseed: 1\n"
        f"data: {{gold: {gold}, augment: false}}\nparams: {{inner_folds: 3}}\n",
        encoding="utf-8",
    )
    return config


def test_second_training_into_one_out_is_refused(tmp_path, tiny_gold):
    config = write_config(tmp_path, tiny_gold)
    out = tmp_path / "run"
    first, go = start_paused(
        tmp_path,
        "stancelab.models.baseline:BaselineModel.fit",
        ["training.train", str(config), "--out", str(out)],
    )
    try:
        second = run("-m", "training.train", str(config), "--out", str(out))
    finally:
        go.write_text("go")
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert second.returncode == 1
    assert "another training is writing this run directory" in one_error_line(second.stderr)
    from stancelab.models.registry import load_model

    assert load_model(out).predict("We will strike back.") is not None


def test_training_onto_an_existing_run_refuses_or_replaces_it_whole(tmp_path, tiny_gold):
    from stancelab.models.fit import train_run
    from stancelab.models.registry import load_model

    config = write_config(tmp_path, tiny_gold)
    out = tmp_path / "run"
    train_run(config, out=out)
    (out / "head.safetensors").write_bytes(b"a stale file of another run")
    with pytest.raises(InputError, match="--overwrite"):
        train_run(config, out=out)
    assert (out / "head.safetensors").exists()
    train_run(config, out=out, overwrite=True, overrides={"params.C": 0.5})
    assert not (out / "head.safetensors").exists()
    assert load_model(out).params.C == 0.5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("where", ["notes", "labels", "."])
def test_overwrite_never_empties_a_folder_that_is_not_a_run(tmp_path, tiny_gold, where):
    from stancelab.models.fit import train_run

    config = write_config(tmp_path, tiny_gold)
    folder = tmp_path / "work"
    (folder / "labels").mkdir(parents=True)
    (folder / "labels" / "gold.jsonl").write_text("my annotations\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "draft.md").write_text("my notes\n")
    before = tree_snapshot(folder)
    with pytest.raises(InputError, match="holds no stancelab run|needs a name of its own"):
        train_run(config, out=folder / where, overwrite=True)
    assert tree_snapshot(folder) == before


def test_a_run_that_cannot_be_written_leaves_the_old_run_as_it_was(tmp_path, tiny_gold):
    from stancelab.models.fit import train_run

    config = write_config(tmp_path, tiny_gold)
    out = tmp_path / "run"
    train_run(config, out=out)
    before = tree_snapshot(out)
    # A real write failure: the child may not write a file over 4 kB (RLIMIT_FSIZE, as on a
    # full disk: the write fails with an OSError), so saving the new run fails part-way.
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from training.train import main\n"
        f"sys.exit(main([{str(config)!r}, '--out', {str(out)!r}, '--overwrite']))\n"
    )
    child = run("-c", script)
    assert child.returncode == 1
    assert "the new run could not be written" in one_error_line(child.stderr)
    assert "the old run is unchanged" in child.stderr
    assert tree_snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("command", ["training.evaluate", "data export"])
def test_a_full_disk_while_writing_a_report_or_export_names_the_output(
    run_dir, tmp_path, tiny_gold, command
):
    """A write that fails for want of space names no file (``write``, pyarrow's close): the
    one line said only "No space left on device". It names the output it was writing."""
    # As on a full disk: the child may not write a file over 4 kB (RLIMIT_FSIZE: the write
    # fails with an OSError that names no file), so the report or export fails part-way.
    augment = tmp_path / "augment"
    augment.mkdir()
    (augment / "a.jsonl").write_text(tiny_gold.read_text().replace('"s', '"a'))
    out = tmp_path / "out"
    if command == "training.evaluate":
        call = "from training.evaluate import main\nsys.exit(main(sys.argv[1:]))\n"
        argv = ["--model", str(run_dir), "--data", str(tiny_gold), "--out", str(out), "--quiet"]
        argv += ["--n-boot", "100"]
    else:
        call = "from stancelab.cli import main\nmain()\n"  # typer exits with the status
        argv = ["data", "export", "--out", str(out), "--gold", str(tiny_gold)]
        argv += ["--augment-dir", str(augment)]
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n" + call
    )
    child = run("-c", script, *argv)
    assert child.returncode == 1
    assert one_error_line(child.stderr) == f"error: {out}: File too large"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rerun_without_resume_does_not_silently_start_over(run_dir, tmp_path):
    model = resolve_model(run_dir)
    source = many_lines(tmp_path / "in.txt", 20)
    out = tmp_path / "out.jsonl"
    part = tmp_path / "out.jsonl.part"
    part.write_bytes(b'{"line": 1}\n')
    (tmp_path / "out.jsonl.part.json").write_text("{}")
    with pytest.raises(InputError, match="--resume.*--overwrite"):
        predict_file(model, source, out, progress=False)
    assert part.read_bytes() == b'{"line": 1}\n'
    predict_file(model, source, out, overwrite=True, progress=False)
    assert len(out.read_text().splitlines()) == 20 and not part.exists()


@pytest.mark.parametrize("where", ["directory", "under a file", "unwritable"])
def test_bad_output_path_is_one_line_and_leaves_no_part(run_dir, tmp_path, where):
    source = many_lines(tmp_path / "in.txt", 3)
    if where == "directory":
        out = tmp_path / "outdir"
        out.mkdir()
    elif where == "under a file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "out.jsonl"
    else:
        out = Path("/proc/stancelab-test/out.jsonl")
    ran = stancelab(
        "predict", "--model", str(run_dir), "-i", str(source), "-o", str(out), "--overwrite"
    )
    assert ran.returncode == 1
    assert str(out.parent if where != "directory" else out) in one_error_line(ran.stderr)
    assert not list(tmp_path.rglob("*.part*"))
    assert not Path(str(out) + ".part").exists()


def test_retraining_a_linked_run_writes_where_the_link_points(tmp_path, tiny_gold, monkeypatch):
    from stancelab.models.fit import train_run
    from stancelab.models.registry import load_model

    config = write_config(tmp_path, tiny_gold)
    target = tmp_path / "big-disk" / "b"
    train_run(config, out=target)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "b").symlink_to(target)  # runs/<name> on another disk
    monkeypatch.chdir(tmp_path)
    train_run(config, overwrite=True, overrides={"params.C": 0.5})  # the default runs/b
    assert (tmp_path / "runs" / "b").is_symlink()
    assert load_model(target).params.C == 0.5


def test_a_run_folder_whose_parent_cannot_be_written_is_replaced_in_place(tmp_path, tiny_gold):
    """A mount point or a writable folder in a shared read-only one: the new run cannot be
    written beside it, so it is written inside it and replaces the old files once complete."""
    import shutil
    import subprocess
    import sys

    config = write_config(tmp_path, tiny_gold)
    shared = tmp_path / "shared"
    out = shared / "mine"
    out.mkdir(parents=True)
    shared.chmod(0o555)
    prefix = []
    if os.geteuid() == 0:  # root writes anywhere: drop the capability that lets it
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root's capabilities")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
    from reliability_common import code_root, env

    def train(*more: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "training.train", str(config), "--out", str(out)]
        return subprocess.run(
            [*prefix, *command, *more], capture_output=True, text=True, env=env(), cwd=code_root()
        )

    try:
        first = train()
        assert first.returncode == 0, first.stderr
        assert train("--overwrite", "--set", "params.C=0.5").returncode == 0
    finally:
        shared.chmod(0o755)
    from stancelab.models.registry import load_model

    assert load_model(out).params.C == 0.5
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
