"""The committed gold set: complete, faithful to the corpus, and derivable from the exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stancelab.corpus.ingest import ingest
from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "labels" / "gold.jsonl"
EXPORTS = ROOT / "labels" / "exports"
AUGMENT = ROOT / "labels" / "augment"


def gold_rows() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    sentences, _ = ingest([ROOT / "seeds"], tmp_path_factory.mktemp("c") / "s.jsonl")
    return {s.id: s.text for s in sentences}


def test_every_corpus_sentence_has_a_gold_label(corpus):
    gold = {row["id"] for row in gold_rows()}
    missing = sorted(set(corpus) - gold)
    assert not missing, f"{len(missing)} corpus sentence(s) without gold: {missing[:3]}"
    assert not sorted(gold - set(corpus)), "gold rows for sentences that are not in the corpus"


def test_gold_text_matches_the_corpus_sentence(corpus):
    for row in gold_rows():
        assert row["text"] == corpus[row["id"]], row["id"]


def test_gold_loads_in_the_training_format():
    data = load_labelled(GOLD)
    assert len(data) == len(gold_rows())
    assert all(doc for doc in data.doc_ids)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "label", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_committed_gold_is_what_the_committed_exports_derive(tmp_path):
    (tmp_path / "labels").mkdir()
    shutil.copytree(EXPORTS, tmp_path / "labels" / "exports")
    done = run(["gold"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "labels" / "gold.jsonl").read_bytes() == GOLD.read_bytes()
    agreement = ROOT / "labels" / "agreement.json"
    assert (tmp_path / "labels" / "agreement.json").read_bytes() == agreement.read_bytes()


def test_import_of_the_committed_exports_derives_the_same_labels(tmp_path):
    (tmp_path / "labels" / "exports").mkdir(parents=True)
    for export in sorted(EXPORTS.glob("*.json")):
        done = run(["import", str(export)], tmp_path)
        assert done.returncode == 0, done.stderr
    derived = {r["id"]: r for r in map(json.loads, (tmp_path / "labels" / "gold.jsonl").open())}
    for row in gold_rows():
        other = derived[row["id"]]
        assert (other["text"], other["labels"]) == (row["text"], row["labels"])
        assert other["provenance"]["annotators"] == row["provenance"]["annotators"]
        assert other["provenance"]["adjudicated"] == row["provenance"]["adjudicated"]


def test_two_independent_passes_and_adjudications_are_recorded():
    rows = gold_rows()
    assert all(len(r["provenance"]["annotators"]) >= 2 for r in rows)
    adjudicated = [r for r in rows if r["provenance"]["adjudicated"]]
    assert adjudicated and all(
        any(a.startswith("adjudicator") for a in r["provenance"]["annotators"]) for r in adjudicated
    )
    report = json.loads((ROOT / "labels" / "agreement.json").read_text())
    assert report["sentences"]["ties"] == 0  # every tie was adjudicated
    assert report["sentences"]["adjudicated"] == len(adjudicated)


def test_the_shipped_sentences_are_as_the_models_read_them():
    """The README's claim that reading look-alike characters as plain ones changed no model
    trained on the shipped data: no gold or augmentation sentence changes under
    ``model_text``."""
    from stancelab.corpus.text import model_text
    from stancelab.data.labelled import load_augmentation

    texts = load_labelled(GOLD).texts + load_augmentation().texts
    assert len(texts) > 1900
    assert [t for t in texts if model_text(t) != t] == []


def test_no_authored_sentence_copies_a_corpus_sentence():
    """The README's figures trained every fold on the whole augmentation set: none of its
    sentences is a copy or near copy of a gold sentence that a fold could score."""
    from stancelab.data.labelled import load_augmentation
    from stancelab.evaluation.augmentation import unseen

    aug = load_augmentation()
    assert len(unseen(aug, load_labelled(GOLD))) == len(aug) > 1700


def test_training_leaves_out_augmentation_sentences_that_copy_a_gold_sentence(tmp_path, tiny_gold):
    """As the evaluation's training folds do (``unseen``). Before, a gold file holding
    augmentation sentences had each trained on twice, its copies on both sides of the inner
    CV folds (held-out macro-F1 0.890 instead of 0.805)."""
    import yaml

    from stancelab.config import load_config
    from stancelab.models.fit import train_run, training_data

    copies = AUGMENT / "europe_mena.jsonl"  # 522 of the 1,794 augmentation sentences
    config = load_config(ROOT / "configs" / "baseline.yaml", {"data.gold": str(copies)})
    data = training_data(config)
    assert len(data) == len(set(data.ids)) == len(load_augmentation(AUGMENT)) == 1794
    # The run says so: in its summary, run.json and model card.
    augment = tmp_path / "augment"
    augment.mkdir()
    rows = [json.loads(line) for line in tiny_gold.read_text(encoding="utf-8").splitlines()]
    (augment / "a.jsonl").write_text(
        "".join(json.dumps({**r, "dyad": "A–B"}) + "\n" for r in rows[:5]), encoding="utf-8"
    )
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "model": "baseline",
                "data": {"gold": str(tiny_gold), "augment": True, "augment_dir": str(augment)},
                "params": {"inner_folds": 3},
            }
        )
    )
    result = train_run(config_path, out=tmp_path / "run")
    assert result.notes == [
        "5 augmentation sentence(s) copy a corpus sentence (the same words, or at least 80% "
        "of them) and were left out of training."
    ]
    assert f"note: {result.notes[0]}" in result.summary()
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert run["data"]["sentences"] == len(rows) and run["notes"] == result.notes
    assert result.notes[0] in (tmp_path / "run" / "README.md").read_text(encoding="utf-8")


def test_a_labelled_files_id_is_a_string_or_a_whole_number(tmp_path):
    """As in ``corpus``: ``{"id": 0}`` is "0" (it was named by its line), a boolean or an
    object is refused naming the line (``true`` was the id "True"), and a row without an id
    is named by its file and line, as before."""
    path = tmp_path / "set.jsonl"
    rows = [{"id": 0}, {"id": 7.0}, {"id": "s2"}, {}, {"id": ""}]
    path.write_text(
        "".join(
            json.dumps({**r, "text": f"Sentence {i}.", "labels": []}) + "\n"
            for i, r in enumerate(rows)
        )
    )
    assert load_labelled(path).ids == ["0", "7", "s2", "set:4", "set:5"]
    for bad, kind in ((True, "bool"), ([1], "array"), (1.5, "float")):
        path.write_text(json.dumps({"id": bad, "text": "A.", "labels": []}) + "\n")
        with pytest.raises(InputError) as refused:
            load_labelled(path)
        assert (
            str(refused.value) == f"{path}:1: 'id' must be a string or a whole number, not {kind}"
        )
