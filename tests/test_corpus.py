"""Corpus ingestion: furniture rules, offsets, stable ids, determinism, inputs and bad inputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_common import one_error_line, stancelab

from stancelab.corpus.documents import read_documents
from stancelab.corpus.ingest import (
    Document,
    classify_line,
    ingest,
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
        (
            "latin1.txt",
            "caf\xe9 au lait".encode("latin-1"),
            "not valid UTF-8 (byte 3): the file, or part of it, is in another encoding",
        ),
        ("binary.txt", b"\x00\x01\x02abc", "binary"),
        ("empty.txt", b"   \n", "empty"),
        ("rows.jsonl", b'{"id": "x"}\n', "rows.jsonl:1: no 'text' field"),
        (
            "body.jsonl",
            b'{"id": "x", "body": "We will strike.", "date": "2026-11-01"}\n',
            "body.jsonl:1: no 'text' field (its fields: body, date)",
        ),
        ("null.jsonl", b'{"id": "x", "text": null}\n', "'text' must be a string, not NoneType"),
        ("broken.jsonl", b'{"text": "ok"\n', "invalid JSON"),
        ("cols.csv", b"id,body\n1,hello\n", "'text' column"),
        (
            "semi.csv",
            b"id;date;text\n1;2026-11-01;hello\n",
            "semi.csv: CSV needs a 'text' column (found: ['id;date;text']); its columns are "
            "separated by semicolons: save it with commas",
        ),
        (
            "caps.csv",
            b"id,Text\n1,hello\n",
            "caps.csv: CSV needs a 'text' column (found: ['id', 'Text']); the name is 'text' "
            "exactly, not 'Text'",
        ),
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


@pytest.mark.parametrize(
    "name,content",
    [
        ("blank.jsonl", '{"id": "a", "text": "One."}\n{"id": "  ", "text": "Two."}\n'),
        ("empty.jsonl", '{"id": "a", "text": "One."}\n{"id": "", "text": "Two."}\n'),
        ("blank.csv", 'id,text\na,One.\n" \t",Two.\n'),
    ],
)
def test_a_blank_id_is_a_bad_record_not_an_empty_doc_id(tmp_path, name, content):
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=rf"{name}:\d: 'id' is blank"):
        ingest([source], out)
    assert not out.exists()


def test_a_repeated_document_id_is_refused_naming_both_places(tmp_path):
    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "a", "text": "One."}\n{"id": "a", "text": "Two."}\n')
    with pytest.raises(InputError, match=r"docs.jsonl:2: document id 'a' is also that of .*:1;"):
        ingest([source], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_an_empty_csv_id_cell_means_no_id(tmp_path):
    source = tmp_path / "docs.csv"
    source.write_text("id,text\n,Talks resumed.\n", encoding="utf-8")
    sentences, _ = ingest([source], tmp_path / "out.jsonl")
    assert [s.doc_id[:5] for s in sentences] == ["docs-"]


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


def words(dropped) -> list[str]:
    return " ".join(d.text for d in dropped).split()


@pytest.mark.parametrize("link", [False, True])
@pytest.mark.parametrize("width", [60, 72, 80])
def test_a_hard_wrapped_article_gives_the_sentences_of_the_unwrapped_one(width, link):
    """Wrapped as an e-mail would (every line of the article filled at ``width``), each seed
    article gives the same sentences, headlines and furniture, but for one headline directly
    over a photo caption: at 72 and 80 the caption is wrapped and the headline is dropped
    with it (in the side file of dropped lines). A link line above does not change this."""
    import textwrap

    missed = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        wrapped = "\n".join(textwrap.fill(x, width, break_on_hyphens=False) for x in lines)
        assert wrapped != text
        if link:  # one line longer than the wrap does not change the width read
            wrapped += f"\n\nhttps://news.example.com/{'x' * (110 - 25)}\n"
        plain, plain_dropped = segment_document(Document(path.stem, text, "p"))
        found, dropped = segment_document(Document(path.stem, wrapped, "w"))
        for s in found:
            assert wrapped[s.start : s.end] == s.text
        by_id = {s.id: s for s in found}
        assert all(by_id[s.id].headline == s.headline for s in plain if s.id in by_id)
        lost = [s.text for s in plain if s.id not in by_id]
        assert len(found) == len(plain) - len(lost)
        # The same furniture dropped (at 60, a tag list and a share widget as one paragraph),
        # and the headline that went with the caption.
        link_words = wrapped.split()[-1:] if link else []  # the link: a short tag line
        assert words(dropped) == " ".join(lost).split() + words(plain_dropped) + link_words
        missed += lost
    if width > 60:
        assert missed == ["Pakistan defense minister warns Kabul over cross-border terror"]
    else:
        assert missed == []


def sentence_texts(text: str) -> list[str]:
    return [s.text for s in segment_document(Document("d", text, "d"))[0]]


def test_which_line_breaks_are_read_as_wraps():
    wrapped = (
        "The minister said on Tuesday that Pakistan would respond with full\n"
        "force if Afghan soil was used again for attacks on its border posts,\n"
        "adding that Kabul had been warned. He denied reports that jets had\n"
        "struck civilian areas in Khost, calling them baseless propaganda."
    )
    assert sentence_texts(wrapped) == [
        wrapped[: wrapped.index(" He denied")],
        wrapped[wrapped.index("He denied") :],
    ]
    # One break that looks like a wrap is a long headline over its first paragraph.
    headline = "Minister warns Kabul of a full response to any new attack on the border"
    body = "The minister said the army would respond. Talks are planned in Doha."
    assert sentence_texts(f"{headline}\n{body}") == [headline, *sentence_texts(body)]
    # Paragraphs one per line, and lists, are not joined.
    short = "We will strike back.\nTalks resumed in the capital after a pause.\n"
    assert sentence_texts(short * 3) == sentence_texts(short.replace("\n", "\n\n") * 3)
    assert not any("\n" in text for text in sentence_texts(short * 3))
    items = (
        "The points the minister made in his speech\n- the army will respond to any attack\n"
        "- the border stays closed to trucks until May\n- the talks will go on in Doha"
    )
    assert len(sentence_texts(items)) == 4
    for bullet in ("– ", "a) ", "1. "):
        listed = (
            f"{wrapped}\nHe set three conditions for the talks to go on:\n"
            f"{bullet}Close the training camps near the border at once\n"
            f"{bullet}Stop cross-border infiltration by the militant groups\n"
            f"{bullet}Allow a joint monitoring mechanism along the frontier"
        )
        texts = sentence_texts(listed)
        intro = texts.index("He set three conditions for the talks to go on:")
        assert not any("\n" in text for text in texts[intro:]), bullet
    # A line may end in an abbreviation: a next line in lower case continues it.
    usa = "He compared it to the intervention of the U.S.\nmilitary in Tora Bora in 2001,\n"
    usa += "and said it was a possibility.\nHe was asked about\nthe talks. They failed."
    assert sentence_texts(usa) == [
        usa[: usa.index("\nHe was")],
        "He was asked about\nthe talks.",
        "They failed.",
    ]


WIRE = (  # one paragraph per line with no blank lines: headline, paragraphs, a caption
    "Pakistan warns Kabul of a full military response if border attacks continue\n"
    "Islamabad (APP): Defence Minister Khawaja Asif said on Wednesday that Pakistan would "
    "strike militant hideouts inside Afghanistan if attacks on its border posts went on.\n"
    "He said that the Afghan Taliban had been warned repeatedly and had failed to act "
    "against the groups that cross the border to attack Pakistani troops and civilians.\n"
    "Khawaja Asif speaks to reporters at Parliament House in Islamabad\n"
    "The Taliban government denied the charge and said it does not allow its soil to be "
    "used against any country, calling the minister's remarks irresponsible.\n"
)


def test_a_document_that_is_not_wrapped_is_read_line_by_line():
    sentences, dropped = segment_document(Document("d", WIRE, "d"))
    assert not any("\n" in s.text for s in sentences)
    assert sentences[0].headline and sentences[0].text.startswith("Pakistan warns Kabul")
    assert [d.reason for d in dropped] == ["dateline"]
    assert len(sentences) == 5
    # Paragraphs longer than a wrap are never joined, even without a final full stop.
    unpunctuated = "".join(
        f"Statement {i} of the ministry on the border, issued in Islamabad on Wednesday "
        f"afternoon after the talks in Istanbul had ended without agreement, in full\n"
        for i in range(5)
    )
    assert len(sentence_texts(unpunctuated)) == 5
    # Nor are short paragraphs one per line that end like sentences, with furniture between.
    short = "The army said it would respond to any attack on the border posts.\n"
    text = f"{short}Share and Analyze with AI\n{short}By Staff Reporter\n{short}" * 2
    sentences, dropped = segment_document(Document("d", text, "d"))
    assert [d.reason for d in dropped] == ["share widget", "desk byline"] * 2
    assert not any("\n" in s.text for s in sentences)
    # Long paragraphs that end in a colon, each followed by its quotation, stay apart too.
    said = (
        "Speaking to reporters outside Parliament House in Islamabad on Wednesday after the "
        "talks collapsed without any agreement, the minister said:\n"
        "“We will strike, and we will certainly strike, if Afghan soil is used against us.”\n"
    )
    assert not any("\n" in text for text in sentence_texts(said * 3))


def test_first_names_shows_five_then_an_ellipsis():
    """The one way messages list files or ids: all of five, the first five of six."""
    from stancelab.corpus.text import first_names

    five = ["a.md", "b.md", "c.md", "d.md", "e.md"]
    assert first_names([]) == ""
    assert first_names(five) == "a.md, b.md, c.md, d.md, e.md"
    assert first_names([*five, "f.md"]) == "a.md, b.md, c.md, d.md, e.md, ..."
    assert first_names([*five, "f.md"], 3) == "a.md, b.md, c.md, ..."


@pytest.mark.parametrize("blank", ["\f", "\v", "\u2028", "\u3000", "\x85", "\u2003", "\u200b"])
def test_a_line_of_other_white_space_is_blank(blank):
    """pdftotext ends every page with a form feed on its own line."""
    text = f"We will strike back.\n{blank}\nTalks resumed in the capital after a pause.\n{blank}"
    sentences, dropped = segment_document(Document("d", text, "d"))
    assert [s.text for s in sentences] == [
        "We will strike back.",
        "Talks resumed in the capital after a pause.",
    ]
    assert dropped == []


def test_furniture_in_lower_case_is_not_joined_to_the_sentence_above():
    text = (
        "The minister said Pakistan would strike deep inside Afghanistan if it is\n"
        "attacked again from Afghan soil, and that talks had failed because Kabul\n"
        "was not sincere.\n"
        "pakistan, afghanistan, taliban, khawaja asif\n"
        "read more: Afghan refugees return in record numbers\n"
        "Talks are expected to resume next week in Doha, officials said.\n"
    )
    sentences, dropped = segment_document(Document("d", text, "d"))
    assert [s.text.split()[0] for s in sentences] == ["The", "Talks"]
    assert [d.reason for d in dropped] == ["tag list", "read-more link"]


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


@pytest.mark.parametrize(
    "name,data",
    [
        ("excel.csv", "id,text\n1,We reject the café attack.\n"),
        ("excel.jsonl", '{"id": "1", "text": "We reject the café attack."}\n'),
    ],
)
def test_a_cp1252_input_says_the_file_is_not_utf8_and_how_to_mend_it(tmp_path, name, data):
    """Excel's "CSV" on Windows is cp1252: "é" is the byte 0xe9. The error said only "not
    valid Unicode (an unpaired surrogate or undecodable byte ...)"."""
    source = tmp_path / name
    source.write_bytes(data.encode("cp1252"))
    out = tmp_path / "s.jsonl"
    ran = stancelab("corpus", str(source), "--out", str(out))
    assert ran.returncode == 1 and not out.exists()
    line = 2 if name.endswith(".csv") else 1
    assert one_error_line(ran.stderr) == (
        f"error: {source}:{line}: 'text' has a byte that is not UTF-8 (0xe9 at character 17): "
        "this line, or the whole file, is in another encoding; a file saved on Windows is "
        "most often cp1252 throughout: iconv -f cp1252 -t utf-8 FILE > NEW (if only some "
        "lines are, mend those lines)"
    )


