"""Gold labels from Label Studio exports, the labelling config, tasks and credentials.

No server here: exports are hand-written in the shape a real full-JSON export has (the
server tests in test_labelstudio.py check that shape against a real server).
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import tree_snapshot
from typer.testing import CliRunner

from stancelab.annotation.agreement import label_agreement
from stancelab.annotation.credentials import (
    Credentials,
    ServerError,
    load_credentials,
    save_credentials,
)
from stancelab.annotation.exports import (
    PullRecord,
    list_exports,
    new_export_path,
    pull_path,
    recover,
    store_export,
)
from stancelab.annotation.gold import derive, update_gold
from stancelab.annotation.interface import CONFIG_PATH, label_config
from stancelab.annotation.tasks import (
    PreAnnotation,
    build_tasks,
    contexts,
    meta_notes,
    model_versions,
    prediction_payload,
    read_predictions,
    read_sentences,
)
from stancelab.annotation.votes import ADJUDICATOR_PREFIX, parse_export
from stancelab.cli import app
from stancelab.data.labelled import load_labelled
from stancelab.errors import InputError
from stancelab.files import checksum_path
from stancelab.labels import LABELS, SCHEME

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def ann(
    aid: int,
    who: str,
    labels: list[str] | None,
    *,
    cancelled: bool = False,
    updated: str = "2026-01-01T00:00:00Z",
    from_name: str = "labels",
) -> dict:
    result = (
        []
        if labels is None
        else [
            {
                "from_name": from_name,
                "to_name": "text",
                "type": "choices",
                "value": {"choices": labels},
            }
        ]
    )
    user = {"id": abs(hash(who)) % 1000, "email": who, "first_name": "", "last_name": ""}
    return {
        "id": aid,
        "completed_by": user,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": updated,
        "updated_at": updated,
        "lead_time": 3.1,
        "task": 0,
        "project": 1,
    }


def task(tid: int, sid: str, *annotations: dict, text: str | None = None) -> dict:
    return {
        "id": tid,
        "data": {"text": text or f"Sentence {sid}.", "id": sid, "doc_id": "d1"},
        "annotations": list(annotations),
        "predictions": [],
        "drafts": [],
    }


def dumps(tasks: list[dict]) -> bytes:
    return json.dumps(tasks).encode("utf-8")


def gold_of(*tasks: dict):
    return derive([("e.json", parse_export(dumps(list(tasks)), "e.json"))])


# -- the labelling interface ---------------------------------------------------------------


def test_committed_label_config_is_the_generated_one():
    assert (REPO / CONFIG_PATH).read_text(encoding="utf-8") == label_config()


def test_label_config_offers_every_label_with_hotkey_and_hint():
    from label_studio_sdk.label_interface import LabelInterface

    root = ET.fromstring(label_config())
    choices = root.find(".//Choices")
    assert choices.get("name") == "labels" and choices.get("choice") == "multiple"
    got = [(c.get("value"), c.get("hotkey"), c.get("hint")) for c in choices.findall("Choice")]
    assert got == [(lab.name, lab.hotkey, lab.description) for lab in SCHEME]
    texts = {t.get("name"): t for t in root.iter("Text")}
    assert texts["text"].get("value") == "$text"
    assert texts["context"].get("selectionEnabled") == "false"  # read-only context
    interface = LabelInterface(label_config())
    item = {"from_name": "labels", "to_name": "text", "type": "choices"}
    assert interface.validate_annotation({"result": [{**item, "value": {"choices": list(LABELS)}}]})
    assert not interface.validate_annotation({"result": [{**item, "value": {"choices": ["x"]}}]})


# -- resolution ----------------------------------------------------------------------------


def test_zero_choices_mean_none_and_a_skip_is_not_a_label():
    result = gold_of(
        task(1, "s1", ann(1, "a@x", None)),  # submitted with nothing selected
        task(2, "s2", ann(2, "a@x", None, cancelled=True)),  # skipped
        task(3, "s3"),  # not annotated
    )
    assert [(r["id"], r["labels"]) for r in result.rows] == [("s1", [])]
    assert result.rows[0]["provenance"] == {
        "export": "e.json",
        "annotators": ["a@x"],
        "adjudicated": False,
        "resolution": "single",
    }
    assert result.sentences["s2"].skipped_by == {"a@x"} and not result.ties


def test_majority_per_label_and_ties_listed_not_guessed():
    result = gold_of(
        task(
            1,
            "s1",
            ann(1, "a@x", ["threat"]),
            ann(2, "b@x", ["threat", "denial"]),
            ann(3, "c@x", ["threat"]),
        ),
        task(2, "s2", ann(4, "a@x", ["accusation"]), ann(5, "b@x", ["accusation", "denial"])),
        task(3, "s3", ann(6, "a@x", ["denial"]), ann(7, "b@x", ["denial"])),
    )
    rows = {r["id"]: r for r in result.rows}
    assert (
        rows["s1"]["labels"] == ["threat"] and rows["s1"]["provenance"]["resolution"] == "majority"
    )
    assert rows["s3"]["provenance"]["resolution"] == "unanimous"
    assert "s2" not in rows
    (tie,) = result.ties
    assert tie["id"] == "s2" and tie["tied_labels"] == ["denial"]
    assert tie["votes"] == {"a@x": ["accusation"], "b@x": ["accusation", "denial"]}


def test_an_adjudicator_decides_and_two_disagreeing_adjudicators_are_a_tie():
    judge, judge2 = f"{ADJUDICATOR_PREFIX}@x", f"{ADJUDICATOR_PREFIX}.lee@x"
    result = gold_of(
        task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "b@x", []), ann(3, judge, ["denial"])),
        task(2, "s2", ann(4, judge, ["threat"]), ann(5, judge2, [])),
    )
    (row,) = result.rows
    assert row["labels"] == ["denial"] and row["provenance"]["adjudicated"] is True
    assert result.ties[0]["reason"] == "adjudicators disagree"


def test_one_vote_per_annotator_the_latest():
    result = gold_of(
        task(
            1,
            "s1",
            ann(1, "a@x", ["threat"], updated="2026-01-02T00:00:00Z"),
            ann(2, "a@x", ["denial"], updated="2026-01-01T00:00:00Z"),
        ),
    )
    assert result.rows[0]["labels"] == ["threat"] and result.sentences["s1"].superseded == 1


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        (
            [task(7, "s1", ann(42, "a@x", ["threat", "bogus"]))],
            ["task 7", "sentence s1", "annotation 42", "unknown label", "'bogus'"],
        ),
        (
            [task(7, "s1", ann(42, "a@x", ["threat"], from_name="sentiment"))],
            ["task 7", "annotation 42", "from_name='sentiment'"],
        ),
        ([{"id": 9, "data": {"text": "No id."}, "annotations": []}], ["task 9", "sentence id"]),
        ([{"id": 9, "data": {"text": "x", "id": "s9"}, "label": "threat"}], ["task 9", "JSON_MIN"]),
        (  # a row of a real JSON_MIN export: the task's fields flattened, its id the task's
            [{"text": "x", "id": 9, "labels": "threat", "annotator": 2, "annotation_id": 5}],
            ["task 9", "a row of a JSON_MIN export", "export the project as full 'JSON'"],
        ),
        (  # one of an older Label Studio, without annotation_id; one of a zero-choice vote
            [{"text": "x", "id": 9, "labels": "threat", "annotator": 2, "lead_time": 3.5}],
            ["task 9", "a row of a JSON_MIN export", "export the project as full 'JSON'"],
        ),
        (  # a file of tasks to import, not an export (review: it was called JSON_MIN)
            [{"id": 9, "text": "x"}],
            ["task 9", "a task to import", "not an export", "export the project as full 'JSON'"],
        ),
        ([{"id": 9, "created_at": "2026-01-01"}], ["task 9", "not a task object with 'data'"]),
        (b'"annotation_id","annotator","id","labels","text"\n', ["not valid JSON", "full 'JSON'"]),
        ({"tasks": []}, ["expected a list of tasks"]),
    ],
)
def test_malformed_exports_are_errors_that_name_the_task(tasks, expected):
    with pytest.raises(InputError) as info:
        parse_export(tasks if isinstance(tasks, bytes) else dumps(tasks), "bad.json")
    message = str(info.value)
    assert message.startswith("bad.json") and "\n" not in message
    for part in expected:
        assert part in message


JAN = "2026-01-0{}T00:00:00.000000Z"  # the shape Label Studio writes


def test_votes_of_several_exports_combine_one_per_annotator_the_latest():
    old = parse_export(
        dumps(
            [
                task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "b@x", ["threat"])),
                task(2, "s2", ann(3, "a@x", ["denial"])),
            ]
        ),
        "old.json",
    )
    new = parse_export(  # a later pull of the same project: s1 gained a third annotator
        dumps(
            [
                task(
                    1,
                    "s1",
                    ann(1, "a@x", ["threat"]),
                    ann(2, "b@x", ["threat"]),
                    ann(7, "c@x", ["accusation"], updated=JAN.format(3)),
                ),
                task(2, "s2", ann(3, "a@x", ["denial"]), ann(4, "b@x", None, cancelled=True)),
                task(5, "s5", ann(5, "b@x", [])),
            ]
        ),
        "new.json",
    )
    result = derive([("old.json", old), ("new.json", new)])
    rows = {r["id"]: r for r in result.rows}
    assert rows["s1"]["labels"] == ["threat"]
    assert rows["s1"]["provenance"]["annotators"] == ["a@x", "b@x", "c@x"]
    assert rows["s1"]["provenance"]["export"] == "new.json"  # where its latest vote is
    assert rows["s2"]["labels"] == ["denial"] and rows["s2"]["provenance"]["export"] == "old.json"
    assert result.sentences["s2"].skipped_by == {"b@x"}
    assert rows["s5"]["labels"] == []
    assert result.sentences["s1"].superseded == 0  # one annotation seen twice is one vote
    edited = parse_export(  # a@x changed their mind, in a later annotation
        dumps([task(1, "s1", ann(9, "a@x", ["accusation"], updated=JAN.format(4)))]), "e.json"
    )
    result = derive([("new.json", new), ("e.json", edited)])
    assert result.sentences["s1"].votes["a@x"].labels == ("accusation",)
    assert result.sentences["s1"].superseded == 1
    assert result.rows[0]["labels"] == ["accusation"]  # a@x and c@x against b@x
    # Each later pull holds the edited annotation and the old one again: still one superseded
    again = parse_export(
        dumps(
            [
                task(
                    1,
                    "s1",
                    ann(1, "a@x", ["threat"]),
                    ann(9, "a@x", ["accusation"], updated=JAN.format(4)),
                    ann(7, "c@x", ["accusation"], updated=JAN.format(3)),
                )
            ]
        ),
        "again.json",
    )
    exports = [("new.json", new), ("e.json", edited), ("again.json", again)]
    assert derive(exports).sentences["s1"].superseded == 1
    assert derive([*exports, ("again2.json", again)]).sentences["s1"].superseded == 1


def test_reimporting_an_old_export_changes_nothing(tmp_path):
    exports, gold = tmp_path / "labels" / "exports", tmp_path / "labels" / "gold.jsonl"
    opts = ["--exports", str(exports), "--gold", str(gold)]
    first = [
        task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "b@x", ["threat"])),
        task(2, "s2", ann(3, "a@x", []), ann(4, "b@x", [])),
    ]
    later = [  # the same project, pulled after a third annotator's votes
        task(1, "s1", *first[0]["annotations"], ann(5, "c@x", [], updated=JAN.format(2))),
        task(2, "s2", *first[1]["annotations"], ann(6, "c@x", ["denial"], updated=JAN.format(2))),
    ]
    for name, tasks in (("first", first), ("later", later)):
        (tmp_path / f"{name}.json").write_bytes(dumps(tasks))
        done = runner.invoke(app, ["label", "import", str(tmp_path / f"{name}.json"), *opts])
        assert done.exit_code == 0, done.output
    derived = {p.name: p.read_bytes() for p in gold.parent.glob("*") if p.is_file()}
    again = tmp_path / "downloaded-again.json"  # the first export, downloaded from the UI again
    again.write_text(json.dumps(first, indent=2))
    done = runner.invoke(app, ["label", "import", str(again), *opts])
    assert done.exit_code == 0 and "stored" in done.stdout, done.output
    assert len(list_exports(exports)) == 3
    after = {p.name: p.read_bytes() for p in gold.parent.glob("*") if p.is_file()}
    assert after["gold.jsonl"] == derived["gold.jsonl"]  # c@x's votes are all still there
    rows = [json.loads(line) for line in gold.read_text().splitlines()]
    assert [r["provenance"]["annotators"] for r in rows] == [["a@x", "b@x", "c@x"]] * 2
    # the agreement report names the folder it was derived from, not the default one
    agreement = (gold.parent / "agreement.md").read_text()
    assert f"3 export(s) in `{exports}/`" in agreement and "in `labels/exports/`" not in agreement


def test_annotators_known_by_user_id_only_are_warned_of_until_a_pull_names_them(tmp_path):
    labels = tmp_path / "labels"
    opts = ["--exports", str(labels / "exports"), "--gold", str(labels / "gold.jsonl")]
    pulled = [  # as `label pull` has them: user objects with emails
        task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "adjudicator@x", [])),
        task(2, "s2", ann(3, "a@x", [])),
    ]
    uid = {"a@x": 2, "adjudicator@x": 4}
    for a in (a for t in pulled for a in t["annotations"]):
        a["completed_by"]["id"] = uid[a["completed_by"]["email"]]
    ui = json.loads(dumps(pulled))  # as Export > JSON in the browser has them: user ids
    for a in (a for t in ui for a in t["annotations"]):
        a["completed_by"] = a["completed_by"]["id"]
    (tmp_path / "ui.json").write_text(json.dumps(ui))
    (tmp_path / "pulled.json").write_bytes(dumps(pulled))
    done = runner.invoke(app, ["label", "import", str(tmp_path / "ui.json"), *opts])
    assert done.exit_code == 0, done.output
    assert done.stderr == (
        "warning: 2 annotator(s) known by user id only (user 2, user 4), as an "
        "export downloaded from the UI gives them: none counts as an adjudicator, and one id in "
        "exports of two servers is one annotator; `stancelab label pull` the project to have "
        "their emails\n"
    )
    done = runner.invoke(app, ["label", "import", str(tmp_path / "pulled.json"), *opts])
    assert done.exit_code == 0 and done.stderr == "", done.output
    rows = {r["id"]: r for r in map(json.loads, (labels / "gold.jsonl").open())}
    assert rows["s1"]["labels"] == [] and rows["s1"]["provenance"]["adjudicated"] is True
    assert rows["s1"]["provenance"]["annotators"] == ["a@x", "adjudicator@x"]


def test_a_review_vote_is_one_more_vote_not_the_only_one():
    main = parse_export(
        dumps([task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "b@x", ["threat"]))]), "main.json"
    )
    review = parse_export(  # `label review`'s project, pulled later: one reviewer
        dumps([task(90, "s1", ann(91, "r@x", [], updated=JAN.format(5)))]), "review.json"
    )
    (row,) = derive([("main.json", main), ("review.json", review)]).rows
    assert row["labels"] == ["threat"] and row["provenance"]["resolution"] == "majority"
    assert row["provenance"]["annotators"] == ["a@x", "b@x", "r@x"]
    decided = parse_export(  # only an adjudicator decides against the annotators
        dumps([task(90, "s1", ann(92, "adjudicator@x", [], updated=JAN.format(6)))]), "adj.json"
    )
    (row,) = derive([("main.json", main), ("review.json", review), ("adj.json", decided)]).rows
    assert row["labels"] == [] and row["provenance"]["resolution"] == "adjudicated"


PULL = PullRecord(
    "http://127.0.0.1:8080", 1, "2026-01-01T00:00:00+00:00", "proj", 7,
    "2026-01-05T00:00:00+00:00", "2026-01-05T00:00:01+00:00",
)  # fmt: skip


def test_an_annotation_a_later_pull_lacks_is_dropped_only_when_the_times_prove_it():
    old = [
        task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "b@x", ["threat"])),
        task(2, "s2", ann(3, "a@x", ["denial"]), ann(4, "b@x", None, cancelled=True)),
    ]
    new = [task(1, "s1", ann(2, "b@x", ["threat"])), task(2, "s2", ann(3, "a@x", ["denial"]))]
    first = PULL  # snapshot 7 ran on Jan 5; its annotations are from Jan 1
    later = replace(
        PULL, snapshot_id=8, snapshot_created=JAN.format(6), snapshot_finished=JAN.format(7)
    )

    def gold(pulls: dict, *exports: tuple[str, list]):
        result = derive([(n, parse_export(dumps(t), n)) for n, t in exports], pulls)
        return {k: sorted(v.votes) for k, v in result.sentences.items()}, result

    votes, result = gold({"old": first, "new": later}, ("old", old), ("new", new))
    assert votes == {"s1": ["b@x"], "s2": ["a@x"]} and not result.sentences["s2"].skipped_by
    assert result.deleted == {"dropped": 2, "still_counted": 0}  # a@x's vote and b@x's skip
    both = {"s1": ["a@x", "b@x"], "s2": ["a@x"]}
    for pulls in (
        {"old": first},  # the later export was imported: it cannot show a deletion
        {"new": later},  # the older one was (an export downloaded from the UI)
        {"old": first, "new": replace(later, project_created=JAN.format(3))},  # recreated
        {"old": first, "new": replace(later, server="http://127.0.0.1:9090")},  # another server
        {"old": first, "new": replace(later, snapshot_created="2026-01-05T00:00:00.5+00:00")},
        {"old": first, "new": replace(later, snapshot_id=6)},  # taken before the old one
    ):
        votes, result = gold(pulls, ("old", old), ("new", new))
        assert votes == both and result.deleted["dropped"] == 0, pulls
    changed = [
        task(1, "s1", ann(1, "a@x", ["threat"], updated=JAN.format(6)), *old[0]["annotations"][1:])
    ]
    votes, result = gold({"old": first, "new": later}, ("old", changed), ("new", new))
    assert votes["s1"] == ["a@x", "b@x"]  # not changed before the later snapshot began
    votes, result = gold(
        {"old": first, "new": later}, ("old", old), ("again", old), ("new", new)
    )  # an imported copy of the old export still holds them, and the report says so
    assert votes == both and result.deleted == {"dropped": 0, "still_counted": 2}


# -- agreement -----------------------------------------------------------------------------


def test_alpha_matches_a_hand_computation_and_reports_its_counts():
    # threat, coder a: 1 0 1 0, coder b: 1 0 0 0 -> coincidences o11=2, o00=4, o01=o10=1,
    # n=8, n1=3, n0=5: alpha = 1 - (2/8) / (2*3*5/(8*7)) = 8/15.
    pairs = [(["threat"], ["threat"]), ([], []), (["threat"], []), ([], [])]
    tasks = [
        task(i, f"s{i}", ann(10 * i, "a@x", a), ann(10 * i + 1, "b@x", b))
        for i, (a, b) in enumerate(pairs)
    ]
    tasks.append(task(9, "s9", ann(90, "a@x", ["threat"])))  # single annotator: not a unit
    result = gold_of(*tasks)
    row = label_agreement(list(result.sentences.values()), "threat")
    assert row["alpha"] == pytest.approx(8 / 15, abs=1e-4)
    assert (row["units"], row["pairable_values"], row["annotators"]) == (4, 8, 2)
    assert row["positives"] == {"a@x": 2, "b@x": 1} and row["observed_agreement"] == 0.75
    denial = label_agreement(list(result.sentences.values()), "denial")
    assert denial["alpha"] is None and "no variation" in denial["note"]
    alone = label_agreement([result.sentences["s9"]], "threat")
    assert alone["alpha"] is None and alone["units"] == 0


# -- the exports folder, the gold files, the commands --------------------------------------


def test_store_export_is_immutable_and_checksummed(tmp_path):
    first = new_export_path(tmp_path, "proj")
    store_export(first, b"[]")
    second = new_export_path(tmp_path, "proj")  # same second: a new name, never the same file
    assert second != first and not second.exists()
    store_export(second, b"[ ]")
    with pytest.raises(InputError, match="never overwritten"):
        store_export(first, b"[1]")
    assert [e.path for e in list_exports(tmp_path)] == [first, second]
    assert first.read_bytes() == b"[]" and not first.stat().st_mode & 0o222


def test_a_pull_record_is_stored_first_and_removed_when_its_export_never_came(tmp_path):
    path = store_export(new_export_path(tmp_path, "proj"), b"[]", PULL)
    (stored,) = list_exports(tmp_path)
    assert stored.pull == PULL and not pull_path(path).stat().st_mode & 0o222
    with pytest.raises(InputError, match="never overwritten"):  # a record is never replaced
        store_export(path, b"[1]", PULL)
    assert list_exports(tmp_path)[0].pull == PULL
    # a pull killed between the links: its record is still linked to its temporary file
    orphan, temporary = new_export_path(tmp_path, "proj"), tmp_path / ".export.ab12.pull.tmp"
    temporary.write_text(pull_path(path).read_text())
    os.link(temporary, pull_path(orphan))
    assert recover(tmp_path) == [
        f"removed {pull_path(orphan).name}, left by an import interrupted before its export",
        "removed 1 temporary file(s) of interrupted imports",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, checksum_path(path).name, pull_path(path).name]
    )


def test_a_pull_record_whose_export_was_deleted_by_hand_is_kept_and_reported(tmp_path):
    """No interrupted import left it (its temporary file would still be linked to it): the
    export was deleted by hand, and the record, the only account of that pull, was removed
    in silence by the next `label gold` as debris."""
    exports, gold = tmp_path / "exports", tmp_path / "gold.jsonl"
    update_gold(exports, gold, ("team", dumps([task(1, "s1", ann(1, "a@x", ["threat"]))])))
    path = store_export(
        new_export_path(exports, "proj"), dumps([task(2, "s2", ann(2, "b@x", []))]), PULL
    )
    record, checksum = pull_path(path).read_bytes(), checksum_path(path).read_bytes()
    path.unlink()  # by hand
    killed, temporary = new_export_path(exports, "late"), exports / ".export.cd34.pull.tmp"
    temporary.write_bytes(record)  # and the debris of a pull killed before its export's link
    os.link(temporary, pull_path(killed))
    done = runner.invoke(app, ["label", "gold", "--exports", str(exports), "--gold", str(gold)])
    assert done.exit_code == 0, done.output
    assert pull_path(path).is_file() and pull_path(path).read_bytes() == record
    assert checksum_path(path).read_bytes() == checksum
    assert not pull_path(killed).exists() and not temporary.exists()
    assert f"note: removed {pull_path(killed).name}, left by an import interrupted" in done.stderr
    assert (
        f"note: kept {pull_path(path).name}: its export {path.name} was deleted, not by an "
        "interrupted import; remove it by hand if the export was meant to go\n"
    ) in done.stderr
    assert load_labelled(gold).ids == ["s1"]


def test_import_then_gold_commands(tmp_path):
    exports, gold = tmp_path / "labels" / "exports", tmp_path / "labels" / "gold.jsonl"
    raw = tmp_path / "team.json"
    raw.write_bytes(
        dumps(
            [
                task(1, "s1", ann(1, "a@x", ["threat"]), ann(2, "b@x", ["threat"])),
                task(2, "s2", ann(3, "a@x", [])),
            ]
        )
    )
    opts = ["--exports", str(exports), "--gold", str(gold)]
    done = runner.invoke(app, ["label", "import", str(raw), *opts])
    assert done.exit_code == 0, done.output
    (stored,) = list_exports(exports)
    assert stored.path.read_bytes() == raw.read_bytes() and stored.path.name.startswith("team-")
    labelled = load_labelled(gold)  # the format every training command reads
    assert labelled.ids == ["s1", "s2"] and labelled.labels == [("threat",), ()]
    report = json.loads((gold.parent / "agreement.json").read_text())
    assert report["labels"]["threat"]["units"] == 1 and report["sentences"]["gold"] == 2
    assert "| threat |" in (gold.parent / "agreement.md").read_text()
    again = runner.invoke(app, ["label", "import", str(raw), *opts])
    assert again.exit_code == 0 and "identical to" in again.output
    assert len(list_exports(exports)) == 1
    assert runner.invoke(app, ["label", "gold", *opts]).exit_code == 0


def test_errors_leave_every_file_as_it_was(tmp_path):
    labels = tmp_path / "labels"
    exports, gold = labels / "exports", labels / "gold.jsonl"
    update_gold(exports, gold, ("ok", dumps([task(1, "s1", ann(1, "a@x", ["threat"]))])))
    before = tree_snapshot(labels)
    opts = ["--exports", str(exports), "--gold", str(gold)]
    bad = tmp_path / "bad.json"
    for content in (b"{not json", dumps([task(3, "s3", ann(8, "a@x", ["bogus"]))])):
        bad.write_bytes(content)
        done = runner.invoke(app, ["label", "import", str(bad), *opts])
        assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.stderr
        assert tree_snapshot(labels) == before
    assert "task 3" in done.stderr and "annotation 8" in done.stderr
    (stored,) = exports.glob("*.json")
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes().replace(b"threat", b"denial"))  # a hand edit
    before = tree_snapshot(labels)
    done = runner.invoke(app, ["label", "gold", *opts])
    assert done.exit_code == 1 and "checksum mismatch" in done.stderr
    assert tree_snapshot(labels) == before
    empty = runner.invoke(
        app,
        ["label", "gold", "--exports", str(tmp_path / "none"), "--gold", str(tmp_path / "g.jsonl")],
    )
    assert empty.exit_code == 1 and "no exports yet" in empty.stderr
    assert not (tmp_path / "g.jsonl").exists()


@pytest.mark.parametrize(
    "where",
    ["a stored export", "a new file in exports", "the imported file", "a folder", "under a file"],
)
def test_gold_is_refused_where_it_would_replace_an_input_or_cannot_be_written(tmp_path, where):
    labels = tmp_path / "labels"
    exports, kept = labels / "exports", labels / "gold.jsonl"
    update_gold(exports, kept, ("ok", dumps([task(1, "s1", ann(1, "a@x", []))])))
    raw = tmp_path / "team.json"
    raw.write_bytes(dumps([task(2, "s2", ann(2, "a@x", ["threat"]))]))
    (tmp_path / "folder").mkdir()
    gold = {
        "a stored export": next(exports.glob("*.json")),
        "a new file in exports": exports / "gold.jsonl",  # agreement.json there stops `gold`
        "the imported file": raw,
        "a folder": tmp_path / "folder",
        "under a file": raw / "gold.jsonl",
    }[where]
    commands = [["import", str(raw)]]
    if where != "the imported file":  # not an input of `label gold`
        commands.append(["gold"])
    before, raw_before = tree_snapshot(labels), raw.read_bytes()
    for command in commands:
        opts = ["--exports", str(exports), "--gold", str(gold)]
        done = runner.invoke(app, ["label", *command, *opts])
        assert done.exit_code == 1 and done.stderr.startswith("error: "), done.output
        assert done.stderr.count("\n") == 1, done.stderr
        assert tree_snapshot(labels) == before and raw.read_bytes() == raw_before
    again = runner.invoke(app, ["label", "gold", "--exports", str(exports), "--gold", str(kept)])
    assert again.exit_code == 0, again.output  # the exports folder still reads


@pytest.mark.parametrize("name", ["mine.jsonl", "agreement.md"])
def test_a_file_of_yours_is_never_replaced_by_the_gold_set_or_its_report(tmp_path, name):
    labels = tmp_path / "labels"
    exports, kept = labels / "exports", labels / "gold.jsonl"
    update_gold(exports, kept, ("ok", dumps([task(1, "s1", ann(1, "a@x", ["threat"]))])))
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.jsonl").write_text('{"text": "We will strike.", "labels": ["threat"]}\n')
    (data / "agreement.md").write_text("# Notes of the team\n")
    gold = data / ("mine.jsonl" if name == "mine.jsonl" else "gold.jsonl")
    raw = tmp_path / "team.json"
    raw.write_bytes(dumps([task(2, "s2", ann(2, "a@x", []))]))
    before = tree_snapshot(tmp_path)
    for command in (["gold"], ["import", str(raw)]):
        opts = ["--exports", str(exports), "--gold", str(gold)]
        done = runner.invoke(app, ["label", *command, *opts])
        assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.output
        assert done.stderr.startswith(f"error: {data / name}: exists and is not a ")
        assert tree_snapshot(tmp_path) == before
    again = runner.invoke(app, ["label", "gold", "--exports", str(exports), "--gold", str(kept)])
    assert again.exit_code == 0, again.output  # its own earlier output is replaced, as ever


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_exports_folder_that_is_a_file_is_refused_before_anything_is_stored(tmp_path, where):
    raw = tmp_path / "team.json"
    raw.write_bytes(dumps([task(1, "s1", ann(1, "a@x", ["threat"]))]))
    taken = tmp_path / "taken"
    taken.write_text("not a folder\n")
    exports = taken if where == "a file" else taken / "exports"
    before = tree_snapshot(tmp_path)
    opts = ["--exports", str(exports), "--gold", str(tmp_path / "gold.jsonl")]
    commands = [["import", str(raw)]] + ([["gold"]] if where == "a file" else [])
    # pull checks its paths before it asks the server: nothing listens at this URL
    commands.append(["pull", "--project", "anything"])
    env = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "token-123456"}
    for command in commands:
        done = runner.invoke(app, ["label", *command, *opts], env=env)
        assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.output
        assert done.stderr.startswith(f"error: {taken}: is a file"), done.stderr
        assert "--exports" in done.stderr
        assert tree_snapshot(tmp_path) == before


def test_an_error_in_an_imported_file_names_that_file_and_creates_nothing(tmp_path):
    bad = tmp_path / "from the team.json"
    bad.write_bytes(dumps([task(3, "s3", ann(8, "a@x", ["bogus"]))]))
    labels = tmp_path / "labels"
    opts = ["--exports", str(labels / "exports"), "--gold", str(labels / "gold.jsonl")]
    done = runner.invoke(app, ["label", "import", str(bad), *opts])
    assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.output
    assert done.stderr.startswith(f"error: {bad}: task 3 (sentence s3), annotation 8")
    assert not labels.exists()  # not even an empty exports folder
    good = tmp_path / "team.json"
    good.write_bytes(dumps([task(1, "s1", ann(1, "a@x", ["threat"]))]))
    assert runner.invoke(app, ["label", "import", str(good), *opts]).exit_code == 0
    (stored,) = list_exports(labels / "exports")  # the gold rows cite the stored name
    assert json.loads((labels / "gold.jsonl").read_text())["provenance"]["export"] == (
        stored.path.name
    )


def test_one_sentence_id_with_two_texts_in_two_exports_is_refused(tmp_path):
    labels = tmp_path / "labels"
    opts = ["--exports", str(labels / "exports"), "--gold", str(labels / "gold.jsonl")]
    ours = tmp_path / "ours.json"
    ours.write_bytes(dumps([task(1, "1", ann(1, "a@x", ["threat"]), text="We will strike.")]))
    assert runner.invoke(app, ["label", "import", str(ours), *opts]).exit_code == 0
    before = tree_snapshot(labels)
    theirs = tmp_path / "theirs.json"  # another team's corpus, its ids 1, 2, ... too
    votes = (ann(1, "p@y", []), ann(2, "q@y", []))
    theirs.write_bytes(dumps([task(1, "1", *votes, text="Talks resumed on Monday.")]))
    done = runner.invoke(app, ["label", "import", str(theirs), *opts])
    assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.output
    (stored,) = list_exports(labels / "exports")
    assert done.stderr.startswith(
        f"error: {theirs}: sentence 1 reads 'Talks resumed on Monday.' from character 1, but "
        f"'We will strike.' in {stored.path.name}; a sentence id must name one sentence"
    )
    assert tree_snapshot(labels) == before  # the threat was not outvoted by another sentence
    # the same sentence, wrapped at another place (its id, from stancelab corpus, hashes the
    # text on one line): one sentence, whose votes count together
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_bytes(dumps([task(1, "1", ann(3, "b@x", ["threat"]), text="We will\nstrike.")]))
    done = runner.invoke(app, ["label", "import", str(wrapped), *opts])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in (labels / "gold.jsonl").read_text().splitlines()]
    assert [r["provenance"]["annotators"] for r in rows] == [["a@x", "b@x"]]
    # two stored exports that part late: shown from where they part, and how to undo it
    late = "The minister said on Monday that the army will strike back at once."
    other = late.replace("at once", "if attacked")
    exports = [
        ("one.json", parse_export(dumps([task(1, "2", ann(1, "a@x", []), text=late)]), "one.json")),
        (
            "two.json",
            parse_export(dumps([task(1, "2", ann(2, "b@x", []), text=other)]), "two.json"),
        ),
    ]
    with pytest.raises(InputError) as refused:
        derive(exports)
    assert str(refused.value) == (
        "two.json: sentence 2 reads '...my will strike back if attacked.' from character 60, "
        "but '...my will strike back at once.' in one.json; both exports are stored: a "
        "sentence id must name one sentence in every export; remove the export that holds the "
        "wrong text from the exports folder, with its .sha256 and .pull files"
    )


# -- tasks and pre-annotations -------------------------------------------------------------


def test_tasks_carry_context_from_the_same_document_by_index():
    sentences = [{"id": f"a{i}", "doc_id": "A", "index": i, "text": f"A{i}."} for i in (3, 0, 1, 2)]
    sentences.append({"id": "b0", "doc_id": "B", "index": 0, "text": "B0."})
    ctx = contexts(sentences, k=2)
    assert (
        ctx["a2"] == "A0. A1. »A2.« A3." and ctx["a0"] == "»A0.« A1. A2." and ctx["b0"] == "»B0.«"
    )
    pred = PreAnnotation(("threat",), {"threat": 0.8, "denial": 0.1}, "m1")
    (t,) = build_tasks(sentences, sentences[:1], {"a3": pred})
    assert t["data"] == {
        "text": "A3.",
        "id": "a3",
        "doc_id": "A",
        "index": 3,
        "context": "A1. A2. »A3.«",
    }
    (p,) = t["predictions"]
    assert p["model_version"] == "m1" and p["score"] == pytest.approx(0.8 * 0.9)
    assert (
        p["result"][0]["value"]["choices"] == ["threat"]
        and p["result"][0]["scores"]["denial"] == 0.1
    )
    assert prediction_payload(PreAnnotation((), None, "m"))["score"] is None


def test_the_models_of_pushed_predictions_are_named_sorted_and_the_first_few():
    preds = {f"s{i}": PreAnnotation(("threat",), None, f"m{i % 7}") for i in range(30)}
    assert model_versions(preds) == "m0, m1, m2, m3, m4, ..."
    assert model_versions({"a": preds["s1"], "b": preds["s8"]}) == "m1"
    assert model_versions({}) == ""


def test_a_rows_meta_goes_into_its_task_whole_and_on_one_short_line(tmp_path):
    path = tmp_path / "out.jsonl"  # a predict output: its records' other fields under meta
    metas = [
        {"source": "Dawn", "date": "2026-10-12", "pages": 3, "wire": True, "byline": None},
        {"tags": ["a", "b"], "desk": {"city": "Lahore"}, "body": "word  \n" * 100, "k" * 40: "v"},
        {f"f{i}": "y" * 70 for i in range(10)},
        {},
    ]
    rows = [{"line": i, "id": f"s{i}", "text": f"S{i}.", "meta": m} for i, m in enumerate(metas)]
    rows.append({"id": "s9", "text": "A corpus row."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sentences = read_sentences(path)
    data = {t["data"]["id"]: t["data"] for t in build_tasks(sentences, sentences)}
    assert data["s0"].get("meta_line") == (
        "source: Dawn · date: 2026-10-12 · pages: 3 · wire: true · byline: null"
    )
    assert [data[f"s{i}"]["meta"] for i in range(3)] == metas[:3]  # as given
    word, y = "word " * 11 + "wo...", "y" * 57 + "..."
    assert data["s1"]["meta_line"] == (
        f'tags: ["a", "b"] · desk: {{"city": "Lahore"}} · body: {word} · {"k" * 27}...: v'
    )
    assert data["s2"]["meta_line"] == f"f0: {y} · f1: {y} · +8 more"
    for sid in ("s3", "s9"):  # no fields: the task of a corpus row, as before
        assert list(data[sid]) == ["text", "id", "doc_id", "index", "context"]
    root = ET.fromstring(label_config())  # shown above the sentence, required of no task
    (header,) = [h for h in root.iter("Header") if h.get("value") == "$meta_line"]
    assert header.get("name") is None and list(root).index(header) + 1 == list(root).index(
        root.find("Text")
    )


def test_a_meta_that_is_not_an_object_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "s1", "text": "A."}\n{"id": "s2", "text": "B.", "meta": "Dawn"}\n')
    env = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "token-x"}
    done = runner.invoke(app, ["label", "push", "--sentences", str(path)], env=env)
    assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.output
    assert done.stderr.startswith(f"error: {path}:2: 'meta' must be a JSON object")


def test_a_predict_outputs_error_rows_and_rows_without_id_are_skipped_and_counted(tmp_path):
    """A predict output is pushed as it is: error rows (nothing labelled) and rows of an
    input without ids are passed over with a note, and a meta that predict would have
    repaired (NaN, broken Unicode) is repaired as predict repairs it."""
    path = tmp_path / "out.jsonl"
    rows = [
        {"line": 1, "id": "s1", "text": "We will strike.", "labels": [], "model_version": "m"},
        {"line": 2, "id": "s2", "error": "text is empty"},
        {"line": 3, "id": None, "text": "No id.", "labels": [], "model_version": "m"},
        {"line": 4, "id": "s4", "text": "We deny it.", "meta": {"n": math.nan, "s": "\ud800"}},
        {"line": 5, "id": "s5", "text": "Talks.", "error": None},  # a Parquet output's null
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    notes: list[str] = []
    sentences = read_sentences(path, notes)
    assert [s["id"] for s in sentences] == ["s1", "s4", "s5"]
    assert sentences[1]["meta"] == {"n": None, "s": "\\ud800"}
    assert notes == [
        f"skipped 1 row(s) of {path} with an error (predict could not label them)",
        f"skipped 1 row(s) of {path} with no id (their input records had none; give them an "
        "id field to push them)",
    ]
    path.write_text(json.dumps(rows[1]) + "\n")
    with pytest.raises(InputError, match=r"no sentences \(skipped: 1 with an error"):
        read_sentences(path)
    path.write_text(json.dumps({"id": None, "text": "A corpus row without id."}) + "\n")
    with pytest.raises(InputError, match="'id' must be a non-empty string"):
        read_sentences(path)  # not a predict output: a row without id is an error, as before


def test_a_push_of_large_meta_gets_a_note_naming_the_first_task():
    """A record's raw HTML in every one of its sentence tasks: pushed in full, with a note
    that says how to keep only the fields annotators need."""
    page = {"source": "Dawn", "html": "<p>" + "x" * 12_000 + "</p>"}
    sentences = [
        {"id": "a", "text": "A.", "meta": {"source": "Dawn"}},
        {"id": "b", "text": "B.", "meta": page},
        {"id": "c", "text": "C.", "meta": page},
        {"id": "d", "text": "D.", "meta": page},
    ]
    config = "<View>$meta_line</View>"
    notes = meta_notes(sentences, {"d": {"meta": page}}, config, "out.jsonl")
    assert notes == [
        "2 new task(s) carry more than 10 kB of meta each (first: sentence b, 12 kB), in full "
        "in the server's database; `stancelab predict --meta FIELD,...` keeps only the fields "
        "annotators need"
    ]
    assert meta_notes(sentences[:1], {}, config, "out.jsonl") == []


def test_read_predictions_skips_and_counts_rows_it_cannot_use(tmp_path):
    path = tmp_path / "pred.jsonl"
    rows = [
        {"id": "s1", "labels": ["denial"], "scores": {"denial": 0.9}, "model_version": "m"},
        {"line": 2, "id": "s2", "error": "text is empty"},
        {"text": "no id", "labels": [], "scores": {}, "model_version": "m"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds, skipped = read_predictions(path)
    assert list(preds) == ["s1"] and preds["s1"].labels == ("denial",)
    assert skipped == {"error": 1, "no id": 1}
    path.write_text(json.dumps({**rows[0], "labels": ["threatt"]}) + "\n")
    with pytest.raises(InputError, match=r"unknown label.*pred.jsonl:1"):
        read_predictions(path)


# -- credentials ---------------------------------------------------------------------------


def test_credentials_lookup_order_and_the_token_stays_hidden(tmp_path, monkeypatch):
    secret = "s3cr3t-token-value"
    assert secret not in repr(Credentials("http://h:1/", secret))
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path))
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(ServerError, match="stancelab label serve"):
        load_credentials()
    path = save_credentials(Credentials("http://127.0.0.1:9/", secret))
    assert path.parent == tmp_path and path.stat().st_mode & 0o777 == 0o600
    assert load_credentials() == Credentials("http://127.0.0.1:9", secret)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://other:8080")
    with pytest.raises(ServerError, match="LABEL_STUDIO_API_KEY is not"):
        load_credentials()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "env-token")
    assert load_credentials().token == "env-token"


def test_serve_without_label_studio_says_how_to_install(tmp_path, monkeypatch):
    bare = tmp_path / "bin"  # an interpreter directory and a PATH without `label-studio`
    bare.mkdir()
    monkeypatch.setattr("sys.executable", str(bare / "python"))
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / "home"))
    done = runner.invoke(app, ["label", "serve", "--data-dir", str(tmp_path / "data")])
    assert done.exit_code == 1 and "pip install -e '.[annotate]'" in done.stderr
    assert not (tmp_path / "home").exists() and not (tmp_path / "data").exists()
