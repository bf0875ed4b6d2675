"""predict on Ray Data (prediction.cluster): a real local Ray instance and a real transformer.

One Ray instance (num_cpus=2) for the whole module, with its session files in a temporary
directory; no other test file starts Ray. The model is a tiny one-epoch fine-tune of the
packaged MiniLM weights (as in test_fastpath.py); its ONNX export is cached in a temporary
STANCELAB_HOME and reaches the Ray workers through the object store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402

from stancelab.prediction import stream  # noqa: E402
from stancelab.prediction.api import predict, resolve_model  # noqa: E402

slow = pytest.mark.slow
WORKER_TITLE = b"ray::MapWorker(MapBatches(Predictor))"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """STANCELAB_HOME (the ONNX cache) for this module, also inherited by Ray's workers."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STANCELAB_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def saved(home, tmp_path_factory) -> Path:
    from stancelab.config import TransformerParams
    from stancelab.models.transformer.model import TransformerModel

    params = TransformerParams(max_length=32, batch_size=8, epochs=1, progress=False)
    model = TransformerModel(params, seed=3).fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("ray-model") / "transformer")


@pytest.fixture(scope="module")
def cluster(home):
    """A local Ray instance with 2 CPUs; its session files go to a temporary directory (a
    short path: Ray's socket paths must stay under the 107 bytes of a Unix socket name)."""
    ray = pytest.importorskip("ray")
    temp_dir = tempfile.mkdtemp(prefix="stancelab-ray-")
    for attempt in range(3):
        try:
            context = ray.init(num_cpus=2, _temp_dir=temp_dir, include_dashboard=False)
            break
        except Exception:  # Ray gives the raylet a fixed 30 s to register: a busy machine misses
            ray.shutdown()
            if attempt == 2:
                raise
    yield context
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def sentences(n: int) -> list[str]:
    texts = [t for t, _ in TINY]
    return [f"{texts[i % len(texts)]} (item {i})" for i in range(n)]


def jsonl_input(path: Path, n: int) -> Path:
    """n good rows, with four bad ones among them (empty, broken JSON, a number, a list), one
    with a field that is not valid Unicode (line 8), one
    longer than the model's 32 tokens (line 121) and one in Arabic (line 181); every other
    row has fields of its own (carried to its output row as "meta")."""
    lines = [
        json.dumps({"id": f"r{i}", "text": t, **({"day": i, "src": {"p": [i]}} if i % 2 else {})})
        for i, t in enumerate(sentences(n))
    ]
    lines[5] = json.dumps({"id": "empty", "text": "  ", "day": 5})
    lines[7] = json.dumps({"id": "bad-field", "text": "Fine text.", "note": "\ud800"})
    lines[50] = "{broken"
    lines[100] = json.dumps({"id": 7, "text": 7})
    lines[150] = "[1, 2]"
    lines[120] = json.dumps({"id": "long", "text": "The army will respond to any attack. " * 6})
    lines[180] = json.dumps({"id": "arabic", "text": "سنرد بكل قوة إذا هاجموا حدودنا."})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def local_rows(
    model_dir: Path, source: Path, tmp_path: Path, documents: bool = False, meta=None
) -> list:
    out = tmp_path / f"local-{source.stem}{'-' + meta if meta else ''}.jsonl"
    model = resolve_model(model_dir)
    stream.predict_file(model, source, out, documents=documents, meta=meta, progress=False)
    return out.read_text(encoding="utf-8").splitlines()


def ray_rows(folder: Path) -> list[str]:
    files = sorted(folder.glob("*.jsonl"))
    assert files, f"no output files in {folder}"
    return [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]


def by_line(lines: list[str]) -> list[str]:
    return sorted(lines, key=lambda line: json.loads(line)["line"])


def assert_same_rows(got: list[str], expected: list[str]) -> None:
    """The local path's rows, each once: the same keys, labels, ids and errors. A score may
    differ in its 6th decimal: ONNX Runtime pads a batch to its longest row, and Ray's
    batches are not the local path's chunks."""
    assert len(got) == len(set(got)) == len(expected)
    for mine, local in zip(by_line(got), expected, strict=True):
        mine, local = json.loads(mine), json.loads(local)
        assert list(mine) == list(local)
        assert {k: v for k, v in mine.items() if k != "scores"} == {
            k: v for k, v in local.items() if k != "scores"
        }
        if "scores" in local:
            assert mine["scores"] == pytest.approx(local["scores"], abs=1e-5)


