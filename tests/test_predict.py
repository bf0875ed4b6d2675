"""predict: the function, document mode, bad input, the CLI and streaming files with resume.

These tests use a small baseline saved to a run directory (the predict path never asks which
model it holds); the transformer's own predict path is tested in test_transformer.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from reliability_common import predict_interrupted_at_chunk

from stancelab.config import BaselineParams
from stancelab.corpus.ingest import dropped_path
from stancelab.corpus.text import model_text, preview
from stancelab.errors import InputError, ModelLoadError
from stancelab.files import walk_folder
from stancelab.labels import LABELS
from stancelab.models.baseline import BaselineModel
from stancelab.prediction import stream
from stancelab.prediction.api import Prediction, predict, predict_document, resolve_model
from stancelab.prediction.error_rows import MESSAGE_WIDTH, input_order

ARTICLE = (
    "Minister Warns Rebels Over Attacks\n\n"
    "Share and Analyze with AI\n\n"
    "The minister said the army will retaliate if the rebels attack again. "
    "He denied that troops had shelled the village.\n\n"
    "Read More: Another story\n\n"
    "Talks are scheduled for next week in Geneva.\n"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from conftest import TINY

    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("run") / "baseline")


def test_single_and_batch(run_dir):
    one = predict("We will strike their bases if they cross the border again.", model=run_dir)
    assert isinstance(one, Prediction)
    assert set(one.scores) == set(LABELS) and all(0 <= v <= 1 for v in one.scores.values())
    assert isinstance(one.labels, tuple) and set(one.labels) <= set(LABELS)
    many = predict(["Talks resumed on Monday.", "The ministry denied any role."], model=run_dir)
    assert isinstance(many, list) and len(many) == 2
    assert many[0].text == "Talks resumed on Monday."


def test_result_is_named_printable_and_json(run_dir):
    result = predict("We deny these baseless claims.", model=run_dir)
    row = json.loads(result.to_json())
    assert row["text"] == result.text and row["labels"] == list(result.labels)
    assert set(row["scores"]) == set(LABELS)
    assert json.dumps(result.to_dict())
    assert "We deny these baseless claims." in str(result)


def test_labels_follow_thresholds(run_dir):
    model = resolve_model(run_dir)
    result = predict("Officials blamed foreign agents for the bombing.", model=model)
    expected = tuple(n for j, n in enumerate(LABELS) if result.scores[n] >= model.thresholds_[j])
    assert result.labels == expected


@pytest.mark.parametrize(
    "bad,error,message",
    [
        (None, TypeError, "string"),
        (42, TypeError, "int"),
        (b"bytes", TypeError, "bytes"),
        (["fine", 3.5], TypeError, "index 1"),
        ("", ValueError, "empty"),
        ("   \n", ValueError, "empty"),
        (["fine", " "], ValueError, "index 1"),
    ],
)
def test_bad_input(run_dir, bad, error, message):
    with pytest.raises(error, match=message):
        predict(bad, model=run_dir)


def test_non_english_text_is_labelled_and_flagged_when_not_in_latin_letters(run_dir):
    from stancelab.errors import ForeignScriptWarning

    with pytest.warns(ForeignScriptWarning, match="2 of 3 text"):
        results = predict(["Nous allons riposter.", "Мы ответим.", "سنرد بقوة"], model=run_dir)
    assert [r.foreign_script for r in results] == [False, True, True]


def test_document_mode_offsets(run_dir):
    results = predict_document(ARTICLE, model=run_dir)
    assert [r.text for r in results] == [
        "Minister Warns Rebels Over Attacks",
        "The minister said the army will retaliate if the rebels attack again.",
        "He denied that troops had shelled the village.",
        "Talks are scheduled for next week in Geneva.",
    ]
    for r in results:
        assert ARTICLE[r.start : r.end] == r.text
    assert "start" in results[0].to_dict()
    with pytest.raises(TypeError):
        predict_document(None, model=run_dir)
    with pytest.raises(ValueError):
        predict_document("  ", model=run_dir)


WRAPPED = (  # an article as an e-mail or a PDF copy gives it: lines broken at a width
    "The minister said the army will retaliate if the rebels attack\n"
    "again, and that the border will stay closed. He denied that troops\n"
    "had shelled the village.\n\nTalks are scheduled for next week in Geneva."
)


def test_a_hard_wrapped_document_is_labelled_sentence_by_sentence(run_dir):
    results = predict_document(WRAPPED, model=run_dir)
    assert [WRAPPED[r.start : r.end] for r in results] == [r.text for r in results]
    assert [" ".join(r.text.split()) for r in results] == [
        "The minister said the army will retaliate if the rebels attack again, and that the "
        "border will stay closed.",
        "He denied that troops had shelled the village.",
        "Talks are scheduled for next week in Geneva.",
    ]
    spaced = predict([" ".join(r.text.split()) for r in results], model=run_dir)
    assert [r.scores for r in spaced] == [r.scores for r in results]  # a break reads as a space
    ran = run_cli("--model", str(run_dir), "--documents", WRAPPED)
    assert ran.returncode == 0, ran.stderr
    rows = ran.stdout.splitlines()[2:]  # one line per sentence
    assert len(rows) == 3 and rows[1].endswith("  He denied that troops had shelled the village.")


def test_missing_default_model_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("STANCELAB_MODEL", str(tmp_path / "runs" / "transformer"))
    with pytest.raises(ModelLoadError, match="python -m training.train configs/transformer.yaml"):
        predict("Anything at all.")


def test_a_run_retrained_in_place_is_loaded_anew(tmp_path, tiny_gold):
    from stancelab.models.fit import train_run
    from stancelab.models.registry import load_model

    config = tmp_path / "b.yaml"
    config.write_text(
        "model: baseline\nname: b\nseed: 1\n"
        f"data: {{gold: {tiny_gold}, augment: false}}\nparams: {{inner_folds: 3}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    text = "We will strike their bases if they cross the border again."
    train_run(config, out=out)
    before = predict(text, model=out)
    assert before.scores == predict(text, model=load_model(out)).scores
    train_run(config, out=out, overrides={"params.C": 0.05}, overwrite=True)  # same process
    after = predict(text, model=out)
    assert after.scores == predict(text, model=load_model(out)).scores
    assert after.scores != before.scores
    assert resolve_model(out).model_version == load_model(out).model_version
    assert resolve_model(out) is resolve_model(out)  # an unchanged run stays cached


def write_inputs(tmp_path: Path) -> dict[str, Path]:
    txt = tmp_path / "in.txt"
    txt.write_text("We will strike back.\n\nTalks resumed.\n", encoding="utf-8")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "text": "The ministry denied any role."}),
                json.dumps({"id": "b", "text": ""}),
                "{broken",
                json.dumps({"id": "c", "text": 7}),
                json.dumps({"text": "No id, fine."}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('id,text\nx,"We reject the claims, he said."\ny,\n', encoding="utf-8")
    return {"txt": txt, "jsonl": jsonl, "csv": csv_file}


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_txt_jsonl_csv_with_error_rows(run_dir, tmp_path):
    model = resolve_model(run_dir)
    inputs = write_inputs(tmp_path)
    out = tmp_path / "txt.jsonl"
    summary = stream.predict_file(model, inputs["txt"], out, progress=False)
    rows = read_rows(out)
    assert [r["text"] for r in rows] == ["We will strike back.", "Talks resumed."]
    assert summary.records == 2 and summary.errors == 0
    assert all(r["model_version"].startswith("baseline-") for r in rows)
    assert "\n" not in str(summary) and "first error row" not in str(summary)

    out = tmp_path / "jsonl.jsonl"
    summary = stream.predict_file(model, inputs["jsonl"], out, progress=False)
    rows = read_rows(out)
    assert [r.get("id") for r in rows] == ["a", "b", None, "c", None]
    assert "empty" in rows[1]["error"] and "invalid JSON" in rows[2]["error"]
    assert "string" in rows[3]["error"] and rows[4]["text"] == "No id, fine."
    assert summary.errors == 3
    # the summary names the first error row and its message, counts the distinct messages
    # and says where they all are
    assert str(summary).splitlines()[1] == (
        f"first error row (line 2, id 'b'): {rows[1]['error']}; 3 distinct messages; "
        f'every error row has its message under "error" in {out}'
    )

    out = tmp_path / "csv.jsonl"
    rows = (stream.predict_file(model, inputs["csv"], out, progress=False), read_rows(out))[1]
    assert rows[0]["id"] == "x" and set(rows[0]["scores"]) == set(LABELS)
    assert "error" in rows[1]


def test_documents_mode_for_files(run_dir, tmp_path):
    model = resolve_model(run_dir)
    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    out = tmp_path / "doc.jsonl"
    stream.predict_file(model, article, out, documents=True, progress=False)
    rows = read_rows(out)
    assert len(rows) == 4 and all(ARTICLE[r["start"] : r["end"]] == r["text"] for r in rows)
    assert [r["index"] for r in rows] == [0, 1, 2, 3]


def test_existing_output_is_not_overwritten(run_dir, tmp_path):
    model = resolve_model(run_dir)
    inputs = write_inputs(tmp_path)
    out = tmp_path / "keep.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    with pytest.raises(InputError, match="exists"):
        stream.predict_file(model, inputs["txt"], out, progress=False)
    assert out.read_text(encoding="utf-8") == "precious\n"
    stream.predict_file(model, inputs["txt"], out, overwrite=True, progress=False)
    assert len(read_rows(out)) == 2


def test_an_output_through_a_symbolic_link_lands_where_it_points(run_dir, tmp_path):
    model = resolve_model(run_dir)
    inputs = write_inputs(tmp_path)
    (tmp_path / "big-disk").mkdir()
    target = tmp_path / "big-disk" / "out.jsonl"
    link = tmp_path / "out.jsonl"
    link.symlink_to(target)  # dangling until the first run writes the target
    stream.predict_file(model, inputs["txt"], link, progress=False)
    assert link.is_symlink() and len(read_rows(target)) == 2
    with pytest.raises(InputError, match="exists"):
        stream.predict_file(model, inputs["txt"], link, progress=False)
    stream.predict_file(model, inputs["jsonl"], link, overwrite=True, progress=False)
    assert link.is_symlink() and len(read_rows(target)) == 5
    assert sorted(p.name for p in tmp_path.iterdir() if "out.jsonl" in p.name) == ["out.jsonl"]
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="cannot follow this symbolic link"):
        stream.predict_file(model, inputs["txt"], loop, progress=False)
    for no_name in (Path("."), Path(".."), tmp_path / "big-disk" / ".."):
        with pytest.raises(InputError, match="an output needs a name of its own"):
            stream.predict_file(model, inputs["txt"], no_name, overwrite=True, progress=False)
    assert model.truncated("We will strike.") == [False]  # the baseline reads texts whole


def test_resume_after_interruption_gives_the_same_output(run_dir, tmp_path):
    model = resolve_model(run_dir)
    source = tmp_path / "many.jsonl"
    texts = [f"Statement {i}: the army will respond to any attack." for i in range(50)]
    texts[3] = texts[40] = ""  # error rows, one before the interruption and one after
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    reference = tmp_path / "reference.jsonl"
    stream.predict_file(model, source, reference, chunk_size=7, progress=False)

    out = tmp_path / "out.jsonl"
    with predict_interrupted_at_chunk(4), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=7, progress=False)
    part = out.with_name(out.name + ".part")
    assert not out.exists() and part.exists()
    assert len(read_rows(part)) == 21  # three whole chunks, no torn line
    # a torn last line (a crash mid-write) is cut back to the checkpoint on resume
    with part.open("ab") as handle:
        handle.write(b'{"line": 22, "te')
    summary = stream.predict_file(model, source, out, chunk_size=7, resume=True, progress=False)
    assert summary.resumed_from == 21 and summary.records == 29
    assert out.read_bytes() == reference.read_bytes()
    assert not part.exists()
    # the summary's rows and error rows cover the whole output, not only this run's part
    assert (summary.rows, summary.errors) == (50, 2)
    assert f"29 record(s) (resumed after 21) -> {out} holds 50 row(s); 2 error row(s)" in str(
        summary
    )
    # the first error row named is the output's first, written before the interruption;
    # both error rows have one message, so no count of distinct ones
    first = read_rows(out)[3]["error"]
    assert str(summary).splitlines()[1] == (
        f'first error row (line 4): {first}; every error row has its message under "error" in {out}'
    )


EDITS = ["same length", "a row shortened", "a row lengthened", "a line deleted", "part deleted"]
CHECKPOINT_EDITS = ["no checksum (old format)", "records_done", "rows", "bytes too large"]


@pytest.mark.parametrize("edit", EDITS + CHECKPOINT_EDITS)
def test_resume_refuses_a_partial_output_that_was_edited(run_dir, tmp_path, edit):
    model = resolve_model(run_dir)
    source = tmp_path / "many.txt"
    source.write_text("".join(f"We will respond {i}.\n" for i in range(30)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with predict_interrupted_at_chunk(2), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=7, progress=False)
    part, meta = out.with_name(out.name + ".part"), out.with_name(out.name + ".part.json")
    kept, checkpoint = part.read_bytes(), json.loads(meta.read_text())
    lines = kept.splitlines(keepends=True)
    edited = {
        "same length": kept.replace(b'"labels": [', b'"labels":[ ', 1),
        "a row shortened": kept.replace(b'"labels": [', b'"labels":[', 1),
        "a row lengthened": kept.replace(b'"labels": [', b'"labels":  [', 1),
        "a line deleted": b"".join(lines[1:]),
    }.get(edit, kept)
    part.write_bytes(edited)
    message = "its first \\d+ bytes are not those its checkpoint recorded"
    if edit in ("a row shortened", "a line deleted"):
        message = "holds \\d+ bytes, fewer than the \\d+ its checkpoint recorded"
    if edit == "part deleted":
        part.unlink()
        message = "holds 0 bytes, fewer than the \\d+ its checkpoint recorded"
    elif edit in CHECKPOINT_EDITS:  # a resume here would duplicate, drop or miscount rows
        if edit == "no checksum (old format)":
            del checkpoint["sha256"], checkpoint["counts"], checkpoint["seal"]
        elif edit == "records_done":
            checkpoint["records_done"] = 4
        elif edit == "rows":
            checkpoint["counts"]["rows"] = -5
        else:
            checkpoint["bytes"] = 1e400  # read back as infinity
        meta.write_text(json.dumps(checkpoint))
        message = (  # an older stancelab's or a newer one's (with fields this one lacks)
            "its checkpoint is not as this stancelab writes it \\(begun by another version of "
            "stancelab, or edited\\); rerun with --overwrite"
        )
    written = meta.read_bytes()
    with pytest.raises(InputError, match=f"out.jsonl.part: {message}"):
        stream.predict_file(model, source, out, chunk_size=7, resume=True, progress=False)
    assert not out.exists() and meta.read_bytes() == written  # both left as they are
    if edit == "part deleted":
        assert not part.exists()  # no empty part file made in its place
    else:
        assert part.read_bytes() == edited


def test_resume_refuses_a_different_input(run_dir, tmp_path):
    model = resolve_model(run_dir)
    inputs = write_inputs(tmp_path)
    out = tmp_path / "o.jsonl"
    part = out.with_name(out.name + ".part")
    part.write_text("", encoding="utf-8")
    meta = out.with_name(out.name + ".part.json")
    meta.write_text(json.dumps({"input": "/elsewhere.txt", "records_done": 0, "bytes": 0}))
    with pytest.raises(InputError, match="another input"):
        stream.predict_file(model, inputs["txt"], out, resume=True, progress=False)
    meta.write_text(json.dumps({"input": str(inputs["txt"].resolve()), "bytes": 0}))
    with pytest.raises(InputError, match="begun by an earlier stancelab"):  # no engine recorded
        stream.predict_file(model, inputs["txt"], out, resume=True, progress=False)


def test_an_input_error_after_rows_were_written_keeps_them_for_resume(
    run_dir, tmp_path, monkeypatch
):
    """The input is read through once before anything is written (for repeated ids), which
    refuses a bad file at once; here the bad row is added while the run labels its first
    chunk, as an input written to during the run would be."""
    source = tmp_path / "in.csv"
    rows = "".join(f"r{i},Statement {i}: we will respond.\n" for i in range(20))
    runaway = "x" * ((1 << 24) + 10)  # past the CSV field limit: the parser stops here
    source.write_text(f"id,text\n{rows}", encoding="utf-8")
    real = stream.rows_for

    def input_grown(*args, **kwargs):
        if source.stat().st_size < len(runaway):
            with open(source, "a", encoding="utf-8") as grown:
                grown.write(f"r20,{runaway}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "rows_for", input_grown)
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"in.csv:\d+: not a readable CSV"):
        stream.predict_file(resolve_model(run_dir), source, out, chunk_size=5, progress=False)
    part = out.with_name(out.name + ".part")
    assert len(read_rows(part)) == 20 and out.with_name(out.name + ".part.json").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "predict", *args], capture_output=True, text=True
    )


def test_cli_table_json_and_errors(run_dir, tmp_path):
    table = run_cli("--model", str(run_dir), "We will retaliate.", "Talks resumed.")
    assert table.returncode == 0, table.stderr
    assert "labels" in table.stdout.splitlines()[0] and "Talks resumed." in table.stdout
    js = run_cli("--model", str(run_dir), "--json", "We will retaliate.")
    assert json.loads(js.stdout)[0]["text"] == "We will retaliate."
    empty = run_cli("--model", str(run_dir), " ")
    assert empty.returncode == 1 and "empty" in empty.stderr
    missing = run_cli("--model", str(tmp_path / "none"), "x")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    dash = run_cli("--model", str(run_dir), "-")  # standard input, to a shell user
    assert dash.returncode == 1 and dash.stderr.splitlines() == [
        "error: '-' is not read from standard input: give the sentences here, or save them to a "
        "file and give --input FILE (a .txt is one sentence per line)"
    ]
    ignored = run_cli("--model", str(run_dir), "We deny it.", "--output", str(tmp_path / "x.jsonl"))
    assert ignored.returncode == 1 and "--output, --resume and --overwrite are for --input" in (
        ignored.stderr
    )
    inputs = write_inputs(tmp_path)
    out = tmp_path / "cli.jsonl"
    ran = run_cli(
        "--model",
        str(run_dir),
        "--input",
        str(inputs["jsonl"]),
        "--output",
        str(out),
        "--no-progress",
    )
    assert ran.returncode == 0, ran.stderr
    assert "3 error row(s)" in ran.stdout and len(read_rows(out)) == 5


def test_cli_summary_names_the_first_error_row_of_a_cp1252_csv(run_dir, tmp_path):
    """A CSV saved in cp1252: every row an error row, and the summary says why without
    opening the output, the message whole (its advice too). The byte is at another character
    in each row, one cause: no count of messages (it said "over 20 distinct messages")."""
    source = tmp_path / "cp1252.csv"
    rows = "".join(f's{i},"{"a" * i} Le minist\u00e8re d\u00e9ment."\n' for i in range(30))
    source.write_bytes(("id,text\n" + rows).encode("cp1252"))
    out = tmp_path / "out.jsonl"
    ran = run_cli(
        "--model", str(run_dir), "--input", str(source), "--output", str(out), "--no-progress"
    )
    assert ran.returncode == 0, ran.stderr
    written = read_rows(out)
    assert len(written) == 30 and len({r["error"] for r in written}) == 30
    lines = ran.stdout.splitlines()
    assert "30 error row(s)" in lines[-2]
    message = preview(written[0]["error"], MESSAGE_WIDTH)
    assert "in another encoding" in message and lines[-1] == (
        f"first error row (line 2, id 's0'): {message}; every error row has its message "
        f'under "error" in {out}'
    )
    assert "iconv -f cp1252 -t utf-8 FILE > NEW" in lines[-1]


@pytest.mark.parametrize(
    "name,data",
    [
        ("excel.csv", "id,text\na,We reject the café attack.\nb,Talks resumed.\n"),
        (
            "excel.jsonl",
            '{"id": "a", "text": "We reject the café attack."}\n'
            '{"id": "b", "text": "Talks resumed."}\n',
        ),
    ],
)
def test_cli_a_cp1252_input_says_the_file_is_not_utf8_and_how_to_mend_it(
    run_dir, tmp_path, name, data
):
    """Excel's "CSV" on Windows is cp1252: "é" is the byte 0xe9. Its record's error row
    said only "not valid Unicode (an unpaired surrogate or undecodable byte ...)"; the
    others are labelled."""
    source = tmp_path / name
    source.write_bytes(data.encode("cp1252"))
    out = tmp_path / "out.jsonl"
    ran = run_cli("--model", str(run_dir), "--input", str(source), "--output", str(out))
    assert ran.returncode == 0, ran.stderr
    assert "1 error row(s)" in ran.stdout
    bad, fine = read_rows(out)
    assert bad == {
        "line": 2 if name.endswith(".csv") else 1,
        "id": "a",
        "error": "'text' has a byte that is not UTF-8 (0xe9 at character 17): this line, or "
        "the whole file, is in another encoding; a file saved on Windows is most often cp1252 "
        "throughout: iconv -f cp1252 -t utf-8 FILE > NEW (if only some lines are, mend those "
        "lines)",
    }
    assert fine["id"] == "b" and "labels" in fine


@pytest.mark.parametrize(
    ("text", "foreign"),
    [
        ("We will strike back.", False),
        ("Şehbaz Şerif said the talks would go on.", False),  # Latin letters with marks
        ('The minister said "الله أكبر" twice in his speech.', False),  # mostly Latin
        ("Nous riposterons.", False),  # another language in Latin letters: not caught
        ("سنرد بكل قوة إذا هاجموا حدودنا مرة أخرى.", True),  # Arabic
        ("Мы нанесём ответный удар.", True),  # Cyrillic
        ("ہم پوری طاقت سے جواب دیں گے", True),  # Urdu
        ("我们将全力反击。", True),
        ("Ελληνικά γράμματα", True),  # Greek
        ("🙂🙂🙂", False),  # no letters: nothing to translate
        ("1.", False),  # a list marker, as sentence splitting leaves them
        ("+1 202 555 0100", False),
        (
            "\uff37\uff25 \uff37\uff29\uff2c\uff2c \uff33\uff34\uff32\uff29\uff2b\uff25",
            False,
        ),  # fullwidth Latin
        ("\U0001d416\U0001d41e \U0001d430\U0001d422\U0001d425\U0001d425", False),  # bold
        ("Obey the Prophet \ufdfa.", False),  # one Arabic ligature, kept as it is
    ],
)
def test_foreign_script_is_mostly_not_latin_letters(text, foreign):
    from stancelab.corpus.text import foreign_script

    assert foreign_script(text) is foreign


def test_look_alike_letters_are_read_as_the_plain_text(run_dir):
    from conftest import TINY, look_alikes

    plain = "We will strike back if they fire on our flag again."
    styled = look_alikes(plain)
    assert all(form != plain for form in styled.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Latin letters: no foreign-script warning
        results = predict([plain, *styled.values()], model=run_dir)
    assert [r.text for r in results] == [plain, *styled.values()]  # the text as given
    assert all(r.scores == results[0].scores for r in results[1:])
    assert not any(r.foreign_script for r in results)

    model = resolve_model(run_dir)
    assert all(model.explain(form) == model.explain(plain) for form in styled.values())
    # Only characters whose compatibility form is ASCII: the Arabic ligature stays itself.
    assert model_text("Obey the Prophet \ufdfa.") == "Obey the Prophet \ufdfa."

    # Training reads them the same way: a baseline fitted on fullwidth text is the same model.
    texts, label_sets = [t for t, _ in TINY], [lab for _, lab in TINY]
    wide = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    wide.fit([look_alikes(t)["fullwidth"] for t in texts], label_sets)
    ascii_fit = resolve_model(run_dir)
    assert wide.thresholds_ == ascii_fit.thresholds_
    assert (wide.predict_proba(texts) == ascii_fit.predict_proba(texts)).all()


def test_a_model_reads_text_as_it_did_when_it_was_fitted(run_dir, tmp_path):
    from conftest import TINY, look_alikes

    from stancelab.models.base import MANIFEST, TEXT_FORM
    from stancelab.models.registry import load_model

    plain = "We will strike back if they fire on our flag again."
    wide = look_alikes(plain)["fullwidth"]
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["text_form"] == TEXT_FORM
    before = tmp_path / "before"  # as a stancelab before text forms saved it
    shutil.copytree(run_dir, before)
    del manifest["text_form"]
    (before / MANIFEST).write_text(json.dumps(manifest))
    old = load_model(before)
    assert old.text_form_ is None
    assert (old.predict_proba([wide]) != old.predict_proba([plain])).any()  # as given
    assert (old.predict_proba([plain]) == load_model(run_dir).predict_proba([plain])).all()
    assert "text_form" not in json.loads((old.save(tmp_path / "resaved") / MANIFEST).read_text())
    with pytest.raises(InputError, match="no positive example"):  # a failed refit
        old.fit(["We will strike back.", "Talks resumed."], [["threat"], []])
    assert old.text_form_ is None  # changes nothing
    old.fit([t for t, _ in TINY], [lab for _, lab in TINY])  # a new fit reads this form
    assert old.text_form_ == TEXT_FORM
    assert (old.predict_proba([wide]) == old.predict_proba([plain])).all()

    manifest["text_form"] = "lower-case"
    (before / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="reads text as 'lower-case', which this stancelab"):
        load_model(before)


def test_resume_of_a_checkpoint_from_before_and_of_another_text_form(run_dir, tmp_path):
    model = resolve_model(run_dir)
    source = tmp_path / "in.txt"
    source.write_text("".join(f"We will strike back, says statement {i}.\n" for i in range(40)))
    out = tmp_path / "o.jsonl"
    meta = out.with_name(out.name + ".part.json")
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=8, progress=False)
    checkpoint = json.loads(meta.read_text())
    assert checkpoint["splitting"] is None and checkpoint["text_form"] == model.text_form_
    meta.write_text(json.dumps({**checkpoint, "text_form": None}))  # read as given before
    with pytest.raises(InputError, match=r"another input, model.*\(different: text_form\)"):
        stream.predict_file(model, source, out, resume=True, progress=False)
    del checkpoint["splitting"]  # not in a line-by-line checkpoint of 1cbfc82: resumes
    meta.write_text(json.dumps(checkpoint))
    stream.predict_file(model, source, out, resume=True, progress=False)
    assert len(read_rows(out)) == 40


def test_resume_refuses_documents_split_by_an_earlier_stancelab(run_dir, tmp_path):
    model = resolve_model(run_dir)
    article = tmp_path / "articles.jsonl"
    article.write_text((json.dumps({"text": ARTICLE}) + "\n") * 40, encoding="utf-8")
    out = tmp_path / "doc.jsonl"
    with predict_interrupted_at_chunk(2), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, article, out, documents=True, chunk_size=8, progress=False)
    meta = out.with_name(out.name + ".part.json")
    checkpoint = json.loads(meta.read_text())
    assert checkpoint["splitting"] == 2
    del checkpoint["splitting"]  # as 1cbfc82 wrote it
    meta.write_text(json.dumps(checkpoint))
    with pytest.raises(InputError, match="split into sentences by an earlier stancelab"):
        stream.predict_file(model, article, out, documents=True, resume=True, progress=False)


ARABIC = "سنرد بكل قوة إذا هاجموا حدودنا مرة أخرى."  # "we will respond with full force if ..."


def test_a_text_not_in_latin_letters_is_flagged_everywhere(run_dir, tmp_path):
    from stancelab.errors import ForeignScriptWarning

    named = r"1 of 2 text\(s\) are mostly not in Latin letters, .*the first is text 1: 'سنرد"
    with pytest.warns(ForeignScriptWarning, match=named) as caught:
        english, arabic = predict(["We will strike back.", ARABIC], model=run_dir)
    assert caught[0].filename == __file__  # points at the caller's line
    assert arabic.foreign_script and not english.foreign_script
    assert arabic.to_dict()["foreign_script"] is True and "foreign_script" not in english.to_dict()
    assert "foreign script" in str(arabic) and "foreign script" not in str(english)
    with pytest.warns(ForeignScriptWarning, match="1 of 3 sentence.*first is sentence 2") as w:
        sentences = predict_document(f"1. We will strike back. {ARABIC}", model=run_dir)
    assert [s.foreign_script for s in sentences] == [False, False, True]
    assert w[0].filename == __file__

    source = tmp_path / "in.jsonl"
    texts = ["We will strike back.", ARABIC, "", "我们将全力反击。"]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForeignScriptWarning)  # rows flag them instead
        summary = stream.predict_file(resolve_model(run_dir), source, tmp_path / "o.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r.get("foreign_script") for r in rows] == [None, True, None, True]
    assert "error" in rows[2] and summary.foreign_script == 2
    assert '2 row(s) mostly not in Latin letters (marked "foreign_script": true' in str(summary)

    ran = run_cli("--model", str(run_dir), "We will strike back.", ARABIC)
    assert ran.returncode == 0, ran.stderr
    table = ran.stdout.splitlines()[2:]
    assert table[0].endswith("  We will strike back.") and "(foreign script) سنرد" in table[1]
    assert ran.stderr.startswith("warning: 1 of 2 text(s) are mostly not in Latin letters")
    assert len(ran.stderr.strip().splitlines()) == 1


def test_a_resumed_summary_counts_the_flagged_rows_written_before(run_dir, tmp_path):
    source = tmp_path / "many.jsonl"
    texts = [ARABIC if i in (2, 25) else f"We will respond {i}." for i in range(30)]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    model, out = resolve_model(run_dir), tmp_path / "out.jsonl"
    with predict_interrupted_at_chunk(2), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=7, progress=False)
    summary = stream.predict_file(model, source, out, chunk_size=7, resume=True, progress=False)
    assert (summary.records, summary.rows, summary.foreign_script) == (23, 30, 2)


FURNITURE_ONLY = [  # what --documents drops as page furniture, whole records of it too
    {"id": "s1", "text": "We will strike back"},
    {"id": "s2", "text": "Credit: the Ministry will respond with force."},
    {"id": "s3", "text": "Read more: we will retaliate against any attack."},
    {"id": "s4", "text": "We will respond.\n\nPakistan"},
]


def test_documents_count_and_keep_every_line_they_drop(run_dir, tmp_path):
    model = resolve_model(run_dir)
    source = tmp_path / "st.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in FURNITURE_ONLY), encoding="utf-8")
    out, side = tmp_path / "out.jsonl", tmp_path / "out.dropped.jsonl"
    summary = stream.predict_file(model, source, out, documents=True, progress=False)
    assert [r["text"] for r in read_rows(out)] == ["We will strike back", "We will respond."]
    assert [(r["line"], r["doc_id"], r["reason"], r["text"]) for r in read_rows(side)] == [
        (2, "s2", "photo credit", "Credit: the Ministry will respond with force."),
        (3, "s3", "read-more link", "Read more: we will retaliate against any attack."),
        (4, "s4", "short tag line", "Pakistan"),
    ]
    assert summary.no_sentence == 2 and summary.dropped_output == str(side)
    assert summary.dropped == {"photo credit": 1, "read-more link": 1, "short tag line": 1}
    assert (
        "2 record(s) with no sentence left (every line dropped); 3 furniture line(s) dropped "
        f"(1 photo credit, 1 read-more link, 1 short tag line) -> {side}; "
    ) in str(summary)
    # the side file is an output like OUT: one that exists is refused, nothing written
    out.unlink()
    with pytest.raises(InputError, match="out.dropped.jsonl: exists; pass --overwrite"):
        stream.predict_file(model, source, out, documents=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [side.name, source.name]
    source.write_text(json.dumps({"text": "We deny it."}) + "\n", encoding="utf-8")
    stream.predict_file(model, source, out, documents=True, overwrite=True, progress=False)
    assert len(read_rows(out)) == 1 and side.read_text() == ""  # replaced, in step with OUT
    lines = stream.predict_file(model, source, tmp_path / "lines.jsonl", progress=False)
    assert lines.dropped_output == "" and not (tmp_path / "lines.dropped.jsonl").exists()

    found = predict_document("Credit: the Ministry will respond with force.", model=run_dir)
    assert found == [] and [d.reason for d in found.dropped] == ["photo credit"]
    ran = run_cli("--model", str(run_dir), "--documents", "--json", FURNITURE_ONLY[2]["text"])
    assert ran.returncode == 0 and json.loads(ran.stdout) == []
    assert ran.stderr.splitlines() == [
        "text 1: dropped (read-more link): Read more: we will retaliate against any attack.",
        "text 1: no sentence left to label (every line dropped)",
    ]


def test_outputs_named_alike_keep_side_files_of_their_own(run_dir, tmp_path):
    # cutting the last suffix named both run.v1's and run.v2's run.dropped.jsonl: the second
    # run was refused, and with --overwrite replaced the first run's side file
    model = resolve_model(run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": ARTICLE}) + "\n", encoding="utf-8")
    sides = []
    for name in ("run.v1", "run.v2", "run", "run.jsonl"):
        summary = stream.predict_file(
            model, source, tmp_path / name, documents=True, progress=False
        )
        sides.append(Path(summary.dropped_output))
    names = [side.name for side in sides]
    assert names == ["run.v1.dropped", "run.v2.dropped", "run.dropped", "run.dropped.jsonl"]
    assert all(len(read_rows(side)) == 2 for side in sides)


SIDE_CASES = ["its own", "a line-mode output", "the input", "being written", "beside lines"]


@pytest.mark.parametrize("case", SIDE_CASES)
def test_a_line_mode_overwrite_removes_only_the_side_file_of_the_output_it_replaces(
    run_dir, tmp_path, case
):
    from stancelab.files import output_lock

    model = resolve_model(run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": ARTICLE}) + "\n", encoding="utf-8")
    out, side = tmp_path / "out.jsonl", tmp_path / "out.dropped.jsonl"
    stream.predict_file(model, source, out, documents=True, progress=False)
    if case == "a line-mode output":  # a file of that name that is no side file
        stream.predict_file(model, source, side, overwrite=True, progress=False)
    elif case == "beside lines":  # the out beside it was written in line mode
        stream.predict_file(model, source, tmp_path / "lines.jsonl", progress=False)
        (tmp_path / "lines.jsonl").replace(out)
    kept = side.read_bytes()
    given = side if case == "the input" else source
    with output_lock(side) if case == "being written" else contextlib.nullcontext():
        summary = stream.predict_file(model, given, out, overwrite=True, progress=False)
    assert "doc_id" not in read_rows(out)[0]  # replaced by line-mode rows
    if case == "its own":  # it described the output replaced: removed with it, and said so
        assert not side.exists()
        assert f"removed {side} (the lines dropped from the output replaced); " in str(summary)
    else:
        assert side.read_bytes() == kept and "removed" not in str(summary)


def test_a_line_mode_overwrite_removes_the_side_file_of_an_output_with_no_row(run_dir, tmp_path):
    # a --documents run that dropped every line wrote an empty OUT: its side file stayed
    # beside the line-mode output that replaced it, describing a run no longer there
    model = resolve_model(run_dir)
    furniture = tmp_path / "furniture.jsonl"
    furniture.write_text(
        "".join(json.dumps(r) + "\n" for r in FURNITURE_ONLY[1:3]), encoding="utf-8"
    )
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "We deny it."}) + "\n", encoding="utf-8")
    out, side = tmp_path / "out.jsonl", tmp_path / "out.dropped.jsonl"
    stream.predict_file(model, furniture, out, documents=True, progress=False)
    assert out.read_bytes() == b"" and len(read_rows(side)) == 2
    summary = stream.predict_file(model, source, out, overwrite=True, progress=False)
    assert not side.exists() and f"removed {side} " in str(summary)
    side.write_bytes(b"")  # an empty file beside an empty OUT proves nothing: kept
    out.write_bytes(b"")
    stream.predict_file(model, source, out, overwrite=True, progress=False)
    assert side.exists()


SIDE_EDITS = ["none", "side file renamed into place", "side part edited", "old checkpoint"]


@pytest.mark.parametrize("edit", SIDE_EDITS)
def test_a_resumed_documents_run_keeps_its_side_file_in_step(run_dir, tmp_path, edit):
    model = resolve_model(run_dir)
    source = tmp_path / "articles.jsonl"
    texts = [ARTICLE if i % 3 else "Credit: the Ministry will respond." for i in range(30)]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    reference = tmp_path / "reference.jsonl"
    stream.predict_file(model, source, reference, documents=True, chunk_size=7, progress=False)

    out = tmp_path / "out.jsonl"
    side, side_part = tmp_path / "out.dropped.jsonl", tmp_path / "out.dropped.jsonl.part"
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, documents=True, chunk_size=7, progress=False)
    assert len(read_rows(side_part)) == 5 + 9 * 2  # of 14 records: two per article, one else
    meta = out.with_name(out.name + ".part.json")
    if edit == "side file renamed into place":  # stopped between its two renames
        side_part.rename(side)
        with pytest.raises(InputError, match="partial output exists; pass --resume"):
            stream.predict_file(model, source, out, documents=True, progress=False)
    elif edit == "side part edited":
        side_part.write_bytes(side_part.read_bytes().replace(b"Credit", b"Kredit", 1))
    elif edit == "old checkpoint":  # begun by a stancelab that kept no side file
        checkpoint = json.loads(meta.read_text())
        del checkpoint["side_file"]
        meta.write_text(json.dumps(checkpoint))
    resume = dict(documents=True, chunk_size=7, resume=True, progress=False)
    if edit in ("side part edited", "old checkpoint"):
        message = (
            "out.dropped.jsonl.part: its first \\d+ bytes are not those its checkpoint"
            if edit == "side part edited"
            else "out.jsonl.part: was begun by an earlier stancelab, which kept no side file"
        )
        with pytest.raises(InputError, match=message):
            stream.predict_file(model, source, out, **resume)
        assert not out.exists() and not side.exists()
        return
    summary = stream.predict_file(model, source, out, **resume)
    assert out.read_bytes() == reference.read_bytes()
    assert side.read_bytes() == (tmp_path / "reference.dropped.jsonl").read_bytes()
    assert summary.resumed_from == 14 and summary.no_sentence == 10
    assert summary.dropped == {"photo credit": 10, "read-more link": 20, "share widget": 20}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == [
        "out.dropped.jsonl",
        "out.jsonl",
    ]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (  # a record without an id is named line1: the id given on line 3
            [
                {"text": "We will strike."},
                {"text": "We deny it."},
                {"id": "line1", "text": "We will strike."},
            ],
            r"in.jsonl:3: document id 'line1' is also that of \S+in.jsonl:1 \(no id: named line1\)",
        ),
        (
            [{"id": "line3", "text": "We will strike."}, {"text": "No."}, {"text": "We deny it."}],
            r"in.jsonl:3 \(no id: named line3\): document id 'line3' is also that of \S+:1;",
        ),
        (
            [
                {"id": "a", "text": "We will strike."},
                {"id": "b", "text": "x"},
                {"id": "a", "text": "y"},
            ],
            r"in.jsonl:3: document id 'a' is also that of \S+in.jsonl:1; give each document",
        ),
    ],
)
def test_documents_refuse_two_records_that_would_share_sentence_ids(
    run_dir, tmp_path, records, message
):
    from stancelab.annotation.tasks import read_predictions

    model = resolve_model(run_dir)
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        stream.predict_file(model, source, out, documents=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # nothing written
    ran = run_cli("--model", str(run_dir), "--documents", "-i", str(source), "-o", str(out))
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1 and "in.jsonl:3" in ran.stderr
    # given distinct ids, every sentence id is unique: label push reads the output
    records[-1]["id"] = "c"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    stream.predict_file(model, source, out, documents=True, progress=False)
    predictions, _ = read_predictions(out)
    assert len(predictions) == len(read_rows(out)) == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_line_mode_refuses_an_id_given_twice_naming_both_lines(run_dir, tmp_path, suffix):
    """Each record is one row with its own id, or none: two rows of one id would be matched
    as one (label push --predictions refused such an output, after the run). A record
    without an id is not named, so none clashes with it; a bad record keeps its id in its
    error row, so it counts. Refused before anything is written, as --documents does."""
    import csv

    from stancelab.annotation.tasks import read_predictions

    records = [
        ("a", "We will strike."),
        ("", "We deny it."),
        ("", "Talks resumed."),
        ("b", ""),  # an error row, with its id
        ("b", "We will retaliate."),
    ]
    source, out = tmp_path / f"in{suffix}", tmp_path / "out.jsonl"

    def write(rows) -> None:
        with open(source, "w", encoding="utf-8", newline="") as f:
            if suffix == ".csv":
                csv.writer(f).writerows([("id", "text"), *rows])
            else:
                f.writelines(json.dumps({"id": i or None, "text": t}) + "\n" for i, t in rows)

    write(records)
    first = 4 + (suffix == ".csv")  # the header is line 1
    refused = (
        f"error: {source}:{first + 1}: id 'b' is also that of {source}:{first}; give each "
        "record its own id (output rows are matched on it), or rename the column or key if "
        "it is not a record's own (a speaker's, a document's): it is then carried as meta\n"
    )
    ran = run_cli("--model", str(run_dir), "-i", str(source), "-o", str(out))
    assert (ran.returncode, ran.stderr) == (1, refused)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]  # nothing written
    out.write_text("mine\n", encoding="utf-8")
    ran = run_cli("--model", str(run_dir), "-i", str(source), "-o", str(out), "--overwrite")
    assert (ran.returncode, ran.stderr) == (1, refused)
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name, "out.jsonl"]
    # given distinct ids, an interrupted run resumes (the ids are checked again) and label
    # push reads every good row
    write([*records[:-1], ("c", "We will retaliate.")])
    out.unlink()
    model = resolve_model(run_dir)
    with predict_interrupted_at_chunk(2), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=2, progress=False)
    summary = stream.predict_file(model, source, out, resume=True, chunk_size=2, progress=False)
    assert summary.resumed_from == 2 and summary.rows == 5 and summary.errors == 1
    predictions, skipped = read_predictions(out)
    assert sorted(predictions) == ["a", "c"] and skipped == {"error": 1, "no id": 2}


def test_a_side_files_name_held_by_another_runs_partial_output_is_named(run_dir, tmp_path):
    model = resolve_model(run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": ARTICLE}) + "\n" for _ in range(20)), "utf-8")
    # a line-mode run to out.dropped.jsonl, stopped: its out.dropped.jsonl.part is its own
    other = tmp_path / "out.dropped.jsonl"
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, other, chunk_size=7, progress=False)
    kept = (tmp_path / "out.dropped.jsonl.part").read_bytes()
    out = tmp_path / "out.jsonl"  # its side file is out.dropped.jsonl
    for options in ({}, {"resume": True}):
        with pytest.raises(InputError) as refused:
            stream.predict_file(model, source, out, documents=True, progress=False, **options)
        assert str(refused.value).startswith(f"{tmp_path / 'out.dropped.jsonl.part'}: ")
        assert "an interrupted run of --output out.dropped.jsonl?" in str(refused.value)
    assert (tmp_path / "out.dropped.jsonl.part").read_bytes() == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.jsonl",
        "out.dropped.jsonl.part",
        "out.dropped.jsonl.part.json",
    ]


def test_other_input_fields_are_carried_to_each_row_as_meta(run_dir, tmp_path):
    """An analyst's columns (date, source, an annotator's labels) come back with each row,
    under "meta", so that no field meets a prediction's (labels, scores) and no join is
    needed; a text's fields also reach each of its sentences, and an error row."""
    from stancelab.annotation.tasks import read_predictions

    model = resolve_model(run_dir)
    source = tmp_path / "in.csv"
    source.write_text(
        "date,id,text,labels,\n"  # a spreadsheet's blank trailing column
        '2024-01-02,a,"We will strike back if they attack.",threat,\n'
        "2024-01-03,b,,denial,\n"
        '2024-01-04,,"They denied it, again.",,\n'
        '\xe9t\xe9,c,"We deny it.",,\n',
        encoding="latin-1",  # the last date as a cp1252 spreadsheet writes it: not UTF-8
    )
    out = tmp_path / "csv.jsonl"
    stream.predict_file(model, source, out, progress=False)
    rows = read_rows(out)
    assert [r.get("meta") for r in rows] == [
        {"date": "2024-01-02", "labels": "threat"},
        {"date": "2024-01-03", "labels": "denial"},
        {"date": "2024-01-04", "labels": ""},
        {"date": "\\xe9t\\xe9", "labels": ""},  # the bytes it could not decode, spelled out
    ]
    assert "labels" in rows[3] and "error" not in rows[3]
    assert set(rows[0]["labels"]) <= set(LABELS) and "error" in rows[1]
    assert list(rows[0])[-1] == "meta"

    source = tmp_path / "in.jsonl"
    records = [
        {"id": "x", "text": "We deny the claims.", "source": {"outlet": "Dawn", "page": 3}},
        {"id": "y", "text": "Talks resume.", "tags": ["talks"], "score": None},
        {"id": "z", "text": "No other field."},
        {"id": "w", "text": "Bad field.", "note": "\ud800"},  # a lone surrogate, escaped
        {"id": "v", "text": "Talks resume.", "reading": math.nan, "peak": [-math.inf, 1.5]},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "jsonl.jsonl"
    summary = stream.predict_file(model, source, out, progress=False)
    rows = read_rows(out)
    assert rows[0]["meta"] == {"source": {"outlet": "Dawn", "page": 3}}
    assert rows[1]["meta"] == {"tags": ["talks"], "score": None}
    assert "meta" not in rows[2]  # no other field: no key
    # a field that cannot be written as UTF-8 is spelled out; the record is still labelled
    assert rows[3]["meta"] == {"note": "\\ud800"} and "labels" in rows[3]
    # NaN and Infinity (which Python's JSON reader takes in) are null, as JSON.stringify writes
    # them: every line is strict JSON, which jq, browsers and Label Studio read
    assert rows[4]["meta"] == {"reading": None, "peak": [None, 1.5]} and "labels" in rows[4]
    written = out.read_text(encoding="utf-8")
    assert "NaN" not in written and "Infinity" not in written
    assert summary.errors == 0
    predictions, _ = read_predictions(out)  # label push reads such rows
    assert sorted(predictions) == ["v", "w", "x", "y", "z"]

    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": "d", "text": ARTICLE, "outlet": "Dawn"}) + "\n", "utf-8")
    out = tmp_path / "docs-out.jsonl"
    stream.predict_file(model, source, out, documents=True, progress=False)
    rows = read_rows(out)
    assert len(rows) == 4 and all(r["meta"] == {"outlet": "Dawn"} for r in rows)
    dropped = read_rows(tmp_path / "docs-out.dropped.jsonl")
    assert dropped and all("meta" not in r for r in dropped)


def test_a_run_begun_before_other_fields_were_kept_is_not_continued_with_them(run_dir, tmp_path):
    model = resolve_model(run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"text": f"We will strike, says {i}.", "day": i}) + "\n" for i in range(40)
        )
    )
    out = tmp_path / "o.jsonl"
    meta = out.with_name(out.name + ".part.json")
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=8, progress=False)
    checkpoint = json.loads(meta.read_text())
    assert checkpoint["other_fields"] == "meta"
    del checkpoint["other_fields"]  # as an earlier stancelab wrote it: its rows have no meta
    meta.write_text(json.dumps(checkpoint))
    with pytest.raises(InputError, match="an earlier stancelab, which dropped the input's other"):
        stream.predict_file(model, source, out, resume=True, progress=False)


