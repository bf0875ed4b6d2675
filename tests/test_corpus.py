"""Corpus ingestion: furniture rules, offsets, stable ids, determinism, inputs and bad inputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stancelab.corpus.ingest import (
    Document,
    classify_line,
    ingest,
    read_documents,
    segment_document,
)
from stancelab.errors import InputError

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def seed_output(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    out = tmp_path_factory.mktemp("corpus") / "sentences.jsonl"
    ingest([SEEDS], out)
    return rows(out), rows(out.with_name("sentences.dropped.jsonl"))


def test_seed_offsets_match_documents(seed_output):
    sentences, _ = seed_output
    docs = {p.stem: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    assert len({s["doc_id"] for s in sentences}) == 5
    for s in sentences:
        assert docs[s["doc_id"]][s["start"] : s["end"]] == s["text"]
    assert len({s["id"] for s in sentences}) == len(sentences)


def test_seed_furniture_dropped_and_reported(seed_output):
    sentences, dropped = seed_output
    texts = {s["text"] for s in sentences}
    reasons = {d["text"]: d["reason"] for d in dropped}
    assert reasons["Khawaja Asif, Kabul, Pakistan, Afghanistan, Taliban"] == "tag list"
    assert reasons["Share and Analyze with AI"] == "share widget"
    assert reasons["Monitoring Desk"] == "desk byline"
    assert reasons["+ posts"] == "author widget"
    assert reasons["Related Posts"] == "related posts"
    assert reasons["Search"] == "search widget"
    assert reasons["You have not yet added any article to your bookmarks!"] == "bookmark widget"
    assert reasons["Islamabad (TDI):"] == "dateline"
    assert any(r == "photo credit" and "(AP Photo)" in t for t, r in reasons.items())
    assert sum(r == "read-more link" for r in reasons.values()) == 2
    assert not any(
        t.startswith(("Read More", "Islamabad (TDI)")) or "(AP Photo)" in t for t in texts
    )
    assert "Monitoring Desk" not in texts and "Pakistan" not in texts


def test_seed_headlines_and_sentences(seed_output):
    sentences, _ = seed_output
    by_text = {s["text"]: s for s in sentences}
    assert by_text["Pakistan defense minister warns Kabul over cross-border terror"]["headline"]
    assert by_text["UN Expresses Concern Over Failed Talks"]["headline"]
    assert by_text["“Afghanistan Does Not Meet the Definition of a State”"]["headline"]
    alleges = "Pakistan alleges that Tehrik-e-Taliban fighters and their supporters find refuge"
    assert not by_text[alleges + " in Afghanistan."]["headline"]
    # the dateline is cut, the sentence kept
    assert any(
        t.startswith("Pakistan’s Defense Minister Khawaja Asif has reiterated") for t in by_text
    )
    assert (
        "Since Tuesday, a tense calm has settled along the 2,600-kilometer-long border." in by_text
    )


@pytest.mark.parametrize(
    "line,reason",
    [
        ("Read More: 150,000 Afghans Return from Pakistan", "read-more link"),
        ("Share and Analyze with AI", "share widget"),
        ("By John Smith", "byline"),
        ("Monitoring Desk", "desk byline"),
        ("+ posts", "author widget"),
        ("Related Posts", "related posts"),
        ("Saved articles", "bookmark widget"),
        ("Photo: AFP", "photo credit"),
        ("Iran, Iraq, Syria, Turkey, Kurds", "tag list"),
    ],
)
def test_furniture_rules(line, reason):
    assert classify_line(line, first=False) == reason


@pytest.mark.parametrize(
    "line",
    [
        "By then, the talks had failed.",
        "Search for survivors continued on Monday.",
        "Iran, Iraq and Syria signed the pact, officials said.",
        "Pakistan Warns Taliban: Attacks from Afghan Soil Would Trigger Retaliation",
    ],
)
def test_prose_is_not_furniture(line):
    assert classify_line(line, first=False) is None


def test_ids_stable_when_other_documents_change(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    first = {r["text"]: r["id"] for r in _ingest(folder, tmp_path / "a.jsonl")}
    (folder / "zzz_new.txt").write_text("A new article. It says two things.", encoding="utf-8")
    edited = folder / "000_e951664726e45369.txt"
    edited.write_text(
        edited.read_text(encoding="utf-8") + "\nOne more sentence at the end.\n", encoding="utf-8"
    )
    second = {r["text"]: r["id"] for r in _ingest(folder, tmp_path / "b.jsonl")}
    for text, sid in first.items():
        assert second[text] == sid


def test_output_is_byte_identical(tmp_path):
    ingest([SEEDS], tmp_path / "a.jsonl")
    ingest([SEEDS], tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_jsonl_and_csv_inputs(tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        json.dumps({"id": "doc-a", "text": "We will strike. Talks failed."})
        + "\n"
        + json.dumps({"text": "No id here. Still fine."})
        + "\n",
        encoding="utf-8",
    )
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('id,text\ndoc-b,"He said, ""no."" Then he left."\n', encoding="utf-8")
    docs = read_documents([jsonl, csv_file])
    assert [d.doc_id for d in docs][0] == "doc-a" and docs[-1].doc_id == "doc-b"
    assert docs[1].doc_id.startswith("in-")
    out = _ingest_paths([jsonl, csv_file], tmp_path / "out.jsonl")
    assert [r["text"] for r in out if r["doc_id"] == "doc-a"] == [
        "We will strike.",
        "Talks failed.",
    ]


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("latin1.txt", "caf\xe9 au lait".encode("latin-1"), "not valid UTF-8"),
        ("binary.txt", b"\x00\x01\x02abc", "binary"),
        ("empty.txt", b"   \n", "empty"),
        ("rows.jsonl", b'{"id": "x"}\n', "'text' must be a string"),
        ("broken.jsonl", b'{"text": "ok"\n', "invalid JSON"),
        ("cols.csv", b"id,body\n1,hello\n", "'text' column"),
        ("doc.pdf", b"%PDF-1.4", "unsupported input type"),
    ],
)
def test_bad_input_names_the_file_and_writes_nothing(tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    out = tmp_path / "out.jsonl"
    out.write_text("previous content\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        ingest([bad], out)
    assert str(bad) in str(info.value) and message in str(info.value)
    assert out.read_text(encoding="utf-8") == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out.jsonl"])


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_documents([tmp_path / "nope"])
    with pytest.raises(InputError, match="no .txt files"):
        read_documents([tmp_path])


def test_duplicate_sentence_in_one_document_gets_distinct_ids():
    sentences, _ = segment_document(
        Document("d", "We will strike. Talks failed. We will strike.", "d")
    )
    assert len({s.id for s in sentences}) == 3


def test_cli_reports_counts_and_fails_cleanly(tmp_path):
    out = tmp_path / "s.jsonl"
    ok = subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "corpus", str(SEEDS), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "sentences from 5 document(s)" in ok.stdout and "dropped" in ok.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00x")
    fail = subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "corpus", str(bad), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert fail.returncode == 1
    assert fail.stderr.strip().startswith("error:") and len(fail.stderr.strip().splitlines()) == 1


def _ingest(folder: Path, out: Path) -> list[dict]:
    return _ingest_paths([folder], out)


def _ingest_paths(paths, out: Path) -> list[dict]:
    ingest(paths, out)
    return rows(out)
