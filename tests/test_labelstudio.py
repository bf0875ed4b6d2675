"""The Label Studio integration against a real local server (one per test session).

The ``labelstudio`` fixture (conftest.py) starts the server from a cached migrated template;
commands run in-process through the real CLI with LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY.
Each test uses its own project, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import TINY, tree_snapshot
from reliability_common import start_paused
from typer.testing import CliRunner

from stancelab.annotation.client import connect, find_project, sentence_tasks
from stancelab.annotation.credentials import ServerError
from stancelab.annotation.exports import list_exports
from stancelab.annotation.gold import derive
from stancelab.annotation.interface import label_config
from stancelab.annotation.launcher import LS_VERSION
from stancelab.annotation.server import ADMIN_FILE, LabelStudioServer, free_port
from stancelab.annotation.votes import parse_export
from stancelab.cli import app
from stancelab.config import BaselineParams
from stancelab.files import write_jsonl
from stancelab.labels import LABELS
from stancelab.models.baseline import BaselineModel

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]
runner = CliRunner()


def cli(args: list[str], creds, **env: str | None):
    base = {"LABEL_STUDIO_URL": creds.url, "LABEL_STUDIO_API_KEY": creds.token}
    return runner.invoke(app, ["label", *args], env={**base, **env})


def one_line_error(done) -> str:
    assert done.exit_code == 1, done.output
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.fixture
def sentences(tmp_path) -> Path:
    """Eight sentences from two documents, in the corpus format."""
    path = tmp_path / "sentences.jsonl"
    rows = [
        {"id": f"d{i // 4}-s{i}", "doc_id": f"d{i // 4}", "index": i % 4, "text": TINY[i * 3][0]}
        for i in range(8)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def labels_dir(tmp_path) -> dict:
    labels = tmp_path / "labels"
    opts = ["--exports", str(labels / "exports"), "--gold", str(labels / "gold.jsonl")]
    return {"root": labels, "opts": opts}


def tasks_of(creds, project: str) -> dict[str, list]:
    ls = connect(creds)
    return sentence_tasks(ls, find_project(ls, project).id, include="id,data,annotators")


def test_push_is_idempotent_even_after_an_interrupted_import(labelstudio, sentences, tmp_path):
    creds = labelstudio.credentials
    partial = tmp_path / "partial.jsonl"  # what an import cut short had already created
    partial.write_text("".join(sentences.read_text().splitlines(keepends=True)[:3]))
    first = cli(["push", "--project", "idempotent", "--sentences", str(partial)], creds)
    assert first.exit_code == 0 and "3 new task(s) imported" in first.stdout, first.output
    again = cli(["push", "--project", "idempotent", "--sentences", str(sentences)], creds)
    assert again.exit_code == 0 and "5 new task(s) imported; 3 of 8" in again.stdout
    third = cli(["push", "--project", "idempotent", "--sentences", str(sentences)], creds)
    assert "0 new task(s) imported; 8 of 8" in third.stdout
    tasks = tasks_of(creds, "idempotent")
    assert len(tasks) == 8 and all(len(t) == 1 for t in tasks.values())
    data = tasks["d0-s3"][0].data  # imported by the second push, from the whole file
    assert data["doc_id"] == "d0" and data["index"] == 3 and data["text"] == TINY[9][0]
    assert data["context"] == f"{TINY[3][0]} {TINY[6][0]} »{TINY[9][0]}«"
    ls = connect(creds)
    assert find_project(ls, "idempotent").label_config.strip() == (
        (Path(__file__).parents[1] / "labels" / "label_config.xml").read_text().strip()
    )


def test_a_second_writer_into_a_project_is_refused_while_a_push_runs(
    labelstudio, sentences, tmp_path, monkeypatch
):
    creds = labelstudio.credentials
    monkeypatch.setenv("LABEL_STUDIO_URL", creds.url)  # for the paused child process
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", creds.token)
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / "home"))
    push = ["push", "--project", "raced", "--sentences", str(sentences)]
    first, go = start_paused(  # has read the project (no task yet), about to import all 8
        tmp_path, "stancelab.annotation.client:import_in_chunks", ["stancelab.cli", "label", *push]
    )
    try:
        second = cli(push, creds)
        suggest = ["suggest", "--project", "raced", "--sentences", str(sentences)]
        suggested = cli([*suggest, "--strategy", "random", "--k", "2"], creds)
        other = cli(["push", "--project", "raced-other", "--sentences", str(sentences)], creds)
    finally:
        go.write_text("go")
    assert first.wait(timeout=120) == 0, first.stderr.read()
    for refused in (second, suggested):
        message = one_line_error(refused)
        assert "another stancelab label push/record/suggest/review is writing into" in message
        assert "'raced'" in message and creds.token not in message
    assert other.exit_code == 0, other.output  # another project is not held up
    tasks = tasks_of(creds, "raced")
    assert len(tasks) == 8 and all(len(t) == 1 for t in tasks.values())
    again = cli(push, creds)  # the lock went with the first push
    assert "0 new task(s) imported; 8 of 8" in again.stdout, again.output


def test_push_with_model_and_with_predictions_file(
    labelstudio, sentences, tmp_path, tiny_texts, tiny_labels, labels_dir
):
    creds = labelstudio.credentials
    model_dir = tmp_path / "model"
    model = BaselineModel(BaselineParams(inner_folds=3), seed=1).fit(tiny_texts, tiny_labels)
    model.save(model_dir)
    args = ["push", "--project", "pre-annotated", "--sentences", str(sentences)]
    done = cli([*args, "--model", str(model_dir)], creds)
    assert done.exit_code == 0 and "8 with new tasks, 0 added" in done.stdout, done.output
    again = cli([*args, "--model", str(model_dir)], creds)
    assert "0 with new tasks, 0 added" in again.stdout  # no second prediction per model

    rows = [json.loads(line) for line in sentences.read_text().splitlines()]
    preds = tmp_path / "predictions.jsonl"
    lines = [
        {
            "id": r["id"],
            "text": r["text"],
            "labels": ["denial"],
            "scores": {name: 0.5 for name in LABELS},
            "model_version": "file-v1",
        }
        for r in rows[:5]
    ]
    lines.append({"line": 6, "id": rows[5]["id"], "error": "text is empty"})
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    from_file = cli([*args, "--predictions", str(preds)], creds)
    assert from_file.exit_code == 0, from_file.output
    # the file's model is named, as --model's is (every row of a predict output records it)
    assert "pre-annotations (file-v1): 0 with new tasks, 5 added" in from_file.stdout
    assert "skipped 1 prediction row(s) with error" in from_file.stderr
    # a second file: its file-v1 rows are there already, only the file-v2 one is pushed, and
    # only the models of the predictions pushed are named (it said "file-v1, file-v2")
    lines[5] = {
        **lines[0],
        "id": rows[5]["id"],
        "text": rows[5]["text"],
        "model_version": "file-v2",
    }
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    second = cli([*args, "--predictions", str(preds)], creds)
    assert "pre-annotations (file-v2): 0 with new tasks, 1 added" in second.stdout, second.output

    pulled = cli(["pull", "--project", "pre-annotated", *labels_dir["opts"]], creds)
    assert pulled.exit_code == 0, pulled.output
    (stored,) = list_exports(labels_dir["root"] / "exports")
    export = json.loads(stored.path.read_text())
    assert len(export) == 8
    loaded = BaselineModel.load(model_dir)
    for task in export:
        by_version = {p["model_version"]: p for p in task["predictions"]}
        (version,) = [v for v in by_version if v.startswith("baseline-")]
        item = by_version[version]["result"][0]
        assert item["value"]["choices"] == list(loaded.predict(task["data"]["text"])[0])
        assert list(item["scores"]) == list(LABELS) and 0 <= by_version[version]["score"] <= 1
        if task["data"]["id"] in {r["id"] for r in rows[:5]}:
            assert by_version["file-v1"]["result"][0]["value"]["choices"] == ["denial"]
        else:
            assert "file-v1" not in by_version
        assert ("file-v2" in by_version) == (task["data"]["id"] == rows[5]["id"])


def test_a_predict_rows_meta_is_shown_on_its_task_and_never_rewritten(
    labelstudio, tmp_path, tiny_texts, tiny_labels, labels_dir
):
    creds = labelstudio.credentials
    model_dir = tmp_path / "model"
    BaselineModel(BaselineParams(inner_folds=3), seed=1).fit(tiny_texts, tiny_labels).save(
        model_dir
    )
    records = tmp_path / "records.jsonl"
    many = {f"field{i}": i for i in range(30)}
    rows = [
        {"id": "m1", "text": TINY[0][0], "source": "Dawn", "date": "2026-10-12"},
        {"id": "m2", "text": TINY[3][0], "desk": {"outlet": "Dawn"}, "note": "x\n" * 200, **many},
        {"id": "m3", "text": TINY[6][0]},
    ]
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    predict = ["predict", "--model", str(model_dir), "--input", str(records), "--output", str(out)]
    done = runner.invoke(app, [*predict, "--no-progress"])
    assert done.exit_code == 0, done.output
    push = ["push", "--project", "with-meta", "--sentences", str(out), "--predictions", str(out)]
    pushed = cli(push, creds)
    assert pushed.exit_code == 0 and "3 new task(s) imported" in pushed.stdout, pushed.output
    tasks = tasks_of(creds, "with-meta")
    first = tasks["m1"][0].data
    assert first.get("meta") == {"source": "Dawn", "date": "2026-10-12"}
    assert first["meta_line"] == "source: Dawn · date: 2026-10-12"
    line = tasks["m2"][0].data["meta_line"]  # one short line, whatever the record holds
    assert line.startswith('desk: {"outlet": "Dawn"} · note: x x x') and "x..." in line
    assert line.endswith(" more") and len(line) <= 160, line
    assert len(tasks["m2"][0].data["meta"]) == 32  # all of it, as given
    assert set(tasks["m3"][0].data) == {"text", "id", "doc_id", "index", "context"}

    changed = tmp_path / "changed.jsonl"  # the same sentences, their records since edited
    changed.write_text(out.read_text().replace("2026-10-12", "2026-10-13"))
    again = cli([*push[:4], str(changed)], creds)
    assert "0 new task(s) imported; 3 of 3" in again.stdout, again.output
    assert "1 task(s) already in the project keep the meta they were pushed with" in again.stderr
    assert "(first: sentence m1)" in again.stderr
    suggest = ["suggest", "--project", "with-meta", "--sentences", str(changed), "--k", "3"]
    assert cli([*suggest, "--strategy", "random"], creds).exit_code == 0
    after = tasks_of(creds, "with-meta")
    assert all(len(t) == 1 for t in after.values()) and after["m1"][0].data["rank"] >= 1
    assert after["m1"][0].data["meta_line"] == "source: Dawn · date: 2026-10-12"  # kept

    annotations = tmp_path / "ann.jsonl"
    annotations.write_text('{"id": "m1", "labels": ["threat"]}\n{"id": "m3", "labels": []}\n')
    recorded = cli(["record", str(annotations), "--annotator", "a@team.org", *push[1:3]], creds)
    assert recorded.exit_code == 0, recorded.output
    pulled = cli(["pull", "--project", "with-meta", *labels_dir["opts"]], creds)
    assert pulled.exit_code == 0, pulled.output
    (stored,) = list_exports(labels_dir["root"] / "exports")
    export = json.loads(stored.path.read_text())
    assert {t["data"]["id"]: t["data"].get("meta_line") for t in export}["m1"] == first["meta_line"]
    for task in export:  # gold is the same as from the tasks without their meta
        task["data"] = {k: v for k, v in task["data"].items() if k not in ("meta", "meta_line")}
    bare = derive([(stored.path.name, parse_export(json.dumps(export), stored.path.name))])
    write_jsonl(tmp_path / "bare.jsonl", bare.rows)
    gold = labels_dir["root"] / "gold.jsonl"
    assert gold.read_bytes() == (tmp_path / "bare.jsonl").read_bytes()
    assert [json.loads(x)["id"] for x in gold.read_text().splitlines()] == ["m1", "m3"]

    ls = connect(creds)  # a project made with the interface before meta_line
    old = "".join(x for x in label_config().splitlines(True) if "$meta_line" not in x)
    ls.projects.create(title="old-interface", label_config=old)
    into_old = cli(["push", "--project", "old-interface", "--sentences", str(out)], creds)
    assert into_old.exit_code == 0 and "3 new task(s) imported" in into_old.stdout
    assert "this project's labelling interface does not show it" in into_old.stderr
    assert tasks_of(creds, "old-interface")["m1"][0].data["meta"] == first["meta"]


def test_annotators_skips_zero_choices_adjudication_and_agreement(
    labelstudio, sentences, tmp_path, labels_dir
):
    creds = labelstudio.credentials
    assert (
        cli(["push", "--project", "annotated", "--sentences", str(sentences)], creds).exit_code == 0
    )
    votes = {
        "a@team.org": {
            "d0-s0": ["threat"],
            "d0-s1": [],
            "d0-s2": ["accusation"],
            "d0-s3": ["denial"],
        },
        "b@team.org": {"d0-s0": ["threat"], "d0-s2": ["accusation", "denial"], "d0-s3": ["denial"]},
        "adjudicator@team.org": {"d0-s2": ["accusation"]},
    }
    for who, rows in votes.items():
        path = tmp_path / f"{who}.jsonl"
        path.write_text("".join(json.dumps({"id": k, "labels": v}) + "\n" for k, v in rows.items()))
        done = cli(["record", str(path), "--annotator", who, "--project", "annotated"], creds)
        assert done.exit_code == 0 and f"{len(rows)} annotation(s) recorded" in done.stdout
    again = cli(
        [
            "record",
            str(tmp_path / "a@team.org.jsonl"),
            "--annotator",
            "a@team.org",
            "--project",
            "annotated",
        ],
        creds,
    )
    assert "0 annotation(s) recorded, 4 sentence(s) already annotated" in again.stdout
    ls = connect(creds)
    user = next(u for u in ls.users.list() if u.email == "a@team.org")
    skipped_task = tasks_of(creds, "annotated")["d1-s4"][0].id
    ls.annotations.create(id=skipped_task, result=[], was_cancelled=True, completed_by=user.id)

    pulled = cli(["pull", "--project", "annotated", *labels_dir["opts"]], creds)
    assert pulled.exit_code == 0, pulled.output
    (stored,) = list_exports(labels_dir["root"] / "exports")
    export = {t["data"]["id"]: t for t in json.loads(stored.path.read_text())}
    (skip,) = export["d1-s4"]["annotations"]  # the real export shape gold.py relies on
    assert skip["was_cancelled"] is True and skip["result"] == []
    assert skip["completed_by"]["email"] == "a@team.org"
    gold = {r["id"]: r for r in map(json.loads, (labels_dir["root"] / "gold.jsonl").open())}
    assert {k: v["labels"] for k, v in gold.items()} == {
        "d0-s0": ["threat"],
        "d0-s1": [],
        "d0-s2": ["accusation"],
        "d0-s3": ["denial"],
    }
    assert gold["d0-s2"]["provenance"]["adjudicated"] is True
    assert gold["d0-s0"]["provenance"]["annotators"] == ["a@team.org", "b@team.org"]
    report = json.loads((labels_dir["root"] / "agreement.json").read_text())
    denial = report["labels"]["denial"]
    assert (denial["units"], denial["pairable_values"]) == (3, 6)
    assert denial["positives"] == {"a@team.org": 1, "b@team.org": 2}
    assert denial["alpha"] == pytest.approx(4 / 9, abs=1e-4)  # 1 - (2/6) / (2*3*3/(6*5))
    assert report["sentences"]["skipped_only"] == 1 and report["sentences"]["adjudicated"] == 1


def test_a_pull_stores_the_server_project_and_snapshot_times_beside_the_export(
    labelstudio, sentences, tmp_path, labels_dir
):
    creds = labelstudio.credentials
    cli(["push", "--project", "recorded", "--sentences", str(sentences)], creds)
    pulled = cli(["pull", "--project", "recorded", *labels_dir["opts"]], creds)
    assert pulled.exit_code == 0 and "(+ .sha256, .pull)" in pulled.stdout, pulled.output
    (stored,) = list_exports(labels_dir["root"] / "exports")
    project = find_project(connect(creds), "recorded")
    pull = stored.pull
    assert (pull.server, pull.project_id, pull.project_title) == (creds.url, project.id, "recorded")
    assert pull.project_created == project.created_at.isoformat()
    created, finished = map(datetime.fromisoformat, (pull.snapshot_created, pull.snapshot_finished))
    assert created.utcoffset() == timedelta(0) and created <= finished
    record = stored.path.with_name(stored.path.name + ".pull")
    assert json.loads(record.read_text())["whole_project"] is True
    assert not record.stat().st_mode & 0o222  # as immutable as the export
    again = tmp_path / "downloaded.json"  # the same export, brought in as a file
    again.write_text(json.dumps(json.loads(stored.path.read_bytes()), indent=2))
    assert cli(["import", str(again), *labels_dir["opts"]], creds).exit_code == 0
    # (the two exports' order depends on the times in their names: not asserted)
    exports = list_exports(labels_dir["root"] / "exports")
    assert sorted((e.path == stored.path, e.pull is None) for e in exports) == [
        (False, True),  # the imported copy: no record
        (True, False),  # the pull: its record
    ]
    record.chmod(0o644)
    record.write_text(record.read_text().replace(f'"snapshot_id": {pull.snapshot_id}', '"x": 1'))
    failed = one_line_error(cli(["gold", *labels_dir["opts"]], creds))
    assert f"{record}: not the pull record of {stored.path.name}" in failed


def test_an_annotation_deleted_in_label_studio_leaves_gold_at_the_next_pull(
    labelstudio, sentences, tmp_path, labels_dir
):
    creds = labelstudio.credentials
    cli(["push", "--project", "deleting", "--sentences", str(sentences)], creds)
    rows = {"d0-s0": ["threat"], "d0-s1": ["denial"], "d0-s2": ["accusation"]}
    for who in ("a@team.org", "b@team.org"):
        path = tmp_path / f"{who}.jsonl"
        path.write_text("".join(json.dumps({"id": k, "labels": v}) + "\n" for k, v in rows.items()))
        args = ["record", str(path), "--annotator", who, "--project", "deleting"]
        assert cli(args, creds).exit_code == 0
    pull = ["pull", "--project", "deleting", *labels_dir["opts"]]
    assert cli(pull, creds).exit_code == 0
    exports, gold_path = labels_dir["root"] / "exports", labels_dir["root"] / "gold.jsonl"
    (first,) = list_exports(exports)

    ls = connect(creds)
    tasks = tasks_of(creds, "deleting")
    anns = {
        (sid, a.completed_by): a for sid in rows for a in ls.annotations.list(id=tasks[sid][0].id)
    }
    users = {u.email: u.id for u in ls.users.list()}
    ls.annotations.delete(anns["d0-s0", users["a@team.org"]].id)  # a wrong annotation
    ls.tasks.delete(str(tasks["d0-s1"][0].id))  # a task removed with both its annotations
    changed = [{**item, "value": {"choices": ["threat", "denial"]}}  # b@x changes, keeps the id
               for item in anns["d0-s0", users["b@team.org"]].result]  # fmt: skip
    ls.annotations.update(anns["d0-s0", users["b@team.org"]].id, result=changed)
    second = cli(pull, creds)
    assert second.exit_code == 0, second.output
    assert "3 annotation(s) no longer counted, 0 still counted" in second.stdout

    def gold() -> dict:
        return {r["id"]: r for r in map(json.loads, gold_path.open())}

    assert {k: (v["labels"], v["provenance"]["annotators"]) for k, v in gold().items()} == {
        "d0-s0": (["threat", "denial"], ["b@team.org"]),
        "d0-s2": (["accusation"], ["a@team.org", "b@team.org"]),
    }
    report = json.loads((labels_dir["root"] / "agreement.json").read_text())
    assert report["deleted_in_label_studio"] == {"dropped": 3, "still_counted": 0}
    assert "3 annotation(s) no longer counted" in (labels_dir["root"] / "agreement.md").read_text()
    rebuilt = cli(["gold", *labels_dir["opts"]], creds)  # the stored files alone show it
    assert "3 annotation(s) no longer counted" in rebuilt.stdout and "d0-s1" not in gold()

    before = tree_snapshot(exports)
    old = tmp_path / "downloaded-from-the-ui.json"  # the first export, without a pull record
    old.write_text(json.dumps(json.loads(first.path.read_bytes()), indent=2))
    imported = cli(["import", str(old), *labels_dir["opts"]], creds)
    assert "0 annotation(s) no longer counted, 3 still counted" in imported.stdout
    assert gold()["d0-s1"]["provenance"]["annotators"] == ["a@team.org", "b@team.org"]
    assert "d0-s0" not in gold()  # a@x's deleted threat is back: threat, and a tie on denial
    after = tree_snapshot(exports)
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 2


def test_an_export_downloaded_from_the_ui_counts_each_annotator_once(
    labelstudio, sentences, tmp_path, labels_dir
):
    creds = labelstudio.credentials
    cli(["push", "--project", "ui-export", "--sentences", str(sentences)], creds)
    rows = {"d0-s0": ["threat"], "d0-s1": []}
    for who in ("a@team.org", "b@team.org"):
        path = tmp_path / f"{who}.jsonl"
        path.write_text("".join(json.dumps({"id": k, "labels": v}) + "\n" for k, v in rows.items()))
        args = ["record", str(path), "--annotator", who, "--project", "ui-export"]
        assert cli(args, creds).exit_code == 0
    ls = connect(creds)
    project = find_project(ls, "ui-export")
    ui = tmp_path / "downloaded-from-the-ui.json"  # Export > JSON in the browser: user ids only
    ui.write_bytes(b"".join(ls.projects.exports.download_sync(project.id, export_type="JSON")))
    assert {
        type(a["completed_by"]) for t in json.loads(ui.read_bytes()) for a in t["annotations"]
    } == {int}
    a_id = next(u.id for u in ls.users.list() if u.email == "a@team.org")
    task_id = tasks_of(creds, "ui-export")["d0-s0"][0].id
    (mine,) = [a for a in ls.annotations.list(id=task_id) if a.completed_by == a_id]
    ls.annotations.update(mine.id, result=[])  # a@x changes their mind: no threat after all
    assert cli(["pull", "--project", "ui-export", *labels_dir["opts"]], creds).exit_code == 0
    imported = cli(["import", str(ui), *labels_dir["opts"]], creds)
    assert imported.exit_code == 0, imported.output
    gold = {r["id"]: r for r in map(json.loads, (labels_dir["root"] / "gold.jsonl").open())}
    assert "d0-s0" not in gold  # a@x's latest (none) against b@x's threat: a tie, not threat
    assert gold["d0-s1"]["provenance"]["annotators"] == ["a@team.org", "b@team.org"]
    report = json.loads((labels_dir["root"] / "agreement.json").read_text())
    assert list(report["annotators"]) == ["a@team.org", "b@team.org"]
    assert report["ties"][0]["votes"] == {"a@team.org": [], "b@team.org": ["threat"]}


def test_bad_annotation_files_are_rejected_before_any_write(labelstudio, sentences, tmp_path):
    creds = labelstudio.credentials
    cli(["push", "--project", "record-checks", "--sentences", str(sentences)], creds)
    path = tmp_path / "ann.jsonl"
    path.write_text('{"id": "d0-s0", "labels": ["threat"]}\n{"id": "d0-s1", "labels": ["thret"]}\n')
    args = ["record", str(path), "--annotator", "c@team.org", "--project", "record-checks"]
    assert "ann.jsonl:2" in one_line_error(cli(args, creds))
    path.write_text('{"id": "d0-s0", "labels": ["threat"]}\n{"id": "nope", "labels": []}\n')
    assert "not tasks of project" in one_line_error(cli(args, creds))
    assert all(not t[0].annotators for t in tasks_of(creds, "record-checks").values())


def test_unknown_label_is_stored_by_the_server_but_rejected_on_pull(
    labelstudio, sentences, labels_dir
):
    creds = labelstudio.credentials
    cli(["push", "--project", "unknown-label", "--sentences", str(sentences)], creds)
    assert cli(["pull", "--project", "unknown-label", *labels_dir["opts"]], creds).exit_code == 0
    before = tree_snapshot(labels_dir["root"])
    task_id = tasks_of(creds, "unknown-label")["d0-s1"][0].id
    bogus = [
        {
            "from_name": "labels",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["threat", "sarcasm"]},
        }
    ]
    stored = connect(creds).annotations.create(id=task_id, result=bogus)
    message = one_line_error(
        cli(["pull", "--project", "unknown-label", *labels_dir["opts"]], creds)
    )
    assert f"task {task_id}" in message and f"annotation {stored.id}" in message
    assert "'sarcasm'" in message
    assert tree_snapshot(labels_dir["root"]) == before


def test_server_down_wrong_token_missing_project_leave_files_alone(
    labelstudio, sentences, tmp_path, labels_dir
):
    creds = labelstudio.credentials
    cli(["push", "--project", "errors", "--sentences", str(sentences)], creds)
    assert cli(["pull", "--project", "errors", *labels_dir["opts"]], creds).exit_code == 0
    ann = tmp_path / "ann.jsonl"
    ann.write_text('{"id": "d0-s0", "labels": []}\n')
    commands = [
        ["push", "--project", "errors", "--sentences", str(sentences)],
        ["pull", "--project", "errors", *labels_dir["opts"]],
        ["record", str(ann), "--annotator", "d@team.org", "--project", "errors"],
    ]
    before = tree_snapshot(tmp_path)
    down = f"http://127.0.0.1:{free_port()}"
    wrong = "wrong-token-0123456789"
    for args in commands:
        assert "cannot reach Label Studio" in one_line_error(
            cli(args, creds, LABEL_STUDIO_URL=down)
        )
        refused = one_line_error(cli(args, creds, LABEL_STUDIO_API_KEY=wrong))
        assert "refused the API token (401)" in refused and wrong not in refused
    missing = one_line_error(
        cli(["pull", "--project", "no-such-project", *labels_dir["opts"]], creds)
    )
    assert "no project titled 'no-such-project'" in missing
    assert tree_snapshot(tmp_path) == before
    assert not tasks_of(creds, "errors")["d0-s0"][0].annotators


def test_a_mistyped_url_or_token_is_one_line_that_never_shows_the_token(
    labelstudio, sentences, tmp_path, labels_dir
):
    creds = labelstudio.credentials
    ann = tmp_path / "ann.jsonl"
    ann.write_text('{"id": "d0-s0", "labels": []}\n')
    commands = [
        ["push", "--project", "mistyped", "--sentences", str(sentences)],
        ["pull", "--project", "mistyped", *labels_dir["opts"]],
        ["record", str(ann), "--annotator", "d@team.org", "--project", "mistyped"],
    ]
    port = creds.url.rsplit(":", 1)[1]
    urls = {  # a typo in the port; no scheme
        f"{creds.url}l": f"is not a valid URL (Invalid port: '{port}l')",
        f"127.0.0.1:{port}": "is not a valid URL; expected http://HOST:PORT",
    }
    tokens = {  # the server is up: these must not read as "cannot reach"
        creds.token + "\n": "malformed: it holds white space or a line break",
        creds.token[:-1] + "\u00f6": "malformed: it holds a non-ASCII character",
    }
    before = tree_snapshot(tmp_path)
    for args in commands:
        for url, expected in urls.items():
            message = one_line_error(cli(args, creds, LABEL_STUDIO_URL=url))
            assert f"the Label Studio URL {url!r}" in message and expected in message
        for token, expected in tokens.items():
            message = one_line_error(cli(args, creds, LABEL_STUDIO_API_KEY=token))
            assert expected in message and creds.token[:-1] not in message
    assert tree_snapshot(tmp_path) == before
    with pytest.raises(ServerError, match="not a valid URL"):  # the Python API too
        connect(type(creds)(f"{creds.url}l", creds.token))


def test_serve_command_stores_credentials_for_the_other_commands(labelstudio, sentences, tmp_path):
    home = tmp_path / "home"  # a state dir of its own, seeded with the session's template
    shutil.copytree(labelstudio.template, home / f"labelstudio-template-{LS_VERSION}")
    data = tmp_path / "data"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "STANCELAB_HOME": str(home),
    }
    cmd = [sys.executable, "-m", "stancelab.cli", "label", "serve", "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [proc.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("Label Studio is up at http://127.0.0.1:"), banner
        url = banner[0].split()[5]
        stored = json.loads((home / "labelstudio.json").read_text())
        assert stored["url"] == url and (home / "labelstudio.json").stat().st_mode & 0o777 == 0o600
        assert (data / ADMIN_FILE).stat().st_mode & 0o777 == 0o600
        assert httpx.get(f"{url}/health").json() == {"status": "UP"}
        pushed = runner.invoke(
            app,
            ["label", "push", "--project", "served", "--sentences", str(sentences)],
            env={
                "STANCELAB_HOME": str(home),
                "LABEL_STUDIO_URL": None,
                "LABEL_STUDIO_API_KEY": None,
            },
        )
        assert pushed.exit_code == 0 and "8 new task(s) imported" in pushed.stdout, pushed.output
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    token = stored["token"]
    assert token not in "".join(banner) + out + err + (data / "server.log").read_text()
    assert proc.returncode == 143  # SIGTERM: stopped the server, then exited
    with pytest.raises(httpx.TransportError):  # nothing listens on its port any more
        httpx.get(f"{url}/health", timeout=2)


def test_a_second_server_on_a_running_data_dir_is_refused(labelstudio):
    second = LabelStudioServer(labelstudio.data_dir, template=labelstudio.template)
    with pytest.raises(ServerError, match="already runs on"):
        second.start()
    assert second.process is None
    assert httpx.get(f"{labelstudio.url}/health").json() == {"status": "UP"}


def test_a_restarted_server_keeps_its_url_which_pull_records_name(labelstudio, tmp_path):
    data = tmp_path / "data"  # a new port each start would be another project to pull records
    with LabelStudioServer(data, template=labelstudio.template, log=lambda m: None) as first:
        url = first.url
    with LabelStudioServer(data, template=labelstudio.template, log=lambda m: None) as again:
        assert again.url == url
        assert httpx.get(f"{url}/health").json() == {"status": "UP"}


def test_a_port_whose_server_just_stopped_is_not_busy(labelstudio, tmp_path):
    # what a server that served a request and stopped leaves on its port: TIME_WAIT
    listener = socket.create_server(("127.0.0.1", 0))  # SO_REUSEADDR, as Label Studio's own
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first ...
    assert client.recv(1) == b""  # ... the client sees it and closes too
    client.close()
    listener.close()
    server = LabelStudioServer(tmp_path / "data", port=port, template=labelstudio.template)
    with server:
        assert server.url == f"http://127.0.0.1:{port}"