def test_meta_carries_only_the_fields_named_or_none(run_dir, tmp_path):
    """--meta FIELD,... keeps those of a record's other fields (a page's raw HTML need not
    be repeated on every row), --no-meta none; the rows are otherwise those of a run that
    carries all, sentence rows of --documents and error rows too."""
    model = resolve_model(run_dir)
    source = tmp_path / "in.csv"
    source.write_text(
        "date,id,text,source,html\n"
        '2024-01-02,a,"We will strike back if they attack.",Dawn,<p>1</p>\n'
        "2024-01-03,b,,Reuters,<p>2</p>\n",
        encoding="utf-8",
    )
    everything = tmp_path / "all.jsonl"
    stream.predict_file(model, source, everything, progress=False)
    out = tmp_path / "two.jsonl"
    stream.predict_file(model, source, out, meta="source,date", progress=False)
    rows = read_rows(out)
    assert [r["meta"] for r in rows] == [
        {"date": "2024-01-02", "source": "Dawn"},  # in the input's order
        {"date": "2024-01-03", "source": "Reuters"},  # an error row's too
    ]
    assert [{**r, "meta": None} for r in rows] == [
        {**r, "meta": None} for r in read_rows(everything)
    ]
    again = tmp_path / "again.jsonl"  # one choice, however it is written
    stream.predict_file(model, source, again, meta=[" date", "source", "date"], progress=False)
    assert again.read_bytes() == out.read_bytes()
    none = tmp_path / "none.jsonl"
    stream.predict_file(model, source, none, meta=[], progress=False)
    assert [r for r in read_rows(none)] == [
        {k: v for k, v in r.items() if k != "meta"} for r in rows
    ]

    source = tmp_path / "docs.jsonl"  # a field only some records have: theirs only
    records = [
        {"id": "d", "text": ARTICLE, "outlet": "Dawn", "html": "<p>" * 50},
        {"id": "e", "text": "Talks resume. We deny the claims.", "html": "<p>"},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "docs-out.jsonl"
    stream.predict_file(model, source, out, documents=True, meta=["outlet"], progress=False)
    rows = read_rows(out)
    assert len(rows) == 6 and [r.get("meta") for r in rows] == [{"outlet": "Dawn"}] * 4 + [None] * 2

    cli = run_cli(
        "--model", str(run_dir), "--input", str(source), "--output", str(tmp_path / "c.jsonl"),
        "--documents", "--no-progress", "--meta", "outlet",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "c.jsonl").read_bytes() == out.read_bytes()
    cli = run_cli(
        "--model", str(run_dir), "--input", str(source), "--output", str(tmp_path / "n.jsonl"),
        "--no-progress", "--no-meta",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert all("meta" not in r for r in read_rows(tmp_path / "n.jsonl"))


@pytest.mark.parametrize(
    "args, error",
    [
        (["--meta", ""], "error: --meta '': an empty field name; name the fields to carry as"),
        (["--meta", "date,"], "error: --meta 'date,': an empty field name;"),
        (["--meta", "text"], "error: --meta text: 'text' is a row's own key, not meta;"),
        (["--meta", "a", "--no-meta"], "error: give either --meta FIELD,... (those fields) or"),
    ],
)
def test_a_bad_meta_option_is_one_line(run_dir, tmp_path, args, error):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "We deny it.", "date": 1}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    cli = run_cli("--model", str(run_dir), "--input", str(source), "--output", str(out), *args)
    assert cli.returncode == 1 and cli.stderr.startswith(error), cli.stderr
    assert len(cli.stderr.splitlines()) == 1 and not out.exists()


def test_a_meta_field_no_record_has_is_refused_before_anything_is_written(run_dir, tmp_path):
    """A misspelt field would be left out of every row in silence: the input is read
    through before anything is written anyway (for repeated ids), and that pass finds it."""
    model = resolve_model(run_dir)
    source = tmp_path / "in.csv"
    source.write_text('date,id,text,source\n2024-01-02,a,"We deny it.",Dawn\n', "utf-8")
    with pytest.raises(InputError) as refused:
        stream.predict_file(model, source, tmp_path / "o.jsonl", meta="date,sorce,x")
    assert str(refused.value) == (
        f"{source}:1: no columns 'sorce', 'x' (--meta); its other columns: 'date', 'source'"
    )
    spaced = tmp_path / "spaced.csv"  # a spreadsheet's header "date, source": a name matches
    spaced.write_text('id,text, source ,date\na,"We deny it.",Dawn,2024-01-02\n', "utf-8")
    out = tmp_path / "spaced.jsonl"
    stream.predict_file(model, spaced, out, meta="source", progress=False)
    assert read_rows(out)[0]["meta"] == {" source ": "Dawn"}  # the key as the header gives it
    out.unlink()
    source = tmp_path / "in.jsonl"
    lines = [{"text": "We deny it.", "day": 1}, {"text": "We will strike.", "html": "<p>"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    for documents in (False, True):
        with pytest.raises(InputError) as refused:
            stream.predict_file(model, source, tmp_path / "o.jsonl", documents=documents, meta="dy")
        assert str(refused.value) == (
            f"{source}: no record has the field 'dy' (--meta); the other fields of its "
            "records: 'day', 'html'"
        )
    text = tmp_path / "in.txt"
    text.write_text("We deny it.\n", encoding="utf-8")
    with pytest.raises(InputError, match="a .txt input has no field but its text"):
        stream.predict_file(model, text, tmp_path / "o.jsonl", meta="day")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.csv",
        "in.jsonl",
        "in.txt",
        "spaced.csv",
    ]
    stream.predict_file(
        model, text, tmp_path / "o.jsonl", meta=[], progress=False
    )  # nothing to drop


def test_resume_refuses_a_run_begun_with_other_meta_fields(run_dir, tmp_path):
    """One output never mixes rows that carry different fields."""
    model = resolve_model(run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"text": f"We will strike, says {i}.", "day": i, "html": "<p>"}) + "\n"
            for i in range(40)
        )
    )
    reference = tmp_path / "reference.jsonl"
    stream.predict_file(model, source, reference, chunk_size=8, meta="day", progress=False)
    out = tmp_path / "o.jsonl"
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, chunk_size=8, meta="day", progress=False)
    part = out.with_name(out.name + ".part")
    kept = part.read_bytes()
    for other, carried in [
        (None, "every other field (no --meta)"),
        ([], "no other field (--no-meta)"),
        ("day,html", "only day, html (--meta day,html)"),
    ]:
        with pytest.raises(InputError) as refused:
            stream.predict_file(model, source, out, resume=True, meta=other, progress=False)
        assert str(refused.value) == (
            f"{part}: its rows carry only day (--meta day), this run's would carry {carried}, "
            "and one output never mixes the two; resume with the same choice, or run with "
            "--overwrite to start over"
        )
        assert part.read_bytes() == kept and not out.exists()
    stream.predict_file(model, source, out, resume=True, meta="day", progress=False)
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("documents", [False, True])
def test_a_fifo_as_input_is_refused_before_it_is_opened(run_dir, tmp_path, documents):
    """An input is read more than once (ids checked, records counted, then labelled): a FIFO
    would give its records once, and it is not "no such file" either."""
    import os

    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    args = ["--model", str(run_dir), "-i", str(fifo), "-o", str(tmp_path / "out.jsonl")]
    ran = subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "predict", *args]
        + (["--documents"] if documents else []),
        capture_output=True,
        text=True,
        timeout=60,  # opening the FIFO would block: a hang fails the test
    )
    assert ran.returncode == 1
    assert ran.stderr.strip() == (
        f"error: {fifo}: not a regular file (a pipe, FIFO or device); save the input to a "
        "file first, as it is read more than once"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_stopped_overwrite_is_not_called_complete_because_the_old_output_is_there(
    run_dir, tmp_path
):
    # --resume said "already complete; nothing to resume" of the OUT the stopped run was
    # replacing: the earlier run's rows, not those of the run asked for
    model = resolve_model(run_dir)
    old, source = tmp_path / "old.jsonl", tmp_path / "in.jsonl"
    old.write_text(json.dumps({"text": "We deny it."}) + "\n", encoding="utf-8")
    source.write_text("".join(json.dumps({"text": ARTICLE}) + "\n" for _ in range(20)), "utf-8")
    out = tmp_path / "out.jsonl"
    stream.predict_file(model, old, out, documents=True, progress=False)
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(
            model, source, out, documents=True, overwrite=True, chunk_size=7, progress=False
        )
    with pytest.raises(InputError) as refused:
        stream.predict_file(model, source, out, documents=True, resume=True, progress=False)
    assert str(refused.value) == (
        f"{out}: the run stopped while replacing it (its checkpoint out.jsonl.part.json) was "
        "given --overwrite; continue it with --resume --overwrite"
    )
    assert len(read_rows(out)) == 1
    summary = stream.predict_file(
        model, source, out, documents=True, resume=True, overwrite=True, progress=False
    )
    assert summary.resumed_from == 14 and len(read_rows(out)) == summary.rows > 20


@pytest.mark.parametrize("out_name", ["out.jsonl", "out"])
def test_an_output_named_as_an_interrupted_runs_side_file_names_that_run(
    run_dir, tmp_path, out_name
):
    # the other way round: its part file is the side part of a stopped --documents run,
    # which was called this run's own, and the advice (--resume, then --overwrite) replaced
    # it, so that run could not be resumed
    model = resolve_model(run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": ARTICLE}) + "\n" for _ in range(20)), "utf-8")
    out = tmp_path / out_name
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, documents=True, chunk_size=7, progress=False)
    side = dropped_path(out)
    side_part = side.with_name(side.name + ".part")
    kept = side_part.read_bytes()
    for options in ({}, {"resume": True}, {"documents": True}):
        with pytest.raises(InputError) as refused:
            stream.predict_file(model, source, side, progress=False, **options)
        assert str(refused.value).startswith(f"{side_part}: holds the dropped lines of ")
        assert f"interrupted --documents run of --output {out_name} " in str(refused.value)
    assert side_part.read_bytes() == kept and not side.exists()
    summary = stream.predict_file(model, source, out, documents=True, resume=True, progress=False)
    assert summary.resumed_from == 14 and len(read_rows(side)) == 40


def test_an_empty_side_part_of_a_stopped_run_is_still_that_runs(run_dir, tmp_path):
    """A stopped --documents run that has dropped no line yet has an empty side part: it was
    taken as free, so a line-mode run to out.dropped.jsonl wrote there, and the stopped run
    could not be resumed ("out.dropped.jsonl: exists")."""
    model = resolve_model(run_dir)
    clean = "The minister said the army will retaliate. He denied that troops shelled it.\n"
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": clean}) + "\n" for _ in range(20)), "utf-8")
    out, other = tmp_path / "out.jsonl", tmp_path / "other.jsonl"
    other.write_text(json.dumps({"text": "We deny it."}) + "\n", encoding="utf-8")
    side = dropped_path(out)
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, source, out, documents=True, chunk_size=7, progress=False)
    assert side.with_name(side.name + ".part").read_bytes() == b""
    with pytest.raises(InputError) as refused:
        stream.predict_file(model, other, side, progress=False)
    assert str(refused.value).startswith(
        f"{side}: is the side file of an interrupted --documents run of --output out.jsonl "
    )
    assert not side.exists()
    summary = stream.predict_file(model, source, out, documents=True, resume=True, progress=False)
    assert summary.resumed_from == 14 and read_rows(side) == []