@slow
def test_same_rows_as_the_local_path_each_once(cluster, saved, tmp_path):
    from stancelab.prediction import cluster as engine

    source = jsonl_input(tmp_path / "in.jsonl", 300)
    expected = local_rows(saved, source, tmp_path)
    summary = engine.predict_files(saved, source, tmp_path / "out.jsonl", batch_size=32)
    got = ray_rows(tmp_path / "out.jsonl")
    assert len(got) == len(expected) == 300 and summary.rows == 300
    assert_same_rows(got, expected)
    errors = [json.loads(line) for line in got if '"error"' in line]
    assert summary.errors == len(errors) == 4
    cut = [json.loads(line) for line in got if '"truncated"' in line]
    assert [(r["line"], r["truncated"]) for r in cut] == [(121, True)] and summary.truncated == 1
    assert "1 truncated row(s)" in str(summary)
    foreign = [json.loads(line) for line in got if '"foreign_script"' in line]
    assert [(r["line"], r["foreign_script"]) for r in foreign] == [(181, True)]
    assert summary.foreign_script == 1 and "1 row(s) mostly not in Latin letters" in str(summary)
    assert {e["line"]: e["error"] for e in errors} == {
        6: "'text' is empty or only white space or invisible characters",
        51: "invalid JSON (Expecting property name enclosed in double quotes)",
        101: "'text' must be a string, not int",
        151: "expected a JSON object",
    }
    # the summary names the first error row in input order (rows are written in none)
    assert str(summary).splitlines()[1] == (
        "first error row (line 6, id 'empty'): 'text' is empty or only white space or invisible "
        f'characters; 4 distinct messages; every error row has its message under "error" '
        f"in {tmp_path / 'out.jsonl'}/"
    )
    # every row but an error row names the model (rows are not in input order: which come
    # first depends on how Ray split the blocks, and a block may begin with an error row)
    good = [r for r in map(json.loads, got) if "error" not in r]
    assert len(good) == 296 and all(r["model_version"].startswith("transformer-") for r in good)
    metas = {r["line"]: r.get("meta") for r in map(json.loads, got)}
    assert metas[2] == {"day": 1, "src": {"p": [1]}} and metas[1] is None
    assert metas[6] == {"day": 5}  # an error row keeps its record's fields too
    assert metas[8] == {"note": "\\ud800"}  # spelled out, and the record labelled

    import pyarrow.parquet as pq

    engine.predict_files(saved, source, tmp_path / "out.parquet", batch_size=32)
    table = pq.read_table(tmp_path / "out.parquet")  # one schema: the fields as JSON text
    lines, texts = table.column("line").to_pylist(), table.column("meta").to_pylist()
    column = dict(zip(lines, texts, strict=True))
    assert json.loads(column[2]) == metas[2] and column[1] is None

    # --meta day: only that field, on both engines alike (error rows too); a field no record
    # has is refused before any work, as locally
    from stancelab.errors import InputError

    with pytest.raises(InputError, match=r"in.jsonl: no record has the field 'dy' \(--meta\)"):
        engine.predict_files(saved, source, tmp_path / "none.jsonl", meta="dy")
    assert not (tmp_path / "none.jsonl").exists()
    expected = local_rows(saved, source, tmp_path, meta="day")
    engine.predict_files(saved, source, tmp_path / "day.jsonl", batch_size=32, meta="day")
    got = ray_rows(tmp_path / "day.jsonl")
    assert_same_rows(got, expected)
    metas = {r["line"]: r.get("meta") for r in map(json.loads, got)}
    assert metas[2] == {"day": 1} and metas[6] == {"day": 5} and metas[8] is None


@slow
def test_a_killed_worker_is_retried_and_no_row_is_lost_or_doubled(cluster, saved, tmp_path):
    from stancelab.prediction import cluster as engine

    source = tmp_path / "many.txt"
    source.write_text("".join(t + "\n" for t in sentences(1500)), encoding="utf-8")
    expected = local_rows(saved, source, tmp_path)
    out = tmp_path / "out.jsonl"
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = engine.predict_files(saved, source, out, batch_size=8)
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    job = threading.Thread(target=run)
    job.start()
    killed = None
    deadline = time.monotonic() + 300
    while job.is_alive() and killed is None and time.monotonic() < deadline:
        busy = [pid for pid, title in worker_titles().items() if b"__init__" not in title]
        written = any(tmp_path.glob(".out.jsonl.part-*/*"))  # OUT is moved in place at the end
        if busy and written:  # loaded, and rows already written
            killed = busy[0]
            os.kill(killed, 9)
        time.sleep(0.05)
    job.join(timeout=300)
    assert killed is not None, "the run ended before a worker could be killed"
    assert "error" not in result, result.get("error")
    assert killed not in worker_titles()  # really gone; Ray restarted it and retried its batch
    got = ray_rows(out)
    assert len(got) == 1500 and result["summary"].rows == 1500
    assert_same_rows(got, expected)