def test_a_dash_says_standard_input_is_not_read(tmp_path):
    """``corpus -`` (a shell user's standard input) said "-: no such file or folder"."""
    out = tmp_path / "s.jsonl"
    command = [sys.executable, "-m", "stancelab.cli", "corpus", "-", "--out", str(out)]
    ran = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 1
    assert ran.stderr.splitlines() == [
        "error: '-' is not read from standard input: save the text to a file first and give "
        "files or folders (a .txt file is one article; a .jsonl or .csv file holds one per "
        "record)"
    ]
    assert not out.exists()


def test_a_folder_says_which_files_it_did_not_read(tmp_path):
    """A folder is read for its .txt files only: an analyst's .md article or spreadsheet
    beside them was left out in silence, and a folder of .md files said only that it had
    no .txt files."""
    folder = tmp_path / "articles"
    (folder / "2024").mkdir(parents=True)
    (folder / "a.txt").write_text("Talks resumed on Monday.\n", encoding="utf-8")
    (folder / "2024" / "b.md").write_text("The army denied it.\n", encoding="utf-8")
    (folder / "more.csv").write_text("id,text\nc,We will strike.\n", encoding="utf-8")
    (folder / ".draft.md").write_text("Hidden, as an editor's file.\n", encoding="utf-8")
    out = tmp_path / "s.jsonl"
    command = [sys.executable, "-m", "stancelab.cli", "corpus", str(folder), "--out", str(out)]
    ran = subprocess.run(command, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert "1 sentences from 1 document(s)" in ran.stdout
    assert ran.stderr.splitlines() == [
        f"warning: {folder}: skipped 2 file(s) that are not .txt (2024/b.md, more.csv): a "
        "folder's .txt files are read; give a .jsonl or .csv as a path of its own; save "
        "articles as UTF-8 .txt files"
    ]
    (folder / "a.txt").unlink()
    out.unlink()
    ran = subprocess.run(command, capture_output=True, text=True)
    assert ran.returncode == 1
    assert ran.stderr.splitlines() == [
        f"error: {folder}: folder has no .txt files; it holds 2024/b.md, more.csv: give a "
        ".jsonl or .csv as a path of its own; save articles as UTF-8 .txt files"
    ]
    assert not out.exists()


def test_the_advice_on_skipped_files_depends_on_their_kind(tmp_path):
    """A folder holding only a spreadsheet was told to save its articles as .txt files, and
    an .md article beside .txt ones to be given as a .jsonl or .csv."""
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "more.csv").write_text("id,text\nc,We will strike.\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_documents([folder])
    assert str(caught.value) == (
        f"{folder}: folder has no .txt files; it holds more.csv: give a .jsonl or .csv as a "
        "path of its own"
    )
    (folder / "more.csv").unlink()
    (folder / "a.txt").write_text("Talks resumed on Monday.\n", encoding="utf-8")
    (folder / "b.md").write_text("The army denied it.\n", encoding="utf-8")
    with pytest.warns(UserWarning) as warned:
        read_documents([folder])
    assert [str(w.message) for w in warned] == [
        f"{folder}: skipped 1 file(s) that are not .txt (b.md): a folder's .txt files are "
        "read; save articles as UTF-8 .txt files"
    ]


def test_a_folder_reads_the_folders_it_links_to(tmp_path):
    """rglob does not follow a link to a folder (Python 3.11): the linked folder's articles
    were left out, and not named either. A loop of links is walked once."""
    folder, real = tmp_path / "articles", tmp_path / "real"
    folder.mkdir()
    real.mkdir()
    (folder / "a.txt").write_text("Talks resumed on Monday.\n", encoding="utf-8")
    (real / "x.txt").write_text("The army denied it.\n", encoding="utf-8")
    (folder / "linked").symlink_to(Path("..") / "real")
    (real / "loop").symlink_to(folder)
    documents = read_documents([folder])
    assert [d.doc_id for d in documents] == ["a", "linked/x"]
    out = tmp_path / "s.jsonl"
    ran = stancelab("corpus", str(folder), "--out", str(out))
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    assert "2 sentences from 2 document(s)" in ran.stdout


@pytest.mark.parametrize("existing", ["out.jsonl", "out.dropped.jsonl"])
def test_cli_refuses_an_existing_output_or_side_file_unless_overwrite(tmp_path, existing):
    mine = tmp_path / existing
    mine.write_text('{"precious": 1}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    refused = stancelab("corpus", str(SEEDS), "--out", str(out))
    assert refused.returncode == 1
    assert f"{mine}: exists; pass --overwrite" in one_error_line(refused.stderr)
    assert mine.read_text(encoding="utf-8") == '{"precious": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]  # nothing else written
    done = stancelab("corpus", str(SEEDS), "--out", str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert len(rows(out)) == 169 and rows(out.with_name("out.dropped.jsonl"))


def test_outputs_named_alike_but_for_the_last_suffix_keep_their_own_side_files(tmp_path):
    for name in ("s.v1", "s.v2"):
        ingest([SEEDS], tmp_path / name)  # the second was refused: s.dropped.jsonl existed
    assert rows(tmp_path / "s.v1.dropped") == rows(tmp_path / "s.v2.dropped") != []


def test_overwrite_never_replaces_an_input(tmp_path):
    source = tmp_path / "articles.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "Talks resumed."}) + "\n", "utf-8")
    before = source.read_bytes()
    refused = stancelab("corpus", str(source), "--out", str(source), "--overwrite")
    assert refused.returncode == 1 and "is the input" in one_error_line(refused.stderr)
    assert source.read_bytes() == before


@pytest.mark.parametrize("where", ["a folder", "under a file", "a name too long", "unwritable"])
def test_an_output_that_cannot_be_written_is_one_line_and_writes_nothing(tmp_path, where):
    (tmp_path / "a.txt").write_text("mine\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    out = {
        "a folder": tmp_path / "folder",
        "under a file": tmp_path / "a.txt" / "x.jsonl",
        "a name too long": tmp_path / ("x" * 300 + ".jsonl"),
        "unwritable": Path("/proc/stancelab-test/out.jsonl"),  # even for root
    }[where]
    before = sorted(tmp_path.rglob("*"))
    ran = stancelab("corpus", str(SEEDS), "--out", str(out))
    assert ran.returncode == 1
    assert one_error_line(ran.stderr)
    assert sorted(tmp_path.rglob("*")) == before  # no side file written before the failure
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "mine\n"


def test_a_second_writer_of_one_output_is_refused(tmp_path):
    from stancelab.files import output_lock

    out = tmp_path / "s.jsonl"
    with output_lock(out, "stancelab corpus", "--out"):  # a first writer, under way
        with pytest.raises(InputError, match="another stancelab corpus is writing"):
            ingest([SEEDS], out)
    assert not out.exists() and not out.with_name("s.dropped.jsonl").exists()
    ingest([SEEDS], out)  # once it has finished
    assert len(rows(out)) == 169


def _ingest(folder: Path, out: Path) -> list[dict]:
    return _ingest_paths([folder], out)


def _ingest_paths(paths, out: Path) -> list[dict]:
    ingest(paths, out)
    return rows(out)


def test_the_id_check_reads_the_ids_again_only_to_name_a_repeat():
    """It keeps a hash per id, not the ids (an input of millions of rows): a second pass
    over the input, for the places, only when two hashes are alike."""
    from stancelab.corpus.documents import refuse_repeated_ids

    passes = []

    def ids(names):
        def read():
            passes.append(1)
            return ((name, f"in.jsonl:{i + 1}") for i, name in enumerate(names))

        return read

    refuse_repeated_ids(ids([f"s{i}" for i in range(1000)]), documents=False)
    assert len(passes) == 1
    passes.clear()
    with pytest.raises(InputError) as refused:
        refuse_repeated_ids(ids(["a", "b", "c", "b", "a"]), documents=False)
    assert str(refused.value).startswith("in.jsonl:4: id 'b' is also that of in.jsonl:2; ")
    assert len(passes) == 2
    with pytest.raises(InputError, match="in.jsonl:3: document id 'x' is also that of in.jsonl:1"):
        refuse_repeated_ids([("x", "in.jsonl:1"), ("y", "in.jsonl:2"), ("x", "in.jsonl:3")])