def test_an_empty_part_with_another_runs_checkpoint_is_not_taken_as_a_side_part(run_dir, tmp_path):
    """The other way round: a --documents run to out.dropped.jsonl stopped while every line
    so far was dropped has an empty part file and a checkpoint; a --documents run to
    out.jsonl took that part file as its own side part and renamed it into place, and the
    stopped run's --resume then offered to replace out.jsonl's side file."""
    model = resolve_model(run_dir)
    furniture = tmp_path / "furniture.jsonl"
    furniture.write_text(
        "".join(json.dumps({"text": FURNITURE_ONLY[2]["text"]}) + "\n" for _ in range(20)),
        encoding="utf-8",
    )
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "We deny it."}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    side = dropped_path(out)
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(model, furniture, side, documents=True, chunk_size=2, progress=False)
    side_part = side.with_name(side.name + ".part")
    assert side_part.read_bytes() == b""
    with pytest.raises(InputError) as refused:
        stream.predict_file(model, source, out, documents=True, progress=False)
    assert str(refused.value).startswith(f"{side_part}: partial output exists without ")
    assert not out.exists() and not side.exists()
    summary = stream.predict_file(
        model, furniture, side, documents=True, resume=True, progress=False
    )
    assert summary.resumed_from == 4 and read_rows(side) == []


