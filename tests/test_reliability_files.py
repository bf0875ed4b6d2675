"""Issue #17, item 4 and the corpus folder item: no command writes over one of its inputs,
and a corpus folder is read whole (subfolders) without its hidden files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import TINY
from reliability_common import one_error_line, stancelab

from stancelab.config import BaselineParams
from stancelab.corpus.ingest import ingest
from stancelab.errors import InputError
from stancelab.models.baseline import BaselineModel

ARTICLE = "The army will strike back if attacked.\nTalks resumed on Monday in Geneva.\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("run") / "baseline")


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "dropped side file"])
def test_corpus_refuses_to_write_over_its_input(tmp_path, how):
    article = tmp_path / "a.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    out = article
    if how == "symlink":
        out = tmp_path / "link.txt"
        out.symlink_to(article)
    elif how == "hard link":
        out = tmp_path / "hard.txt"
        out.hardlink_to(article)
    elif how == "dropped side file":  # --out a.jsonl writes its dropped lines to a.dropped.jsonl
        article = tmp_path / "a.dropped.jsonl"
        article.write_text(json.dumps({"id": "d", "text": ARTICLE}) + "\n", encoding="utf-8")
        out = tmp_path / "a.jsonl"
    before = article.read_bytes()
    ran = stancelab("corpus", str(article), "--out", str(out))
    assert ran.returncode == 1
    assert "is the input" in one_error_line(ran.stderr)
    assert article.read_bytes() == before


@pytest.mark.parametrize("how", ["same path", "symlink"])
def test_predict_overwrite_never_replaces_its_input(run_dir, tmp_path, how):
    source = tmp_path / "in.jsonl"
    content = json.dumps({"id": "a", "text": "We will strike back."}) + "\n"
    source.write_text(content, encoding="utf-8")
    out = source
    if how == "symlink":
        out = tmp_path / "out.jsonl"
        out.symlink_to(source)
    ran = stancelab(
        "predict", "--model", str(run_dir), "-i", str(source), "-o", str(out), "--overwrite"
    )
    assert ran.returncode == 1
    assert "is the input" in one_error_line(ran.stderr)
    assert source.read_text(encoding="utf-8") == content
    assert not list(tmp_path.glob("*.part*"))


def test_an_output_that_is_not_a_regular_file_is_refused_before_any_work(run_dir, tmp_path):
    import os
    import stat

    from stancelab.prediction import cluster, stream
    from stancelab.prediction.api import resolve_model

    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\nThey deny it.\n", encoding="utf-8")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    null = tmp_path / "null.jsonl"
    null.symlink_to(os.devnull)  # a character device, through a link
    to_stdout = tmp_path / "stdout.jsonl"
    to_stdout.symlink_to("/dev/stdout")
    cases = [
        (fifo, "is not a regular file"),
        (null, "is not a regular file"),
        (Path(os.devnull), "is not a regular file"),
        (Path("/dev/stdout"), "cannot write to an open descriptor such as standard output"),
        (Path("/proc/self/fd/1"), "cannot write to an open descriptor"),
        (to_stdout, "cannot write to an open descriptor"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for output, refusal in cases:
        ran = stancelab(
            "predict", "--model", str(run_dir), "-i", str(source), "-o", str(output), "--overwrite"
        )
        assert ran.returncode == 1 and refusal in one_error_line(ran.stderr), output
        with pytest.raises(InputError, match=refusal):  # the Ray engine: the same check
            cluster.predict_files(run_dir, source, output, overwrite=True)
    with pytest.raises(InputError, match="is not a regular file"):
        stream.predict_file(resolve_model(run_dir), source, fifo, overwrite=True, progress=False)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISCHR(null.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .part or lock left
    assert not list(Path("/dev").glob(".null*")) and not list(Path("/dev").glob(".stdout*"))


def test_an_output_in_the_model_run_directory_is_refused(run_dir, tmp_path):
    import shutil

    from conftest import tree_snapshot

    from stancelab.prediction import cluster, stream
    from stancelab.prediction.api import resolve_model

    run = tmp_path / "models" / "baseline"
    shutil.copytree(run_dir, run)
    files = tree_snapshot(run)
    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\nThey deny it.\n", encoding="utf-8")
    for name in ("baseline.json", "stancelab.json", "new.jsonl"):
        ran = stancelab(
            "predict", "--model", str(run), "-i", str(source), "-o", str(run / name), "--overwrite"
        )
        assert ran.returncode == 1
        assert "is inside the model folder" in one_error_line(ran.stderr), name
    with pytest.raises(InputError, match="is inside the model folder"):
        stream.predict_file(resolve_model(run), source, run / "out.jsonl", progress=False)
    for output, refusal in [
        (run, "is the model"),
        (run.parent, "holds the model"),  # --engine ray replaces a folder OUT whole
        (run / "out", "is inside the model folder"),
    ]:
        with pytest.raises(InputError, match=refusal):
            cluster.predict_files(run, source, output, overwrite=True)
    assert tree_snapshot(run) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "models"]


def test_corpus_folder_recurses_and_skips_hidden_files(tmp_path):
    folder = tmp_path / "articles"
    (folder / "2024").mkdir(parents=True)
    (folder / ".cache").mkdir()
    (folder / "top.txt").write_text(ARTICLE, encoding="utf-8")
    (folder / "2024" / "nested.txt").write_text(ARTICLE.replace("army", "navy"), "utf-8")
    (folder / ".~lock.top.txt").write_text("editor lock file,\n", encoding="utf-8")
    (folder / ".cache" / "copy.txt").write_text(ARTICLE, encoding="utf-8")
    sentences, _ = ingest([folder], tmp_path / "s.jsonl")
    assert sorted({s.doc_id for s in sentences}) == ["2024/nested", "top"]
    assert not any("lock" in s.text for s in sentences)


def test_corpus_output_inside_the_input_folder_is_not_an_input(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "top.txt").write_text(ARTICLE, encoding="utf-8")
    with pytest.raises(InputError, match="is the input"):
        ingest([folder], folder / "top.txt")
    assert (folder / "top.txt").read_text(encoding="utf-8") == ARTICLE


def test_an_output_moved_aside_by_a_killed_replace_is_put_back(tmp_path):
    from stancelab.files import move_into_place, restore_replaced

    out = tmp_path / "run[1].jsonl"  # glob characters in the name
    out.mkdir()
    (out / "a.jsonl").write_text("old\n")
    new = tmp_path / "new"
    new.mkdir()
    (new / "a.jsonl").write_text("new\n")
    move_into_place(new, out)
    assert (out / "a.jsonl").read_text() == "new\n" and not new.exists()
    aside = tmp_path / f".{out.name}.part-old-4242"  # killed between the two renames
    out.rename(aside)
    other = tmp_path / ".run1.jsonl.part-old-4242"  # another output's: left alone
    other.mkdir()
    restore_replaced(out)
    assert (out / "a.jsonl").read_text() == "new\n" and not aside.exists() and other.exists()


def test_what_a_live_process_moved_aside_is_not_put_back(tmp_path):
    """Between move_into_place's two renames the target is missing; another process must not
    put the old one back then (it would undo that swap), only after a kill."""
    import subprocess
    import sys

    from stancelab.files import restore_replaced

    target = tmp_path / "run"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        aside = tmp_path / f".run.part-old-{live.pid}"
        aside.mkdir()
        restore_replaced(target)
        assert aside.exists() and not target.exists()
    finally:
        live.kill()
        live.wait()
    restore_replaced(target)  # its process is gone: a kill left it there
    assert target.is_dir() and not aside.exists()


def test_a_replaced_output_keeps_the_mode_its_user_gave_it(run_dir, tmp_path):
    """An output is written anew and renamed over the old one; the new one takes the old
    one's permission bits, so a report folder or an output made private stays private."""
    from stancelab.evaluation.folders import report_folder

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "We will strike back."}) + "\n")
    out = tmp_path / "out.jsonl"
    args = ("predict", "--model", str(run_dir), "-i", str(source), "-o", str(out))
    assert stancelab(*args).returncode == 0
    out.chmod(0o600)
    assert stancelab(*args, "--overwrite").returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    report = tmp_path / "report"
    with report_folder(report) as staging:
        (staging / "report.md").write_text("# Report\n")
    report.chmod(0o700)
    with report_folder(report, overwrite=True) as staging:
        (staging / "report.md").write_text("# Report, again\n")
    assert stat.S_IMODE(report.stat().st_mode) == 0o700
    assert (report / "report.md").read_text() == "# Report, again\n"