def worker_titles() -> dict[int, bytes]:
    """pid -> process title of this machine's Ray Predictor actors."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(WORKER_TITLE):
            found[int(entry.name)] = title
    return found


@slow
def test_documents_in_a_folder_and_parquet(cluster, saved, tmp_path):
    from stancelab.prediction import cluster as engine

    folder = tmp_path / "articles"
    folder.mkdir()
    articles = {
        "a": "The minister said the army will retaliate. He denied that troops shelled it."
        "\n\nPhoto: Reuters",
        "b": "Talks are scheduled for next week in Geneva. The rebels accused the army.",
    }
    for name, text in articles.items():
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe not UTF-8")
    summary = engine.predict_files(saved, folder, tmp_path / "docs.jsonl", documents=True)
    rows = [json.loads(line) for line in ray_rows(tmp_path / "docs.jsonl")]
    assert summary.rows == len(rows) == 5 and summary.errors == 1
    for name, text in articles.items():
        mine = sorted(
            (r for r in rows if r["path"].endswith(f"{name}.txt")), key=lambda r: r["index"]
        )
        local = [
            json.loads(line) for line in local_rows(saved, folder / f"{name}.txt", tmp_path, True)
        ]
        assert all(text[r["start"] : r["end"]] == r["text"] for r in mine)
        mine = [json.dumps({k: v for k, v in r.items() if k != "path"}) for r in mine]
        assert_same_rows(mine, [json.dumps(r) for r in local])
    assert "not valid UTF-8" in next(r["error"] for r in rows if r["path"].endswith("bad.txt"))
    side = [json.loads(line) for line in ray_rows(tmp_path / "docs.jsonl" / "_dropped")]
    assert [(r["path"], r["doc_id"], r["reason"], r["text"]) for r in side] == [
        (str((folder / "a.txt").resolve()), "a", "photo credit", "Photo: Reuters")
    ]
    assert summary.dropped == {"photo credit": 1}

    import pyarrow.parquet as pq

    out = tmp_path / "docs.parquet"
    engine.predict_files(saved, folder, out, documents=True)
    table = pq.read_table(out)  # which skips the side rows' folder, out/_dropped/
    assert len(ray_rows(out / "_dropped")) == 1
    assert table.num_rows == 5 and {"labels", "scores", "start", "end", "error"} <= set(
        table.column_names
    )
    errors = table.column("error").to_pylist()
    for flag in ("truncated", "foreign_script"):
        flags = zip(table.column(flag).to_pylist(), errors, strict=True)
        assert [on for on, error in flags if error is None] == [False] * 4  # false, not null


@slow
def test_documents_write_and_count_the_dropped_lines_as_locally(cluster, saved, tmp_path):
    """The lines --documents drops as page furniture go to OUT/_dropped/ (in OUT, so moved
    into place and replaced with it): the local side file's rows, and the same counts."""
    from stancelab.errors import InputError
    from stancelab.prediction import cluster as engine
    from stancelab.prediction.ray_files import refuse_foreign_folder

    records = [
        {"id": "a", "text": "Read more: talks resume\nThe minister said the army will retaliate."},
        {"id": "b", "text": "Credit: the Ministry will respond with force."},
        {"text": "Share\n\nWe deny that troops shelled the village."},
        {"text": " "},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    local = tmp_path / "local.jsonl"
    expected = stream.predict_file(
        resolve_model(saved), source, local, documents=True, progress=False
    )
    out = tmp_path / "out.jsonl"
    summary = engine.predict_files(saved, source, out, documents=True, batch_size=2)
    side = sorted((out / "_dropped").glob("*.jsonl"))
    assert side
    lines = [line for p in side for line in p.read_text(encoding="utf-8").splitlines()]
    assert by_line(lines) == (tmp_path / "local.dropped.jsonl").read_text().splitlines()
    reasons = {"photo credit": 1, "read-more link": 1, "share widget": 1}
    assert summary.dropped == expected.dropped == reasons
    assert summary.no_sentence == expected.no_sentence == 1
    assert summary.rows == 3 and summary.errors == 1
    assert summary.files == len(list(out.glob("*.jsonl")))  # the side rows' files apart
    assert (
        "1 record(s) with no sentence left (every line dropped); 3 furniture line(s) dropped "
        f"(1 photo credit, 1 read-more link, 1 share widget) -> {out}/_dropped/;"
    ) in str(summary)
    assert_same_rows(ray_rows(out), local.read_text(encoding="utf-8").splitlines())
    refuse_foreign_folder(out)  # --overwrite may replace it, side rows and all
    (out / "_dropped" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds _dropped/notes.txt, which this engine did not"):
        engine.predict_files(saved, source, out, documents=True, overwrite=True)


@slow
def test_documents_with_a_repeated_id_are_refused_before_any_work_as_locally(
    cluster, saved, tmp_path
):
    """As the local engine refuses them: two records of one id would give their sentences
    one id. In a folder, records without an id are named by their file and line, so two
    files' first records are two documents; an id given in two files is refused."""
    from stancelab.errors import InputError
    from stancelab.prediction import cluster as engine

    source = tmp_path / "in.jsonl"
    records = [{"text": "We will strike."}, {"text": "No."}, {"id": "line1", "text": "We deny it."}]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(InputError) as local:
        stream.predict_file(
            resolve_model(saved), source, tmp_path / "local.jsonl", documents=True, progress=False
        )
    with pytest.raises(InputError) as on_ray:
        engine.predict_files(saved, source, tmp_path / "out.jsonl", documents=True)
    assert str(on_ray.value) == str(local.value)
    assert str(local.value).startswith(f"{source}:3: document id 'line1' is also that of ")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "2024").mkdir()
    for name in ("a", "2024/b"):
        (folder / f"{name}.jsonl").write_text('{"text": "We will strike."}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["--model", str(saved), "--documents", "-i", str(folder), "-o", str(out)]
    assert run_cli(*args, "--engine", "ray").returncode == 0
    rows = [json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.open()]
    assert sorted(r["doc_id"] for r in rows) == ["2024/b/line1", "a/line1"]
    assert len({r["id"] for r in rows}) == 2
    (folder / "c.jsonl").write_text('{"id": "a/line1", "text": "No."}\n', encoding="utf-8")
    ran = run_cli(*args, "--engine", "ray", "--overwrite")
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        f"error: {folder / 'c.jsonl'}:1: document id 'a/line1' is also that of "
        f"{folder / 'a.jsonl'}:1 (no id: named a/line1); give each document its own id (the "
        "ids of its sentences begin with it)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["articles", "in.jsonl", "out.jsonl"]
    assert [json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.open()] == rows


@slow
def test_line_mode_refuses_an_id_given_twice_before_any_work_as_locally(cluster, saved, tmp_path):
    """Without --documents each record is one row: two rows of one id anywhere in the input
    (two files of a folder too) are refused with the local message, before Ray reads a row.
    Records without an id are not named: they never clash."""
    from stancelab.errors import InputError
    from stancelab.prediction import cluster as engine

    source = tmp_path / "in.jsonl"
    records = [{"id": "a", "text": "We will strike."}, {"text": "No."}, {"id": "a", "text": "x"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(InputError) as local:
        stream.predict_file(resolve_model(saved), source, tmp_path / "local.jsonl", progress=False)
    with pytest.raises(InputError) as on_ray:
        engine.predict_files(saved, source, tmp_path / "out.jsonl")
    assert str(on_ray.value) == str(local.value)
    assert str(local.value).startswith(f"{source}:3: id 'a' is also that of {source}:1; ")
    folder = tmp_path / "inputs"
    (folder / "2024").mkdir(parents=True)
    for name in ("a", "2024/b"):
        (folder / f"{name}.jsonl").write_text('{"text": "We will strike."}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["--model", str(saved), "-i", str(folder), "-o", str(out), "--engine", "ray"]
    assert run_cli(*args).returncode == 0
    kept = {f.name: f.read_bytes() for f in out.iterdir()}
    (folder / "c.jsonl").write_text('{"id": "7", "text": "No."}\n', encoding="utf-8")
    (folder / "2024" / "b.jsonl").write_text('{"id": 7, "text": "No."}\n', encoding="utf-8")
    ran = run_cli(*args, "--overwrite")
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        f"error: {folder / 'c.jsonl'}:1: id '7' is also that of {folder / '2024' / 'b.jsonl'}:1; "
        "give each record its own id (output rows are matched on it), or rename the column "
        "or key if it is not a record's own (a speaker's, a document's): it is then carried "
        "as meta"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "inputs", "out.jsonl"]
    assert {f.name: f.read_bytes() for f in out.iterdir()} == kept


@slow
def test_predict_dataset_for_a_ray_pipeline(cluster, saved):
    import ray

    from stancelab.prediction.cluster import predict_dataset

    texts = sentences(40)
    dataset = ray.data.from_items(
        [{"text": t, "id": i} for i, t in enumerate(texts)] + [{"text": "", "id": 40}]
    )
    rows = predict_dataset(dataset, saved, workers=1, batch_size=16).take_all()
    assert len(rows) == 41
    good = sorted((r for r in rows if r["error"] is None), key=lambda r: int(r["id"]))
    assert [tuple(r["labels"]) for r in good] == [p.labels for p in predict(texts, model=saved)]
    assert [r["error"] for r in rows if r["error"]] == [
        "'text' is empty or only white space or invisible characters"
    ]


@slow
def test_cli_joins_a_running_cluster(cluster, saved, tmp_path):
    source = jsonl_input(tmp_path / "in.jsonl", 200)
    out = tmp_path / "cli.jsonl"
    args = ["--model", str(saved), "--input", str(source), "--output", str(out)]
    address = cluster.address_info["gcs_address"]
    ran = run_cli(*args, "--engine", "ray", "--ray-address", address, "--workers", "1")
    assert ran.returncode == 0, ran.stderr
    assert "200 row(s)" in ran.stdout and "4 error row(s)" in ran.stdout
    assert_same_rows(ray_rows(out), local_rows(saved, source, tmp_path))
    again = run_cli(*args, "--engine", "ray", "--ray-address", address)
    assert again.returncode == 1 and "exists" in again.stderr


@slow
def test_overwrite_never_touches_an_input_and_a_failed_run_keeps_the_old_output(
    cluster, saved, tmp_path
):
    """--overwrite replaces an earlier output only when the new one is complete; an output
    that is the input, holds it or lies inside the input folder is refused, all untouched."""
    from stancelab.errors import InputError, ModelLoadError
    from stancelab.prediction import cluster as engine

    folder = tmp_path / "inputs"
    folder.mkdir()
    source = jsonl_input(folder / "in.jsonl", 200)
    before = source.read_bytes()
    for target, output, refusal in [
        (source, source, "is the input"),
        (folder, folder, "is the input"),
        (source, folder, "holds the input"),
        (source, tmp_path, "holds the input"),
        (folder, folder / "out", "inside the input folder"),
    ]:
        with pytest.raises(InputError, match=refusal):
            engine.predict_files(saved, target, output, overwrite=True)
        assert source.read_bytes() == before and not (folder / "out").exists()
    out = tmp_path / "out.jsonl"
    engine.predict_files(saved, source, out, workers=1)
    first = sorted(ray_rows(out))
    with pytest.raises(ModelLoadError):  # the model fails to load: the old output stays
        engine.predict_files(tmp_path / "no-such-run", source, out, overwrite=True, workers=1)
    assert sorted(ray_rows(out)) == first
    stale = out / f"{'0' * 32}_000099.jsonl"  # a file of an earlier run
    stale.write_text("{}\n", encoding="utf-8")
    engine.predict_files(saved, source, out, overwrite=True, workers=1)
    assert not stale.exists() and sorted(ray_rows(out)) == first
    assert [p.name for p in tmp_path.iterdir() if ".part-" in p.name] == []
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(InputError, match="afile"):  # a parent that is a file: one line
        engine.predict_files(saved, source, afile / "out", workers=1)
    assert not (tmp_path / ".out.jsonl.lock").exists()  # released locks leave no file
    from stancelab.files import output_lock

    busy = "another stancelab predict is writing this output"
    with output_lock(out):  # a run under way
        with pytest.raises(InputError, match=busy):
            engine.predict_files(saved, source, out, overwrite=True, workers=1)
    assert sorted(ray_rows(out)) == first
    fresh = tmp_path / "fresh.jsonl"
    with output_lock(fresh):  # a run under way on either route refuses the other route too
        with pytest.raises(InputError, match=busy):
            engine.predict_files(saved, source, fresh, workers=1)
        with pytest.raises(InputError, match=busy):
            stream.predict_file(resolve_model(saved), source, fresh, progress=False)
    assert not fresh.exists() and not (tmp_path / "fresh.jsonl.part").exists()

    elsewhere = tmp_path / "big-disk"
    elsewhere.mkdir()
    (elsewhere / "out").mkdir()
    old = elsewhere / "out" / f"{'1' * 32}_000000.jsonl"
    old.write_text("{}\n")
    link = tmp_path / "linked"
    link.symlink_to(elsewhere / "out")  # OUT on another disk, through a link
    engine.predict_files(saved, source, link, overwrite=True, workers=1)
    assert link.is_symlink() and sorted(ray_rows(elsewhere / "out")) == first
    assert not old.exists()
    with pytest.raises(InputError, match="an output needs a name of its own"):
        engine.predict_files(saved, source, elsewhere / "..", overwrite=True, workers=1)


@pytest.mark.parametrize(
    "mine",
    [
        {"notes.txt": "my notes"},  # a project folder
        {"a.jsonl": "{}", "b.jsonl": "{}"},  # a folder of the user's JSONL (labels/augment)
        {"exports/x.json": "{}"},  # a folder holding folders (labels/)
        {".git/HEAD": "ref"},
    ],
)
def test_overwrite_never_replaces_a_folder_this_engine_did_not_write(saved, tmp_path, mine):
    from conftest import tree_snapshot

    from stancelab.errors import InputError
    from stancelab.prediction import cluster as engine

    source = jsonl_input(tmp_path / "in.jsonl", 200)
    folder = tmp_path / "work"
    for name, text in mine.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    before = tree_snapshot(folder)
    with pytest.raises(InputError, match="which this engine did not write, so it is not replaced"):
        engine.predict_files(saved, source, folder, overwrite=True, workers=1)
    assert tree_snapshot(folder) == before


def run_cli(
    *args: str, code: str = "", timeout: float | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    program = f"import sys\n{code}\nfrom stancelab.cli import main\nmain()"
    return subprocess.run(
        [sys.executable, "-c", program, "predict", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_a_folder_input_lists_its_linked_folders_as_ray_data_does(tmp_path):
    """A link to a folder in the input folder (2025 -> a bigger disk) is read through, as
    Ray Data lists a folder (its articles were left out in silence); an OUT inside such a
    folder is refused as one inside the input folder is; a loop of links is walked once."""
    fs = pytest.importorskip("pyarrow.fs")
    from stancelab.errors import InputError
    from stancelab.prediction import cluster as engine
    from stancelab.prediction.ray_files import input_files

    folder, elsewhere = tmp_path / "articles", tmp_path / "elsewhere"
    (elsewhere / "deep").mkdir(parents=True)
    folder.mkdir()
    for path in (folder / "a.txt", elsewhere / "b.jsonl", elsewhere / "deep" / "c.txt"):
        path.write_text('{"text": "We will strike."}\n', encoding="utf-8")
    (folder / "2025").symlink_to(elsewhere)
    listed = fs.LocalFileSystem().get_file_info(fs.FileSelector(str(folder), recursive=True))
    ray_data = sorted(Path(f.path) for f in listed if f.type == fs.FileType.File)
    files, found = input_files(folder)
    assert files == ray_data and found == folder
    assert [p.relative_to(folder).as_posix() for p in files] == [
        "2025/b.jsonl",
        "2025/deep/c.txt",
        "a.txt",
    ]
    for out in (elsewhere / "out.jsonl", elsewhere / "deep" / "out.jsonl"):
        with pytest.raises(InputError, match="is inside the input folder .*2025"):
            engine.predict_files(tmp_path / "no-model", folder, out)
    (elsewhere / "loop").symlink_to(folder)
    assert input_files(folder)[0] == files


def test_a_folder_of_hidden_files_only_names_them(tmp_path):
    """A folder holding only hidden inputs (".draft.jsonl", a "_old" folder) was called one
    with no .txt, .jsonl or .csv files, as if it were empty."""
    pytest.importorskip("ray")
    from stancelab.errors import InputError
    from stancelab.prediction.ray_files import input_files

    folder = tmp_path / "articles"
    (folder / "_old").mkdir(parents=True)
    for name in (".draft.jsonl", "_old/a.txt", ".DS_Store"):
        (folder / name).write_text('{"text": "We will strike."}\n', encoding="utf-8")
    out = tmp_path / "out"
    ran = run_cli("--input", str(folder), "--output", str(out), "--engine", "ray")
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stderr == (
        f"error: {folder}: no .txt, .jsonl or .csv files in this folder; skipped 2 hidden "
        "file(s), whose path there has a name beginning with '.' or '_' (.draft.jsonl, "
        "_old/a.txt), as Ray Data skips them: rename them to have them read\n"
    )
    assert not out.exists()
    for name in (".b.csv", ".c.txt"):
        (folder / name).write_text("text\nWe will strike.\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"skipped 4 hidden .* \(.b.csv, .c.txt, .draft.jsonl, ...\)"
    ):
        input_files(folder)


def test_a_folder_input_names_the_files_it_skips(tmp_path):
    """A folder's .md article or PDF beside its inputs was dropped in silence, where `corpus
    FOLDER` names them; hidden files stay unnamed. Refused before Ray starts (no Ray there)."""
    pytest.importorskip("ray")
    import socket

    folder = tmp_path / "articles"
    (folder / "2024").mkdir(parents=True)
    (folder / "a.txt").write_text("We will strike.\n", encoding="utf-8")
    for name in ("notes.md", "2024/report.pdf", ".draft.md", "2024/.draft.md"):
        (folder / name).write_text("The army denied it.\n", encoding="utf-8")
    with socket.socket() as probe:  # a port the system just handed out, closed: no one listens
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    out = tmp_path / "out"
    ran = run_cli(
        "--input", str(folder), "--output", str(out), "--engine", "ray", "--ray-address", address
    )
    assert ran.returncode == 1
    assert ran.stderr.splitlines()[0] == (
        f"warning: {folder}: skipped 2 file(s) that are not .txt, .jsonl or .csv "
        "(2024/report.pdf, notes.md): a folder's .txt, .jsonl and .csv files are read; save "
        "articles as UTF-8 .txt files"
    )
    assert ran.stderr.splitlines()[1].startswith(f"error: no Ray cluster at {address}")
    assert len(ran.stderr.splitlines()) == 2 and not out.exists()


def test_without_ray_one_line_names_the_extra(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\n", encoding="utf-8")
    args = ("--input", str(source), "--output", str(tmp_path / "out"), "--engine", "ray")
    ran = run_cli(*args, code="sys.modules['ray'] = None")  # as if Ray were not installed
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        "error: the Ray engine needs Ray: pip install -e '.[ray]' (or pip install 'stancelab[ray]')"
    ]


def test_the_help_of_engine_gives_the_install_command_whole():
    """typer renders help as rich markup, which took `[ray]` for a tag and dropped it: the
    help said `pip install -e '.'`, which installs no Ray."""
    from typer.testing import CliRunner

    from stancelab.cli import app

    shown = CliRunner().invoke(app, ["predict", "--help"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0
    (line,) = [line for line in shown.output.splitlines() if "--engine" in line]
    assert "local, or ray: --input on Ray Data (pip install -e '.[ray]')." in line


@pytest.mark.parametrize("given", ["--ray-address", "$RAY_ADDRESS"])
def test_an_address_where_no_ray_listens_is_one_line_naming_it(tmp_path, given):
    """Ray retries such an address for many minutes, printing only warnings; predict checks
    that the head accepts a connection before joining it, and starts no work."""
    pytest.importorskip("ray")
    import socket

    with socket.socket() as probe:  # a port the system just handed out, closed: no one listens
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["--input", str(source), "--output", str(out), "--engine", "ray"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if given == "--ray-address":
        args += ["--ray-address", address]
    else:
        env["RAY_ADDRESS"] = address
    program = "from stancelab.cli import main\nmain()"
    ran = subprocess.run(
        [sys.executable, "-c", program, "predict", *args], capture_output=True, text=True, env=env
    )
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        f"error: no Ray cluster at {address} ({given}): Connection refused; start one there "
        "with `ray start --head`, or give the address it printed"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


@pytest.fixture
def not_a_head(request):
    """HOST:PORT of a real server that accepts connections but is not a Ray head: an HTTP
    server (as Ray's dashboard port is), a socket that accepts and never answers, or a gRPC
    server without Ray's GCS service (HTTP/2 alone does not make a Ray head)."""
    import socket
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    kind = request.param
    if kind == "http":
        server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        server.server_close()
    elif kind == "silent":
        listener = socket.create_server(("127.0.0.1", 0))
        held: list[socket.socket] = []

        def accept() -> None:
            try:
                while True:
                    held.append(listener.accept()[0])  # accepted, never answered
            except OSError:  # closed at the end of the test
                pass

        threading.Thread(target=accept, daemon=True).start()
        yield f"127.0.0.1:{listener.getsockname()[1]}"
        listener.close()
        for conn in held:
            conn.close()
    else:
        grpc = pytest.importorskip("grpc")
        from concurrent.futures import ThreadPoolExecutor

        server = grpc.server(ThreadPoolExecutor(max_workers=1))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        yield f"127.0.0.1:{port}"
        server.stop(None)


@pytest.mark.parametrize(
    ("not_a_head", "why"),
    [
        ("http", "it does not speak gRPC (an HTTP server, such as the dashboard?)"),
        ("silent", "no answer to a Ray request within 5 s"),
        ("grpc", "a gRPC server without Ray's GCS"),
    ],
    indirect=["not_a_head"],
)
def test_an_address_that_answers_but_is_not_a_ray_head_is_one_line(not_a_head, why, tmp_path):
    """Such a port passes a TCP check; Ray then retried an HTTP server or a silent port for
    ~14 minutes (20 tries of ~41 s) and a gRPC server for ~20 s, warnings only, and failed
    without saying why. A short gRPC call to the GCS that every Ray head runs tells them
    apart within GCS_SECONDS."""
    pytest.importorskip("ray")
    from stancelab.errors import InputError
    from stancelab.prediction.ray_address import check_ray_address

    address = not_a_head
    with pytest.raises(InputError, match="is not a Ray head"):
        check_ray_address(address)
    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ("--input", str(source), "--output", str(out), "--engine", "ray")
    ran = run_cli(*args, "--ray-address", address, timeout=120)  # Ray alone: ~14 minutes
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        f"error: {address} (--ray-address) is not a Ray head: {why}; give the HOST:PORT that "
        "`ray start --head` prints (its GCS port, 6379 by default; 8265 is the dashboard)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


@pytest.mark.parametrize("given", ["--ray-address", "$RAY_ADDRESS"])
def test_a_real_ray_head_passes_the_check(cluster, given, monkeypatch):
    """The GCS address of the module's real Ray instance (as `ray start --head` prints it)."""
    from stancelab.prediction.ray_address import check_ray_address

    address = cluster.address_info["gcs_address"]
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if given == "$RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    check_ray_address(address if given == "--ray-address" else None)


def test_a_ray_head_that_wants_a_token_is_one_line_saying_how(cluster, tmp_path):
    """Ray 2.60 turns token auth on for a local Ray (this module's) and for `ray start
    --head` wherever ~/.ray/auth_token exists, which every local Ray run writes; `ray.init`
    sends a token to a given address only with RAY_AUTH_MODE=token, which a user's shell
    does not have. Ray then retried for ~15 s and said only "Failed to connect"."""
    address = cluster.address_info["gcs_address"]
    assert os.environ.get("RAY_AUTH_MODE") == "token"  # set by this module's ray.init
    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\n", encoding="utf-8")
    args = ("--input", str(source), "--output", str(tmp_path / "out.jsonl"), "--engine", "ray")
    hidden = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    shell = {k: v for k, v in os.environ.items() if k not in hidden}
    wrong = {**shell, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 32}
    home = tmp_path.parent / f"{tmp_path.name}-home"  # a client with no ~/.ray/auth_token
    home.mkdir()
    tokenless = {**shell, "RAY_AUTH_MODE": "token", "HOME": str(home)}
    where = f"{address} (--ray-address)"
    give = "copy the head's ~/.ray/auth_token here, or set $RAY_AUTH_TOKEN to the token it holds"
    for env, said in (
        (
            shell,
            f"{where} wants an authentication token (a Ray head with token auth, which `ray "
            "start --head` turns on when ~/.ray/auth_token exists); run with "
            "RAY_AUTH_MODE=token and the head's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN",
        ),
        (
            wrong,
            f"{where} refused the token this process sent (from $RAY_AUTH_TOKEN, which Ray "
            f"reads first); use the cluster's token: {give}",
        ),
        (
            tokenless,  # Ray raised AuthenticationError before sending: a traceback
            f"RAY_AUTH_MODE=token, but this machine has no Ray token to send to {where}; {give}",
        ),
    ):
        ran = run_cli(*args, "--ray-address", address, timeout=120, env=env)
        assert ran.returncode == 1
        assert ran.stderr.strip().splitlines() == [f"error: {said}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