@pytest.mark.parametrize("name", ["nosuch", "nosuch.pdf", "nosuch.jsonl", "held.csv"])
def test_a_missing_input_is_no_such_file_whatever_its_name(tmp_path, name):
    from stancelab.corpus.readers import read_records
    from stancelab.prediction.ray_files import input_files

    missing = tmp_path / name
    for read in (lambda: next(read_records(missing)), lambda: input_files(missing)):
        with pytest.raises(InputError) as refused:
            read()
        assert str(refused.value) == f"{missing}: no such file"


@pytest.mark.parametrize("engine", ["local", "ray"])
@pytest.mark.parametrize("documents", [[], ["--documents"]])
def test_cli_input_dash_says_standard_input_is_not_read(
    run_dir, tmp_path, monkeypatch, engine, documents
):
    """``--input -``, standard input to a shell user, said "-: no such file"; a missing
    held.csv says "no such file", never a word on its format. Both before Ray starts."""
    monkeypatch.chdir(tmp_path)  # where the command runs, and where a file "-" would be
    out = tmp_path / "out"
    args = ["--model", str(run_dir), "--engine", engine, "--output", str(out), *documents]
    assert not Path("-").exists()  # no file of that name where the command runs
    dash = run_cli(*args, "--input", "-")
    assert dash.returncode == 1 and dash.stderr.splitlines() == [
        "error: '-' is not read from standard input: save the input to a file first and give "
        "--input FILE (.txt, .jsonl or .csv)"
    ]
    missing = run_cli(*args, "--input", str(tmp_path / "held.csv"))
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"error: {tmp_path / 'held.csv'}: no such file"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_the_first_error_row_is_the_first_file_in_the_order_the_folder_is_read(tmp_path):
    """A folder's files are read in ``walk_folder``'s order, by path component:
    ``2024/a.txt`` before ``2024-old/a.txt`` ("-" sorts before "/" in a string, which
    named ``2024-old`` first)."""
    for name in ("2024-old/a.txt", "2024/a.txt", "2024 b/a.txt", "2024.x/a.txt"):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_text("We will strike back.")
    read = [str(p) for p in walk_folder(tmp_path, (".txt",)).read]
    errors = [{"path": path, "line": 1, "error": "x"} for path in reversed(read)]
    assert [e["path"] for e in sorted(errors, key=input_order)] == read
    assert min(errors, key=input_order)["path"] == str(tmp_path / "2024/a.txt")


def test_cli_a_jsonl_key_with_a_byte_that_is_not_utf8_is_spelled_out(run_dir, tmp_path):
    """A key holding a cp1252 byte: in a row with no text, the error row names the row's
    fields, and the byte crashed its writing ("'utf-8' codec can't encode character
    '\\udce9'"); in a row with a text, the field is kept with its key spelled out."""
    source = tmp_path / "keys.jsonl"
    source.write_bytes(b'{"b\xe9": 1}\n{"id": "t", "text": "We will strike.", "k\xe9y": 2}\n')
    out = tmp_path / "out.jsonl"
    ran = run_cli("--model", str(run_dir), "--input", str(source), "--output", str(out))
    assert ran.returncode == 0, ran.stderr
    assert "1 error row(s)" in ran.stdout
    bad, fine = read_rows(out)
    assert bad["error"] == "no 'text' field (its fields: b\\xe9)" and bad["meta"] == {"b\\xe9": 1}
    assert fine["id"] == "t" and "labels" in fine and fine["meta"] == {"k\\xe9y": 2}
