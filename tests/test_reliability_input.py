"""Issue #17: bad input gets the same treatment on every path (items 2, 6, 9 and 10).

What stancelab writes it reads back (item 2); CSV rows with extra fields and byte order
marks (item 6); lone surrogates and undecodable arguments (item 9); one-line errors, empty
batches and zero-width text (item 10).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY
from reliability_common import one_error_line, stancelab

from stancelab.annotation.gold import update_gold
from stancelab.annotation.tasks import read_predictions
from stancelab.config import BaselineParams
from stancelab.corpus.ingest import ingest
from stancelab.data.labelled import load_labelled
from stancelab.errors import InputError
from stancelab.files import iter_jsonl
from stancelab.models.baseline import BaselineModel
from stancelab.prediction.api import resolve_model
from stancelab.prediction.stream import predict_file


def read_jsonl(path: Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)]


# Characters that str.splitlines() breaks at but JSON keeps raw inside a string.
SEPARATORS = ["\u2028", "\u2029", "\x85", "\x1c", "\x0b", "\x0c"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("run") / "baseline")


def export_bytes(texts: list[str]) -> bytes:
    tasks = [
        {
            "id": n,
            "data": {"id": f"s{n}", "doc_id": "d", "text": text},
            "annotations": [
                {
                    "id": n,
                    "completed_by": {"id": 1, "email": "a@x"},
                    "was_cancelled": False,
                    "result": [
                        {
                            "from_name": "labels",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": ["threat"]},
                        }
                    ],
                }
            ],
        }
        for n, text in enumerate(texts)
    ]
    return json.dumps(tasks).encode("utf-8")


# -- item 2: JSONL is read by "\n" only ----------------------------------------------------------


def test_gold_with_line_separators_in_a_text_reads_back(tmp_path):
    texts = [f"We will strike{sep}back." for sep in SEPARATORS]
    gold = tmp_path / "gold.jsonl"
    update_gold(tmp_path / "exports", gold, ("export", export_bytes(texts)))
    assert load_labelled(gold).texts == texts


def test_predict_output_with_line_separators_reads_back(run_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    texts = [f"We will strike{sep}back." for sep in SEPARATORS]
    source.write_text(
        "".join(
            json.dumps({"id": f"s{i}", "text": t}, ensure_ascii=False) + "\n"
            for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    predict_file(resolve_model(run_dir), source, out, progress=False)
    preds, skipped = read_predictions(out)  # what `label push --predictions` reads
    assert sorted(preds) == [f"s{i}" for i in range(len(texts))] and not any(skipped.values())
    assert [row["text"] for row in read_jsonl(out)] == texts


def test_corpus_output_with_line_separators_reads_back(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        json.dumps({"id": "d1", "text": "The army will strike\u2028back. Talks resumed."}) + "\n",
        encoding="utf-8",
    )
    sentences, _ = ingest([docs], tmp_path / "sentences.jsonl")
    rows = read_jsonl(tmp_path / "sentences.jsonl")
    assert [r["text"] for r in rows] == [s.text for s in sentences]
    assert any("\u2028" in r["text"] for r in rows)


# -- item 6: CSV rows wider than the header; byte order marks -------------------------------------

UNQUOTED = 'id,text\n1,We will strike, and we will certainly strike.\n2,"Quoted, fine."\n'


def test_predict_csv_row_with_extra_fields_is_an_error_row(run_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(UNQUOTED, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    rows = read_jsonl(out)
    assert "3 fields but the header has 2" in rows[0]["error"] and "text" not in rows[0]
    assert rows[1]["text"] == "Quoted, fine." and summary.errors == 1


def test_a_csv_row_too_short_to_reach_the_text_column_says_so(run_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text,source\n1\n2,We will strike.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    rows = read_jsonl(out)
    assert rows[0]["error"] == "1 field(s) but the header has 3: no 'text'", rows[0]
    assert rows[1]["text"] == "We will strike." and summary.errors == 1
    with pytest.raises(InputError, match=r"in.csv:2: 1 field\(s\) but the header has 3"):
        ingest([source], tmp_path / "s.jsonl")


def test_corpus_csv_row_with_extra_fields_is_an_error(tmp_path):
    source = tmp_path / "docs.csv"
    source.write_text(UNQUOTED, encoding="utf-8")
    with pytest.raises(InputError, match=r"docs.csv:2: 3 fields but the header has 2"):
        ingest([source], tmp_path / "s.jsonl")


def test_a_csv_header_that_names_a_column_twice_is_refused_not_read_as_the_last(run_dir, tmp_path):
    """csv.DictReader keeps the last of two columns of one name: the first column's text
    would go unread, and the second be labelled in its place. Blank names (a spreadsheet's
    trailing empty columns) are not names, and may repeat."""
    source = tmp_path / "in.csv"
    source.write_text("id,text,text\n1,We will strike them hard.,We deny everything.\n")
    out = tmp_path / "out.jsonl"
    refused = r"in.csv:1: the header names 'text' \(columns 2, 3\) more than once"
    with pytest.raises(InputError, match=refused):
        predict_file(resolve_model(run_dir), source, out, progress=False)
    assert not out.exists()
    with pytest.raises(InputError, match=refused):
        ingest([source], tmp_path / "s.jsonl")
    assert not (tmp_path / "s.jsonl").exists()
    source.write_text("text,,\nWe will strike back.,,\n")
    predict_file(resolve_model(run_dir), source, out, progress=False)
    assert [r["text"] for r in read_jsonl(out)] == ["We will strike back."]


@pytest.mark.parametrize("header", ["id,text", "text,id"])
def test_bom_before_a_csv_header_is_not_part_of_a_name(run_dir, tmp_path, header):
    source = tmp_path / "in.csv"
    row = "x7,We will strike back." if header == "id,text" else "We will strike back.,x7"
    source.write_bytes(b"\xef\xbb\xbf" + f"{header}\n{row}\n".encode())
    out = tmp_path / "out.jsonl"
    predict_file(resolve_model(run_dir), source, out, progress=False)
    (pred,) = read_jsonl(out)
    assert pred["id"] == "x7" and pred["text"] == "We will strike back."
    sentences, _ = ingest([source], tmp_path / "s.jsonl")
    assert {s.doc_id for s in sentences} == {"x7"}


def test_a_jsonl_id_is_a_string_or_a_whole_number_never_a_python_repr(run_dir, tmp_path):
    ids = ['"x1"', "7", "true", "1.5", '{"a": 1}', "[1]", "8.0", "null"]
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(f'{{"id": {i}, "text": "We will strike back."}}\n' for i in ids), encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    rows = read_jsonl(out)
    assert [r.get("id") for r in rows[:2]] == ["x1", "7"] and rows[-1]["id"] is None
    assert [r.get("error") for r in rows[2:6]] == [
        f"'id' must be a string or a whole number, not {kind}"
        for kind in ("bool", "float", "object", "array")
    ]
    assert rows[6]["id"] == "8"  # a whole number written as 8.0 (pandas, for a column with gaps)
    assert summary.errors == 4 and all("text" in r for r in rows[:2] + rows[-2:])
    with pytest.raises(InputError, match=r"in.jsonl:3: 'id' must be a string or a whole number"):
        ingest([source], tmp_path / "s.jsonl")


@pytest.mark.parametrize("name", ["in.txt", "articles"])
def test_a_folder_named_like_an_input_file_is_called_a_folder(run_dir, tmp_path, name):
    # a folder of articles (which --engine ray reads) was an "unsupported input type"
    folder = tmp_path / name
    folder.mkdir()
    with pytest.raises(InputError, match=rf"{name}: a folder, not a file"):
        predict_file(resolve_model(run_dir), folder, tmp_path / "out.jsonl", progress=False)


@pytest.mark.parametrize("name", ["out.csv", "out.JSON", "out.txt"])
def test_a_jsonl_output_named_as_another_format_is_refused(run_dir, tmp_path, name):
    source = tmp_path / "in.txt"
    source.write_text("We will strike back.\n", encoding="utf-8")
    refused = rf"{name}: --output is written as JSON Lines .*; name it .jsonl"
    with pytest.raises(InputError, match=refused):
        predict_file(resolve_model(run_dir), source, tmp_path / name, progress=False)
    with pytest.raises(InputError, match=rf"{name}: --out is written as JSON Lines"):
        ingest([source], tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_bom_at_the_start_of_a_jsonl_file(run_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "text": "We will strike back."}\n')
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    assert summary.errors == 0 and read_jsonl(out)[0]["id"] == "a"
    sentences, _ = ingest([source], tmp_path / "s.jsonl")
    assert {s.doc_id for s in sentences} == {"a"}


# -- item 9: lone surrogates and undecodable arguments ----------------------------------------


def test_lone_surrogate_is_a_value_error_naming_the_index(run_dir):
    from stancelab.prediction.api import predict

    with pytest.raises(ValueError, match="index 1 is not valid Unicode"):
        predict(["We will strike back.", "bad \ud800 text"], model=run_dir)
    with pytest.raises(ValueError, match="not valid Unicode"):
        predict("\ud800", model=run_dir)


def test_lone_surrogate_in_a_file_is_an_error_row(run_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "text": "bad \\ud800 text"}\n{"id": "b", "text": "We will strike back."}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    rows = read_jsonl(out)
    assert "not valid Unicode" in rows[0]["error"] and rows[1]["labels"] is not None
    assert summary.errors == 1
    text_file = tmp_path / "in.txt"
    text_file.write_bytes(b"caf\xff bytes\nWe will strike back.\n")
    out2 = tmp_path / "out2.jsonl"
    predict_file(resolve_model(run_dir), text_file, out2, progress=False)
    rows = read_jsonl(out2)
    assert rows[0]["error"].startswith("'text' has a byte that is not UTF-8 (0xff at character 3)")
    assert "labels" in rows[1]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_refused_whole_as_with_documents_and_corpus(
    run_dir, tmp_path, suffix, encoding
):
    lines = {
        ".txt": "We will strike.\nThey deny it.\n",
        ".jsonl": '{"text": "We will strike."}\n{"text": "They deny it."}\n',
        ".csv": "id,text\n1,We will strike.\n2,They deny it.\n",
    }[suffix]
    source = tmp_path / f"u16{suffix}"
    source.write_bytes(lines.encode(encoding))
    refusal = r"u16\.\w+: looks like a binary file \(contains NUL bytes\), expected UTF-8 text"
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=refusal):
        predict_file(resolve_model(run_dir), source, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]  # nothing written
    if suffix == ".txt":
        with pytest.raises(InputError, match=refusal):
            predict_file(resolve_model(run_dir), source, out, documents=True, progress=False)
    with pytest.raises(InputError, match=refusal):
        ingest([source], tmp_path / "s.jsonl")
    ran = stancelab("predict", "--model", str(run_dir), "-i", str(source), "-o", str(out))
    assert ran.returncode == 1 and "contains NUL bytes" in one_error_line(ran.stderr)
    assert not out.exists()


def test_a_nul_in_a_text_is_a_value_error_and_an_error_row(run_dir, tmp_path):
    from stancelab.prediction.api import predict

    with pytest.raises(ValueError, match=r"text contains a NUL character \(U\+0000\)"):
        predict("\x00", model=run_dir)
    with pytest.raises(ValueError, match="index 1 contains a NUL character"):
        predict(["We will strike back.", "We will\x00strike back."], model=run_dir)
    # other control characters: a text of nothing else is empty; among letters they are
    # ordinary characters (a vertical tab or form feed breaks a line, as the splitter reads it)
    with pytest.raises(ValueError, match="index 0 is empty"):
        predict(["\x07\x01\x7f"], model=run_dir)
    kept = ["We will\x0bstrike\x0cback.", "We will strike\x07 back."]
    assert [r.text for r in predict(kept, model=run_dir)] == kept
    source = tmp_path / "in.jsonl"
    rows = [{"id": "a", "text": "We will\u0000strike."}, {"id": "b", "text": "Talks resumed."}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    bad, fine = read_jsonl(out)
    assert bad == {
        "line": 1,
        "id": "a",
        "error": "'text' contains a NUL character (U+0000) at character 7",
    }
    assert fine["labels"] is not None and summary.errors == 1


def test_an_id_that_is_not_valid_unicode_is_an_error_row_and_the_run_goes_on(run_dir, tmp_path):
    good = b'{"id": "ok", "text": "We will strike back."}\n'
    cases = {
        "escape.jsonl": b'{"id": "\\udc80x", "text": "We deny it."}\n' + good,
        "byte.jsonl": b'{"id": "x\xffy", "text": "We deny it."}\n' + good,
        "byte.csv": b"id,text\nx\xffy,We deny it.\nok,We will strike back.\n",
        "empty.jsonl": b'{"id": "\\udc80", "text": ""}\n' + good,  # an error row already
    }
    for name, data in cases.items():
        source = tmp_path / name
        source.write_bytes(data)
        out = tmp_path / f"{name}.out.jsonl"
        summary = predict_file(resolve_model(run_dir), source, out, progress=False)
        bad, fine = read_jsonl(out)
        assert bad["error"] and bad["id"] is None, name  # never a crash on writing the id
        # an escape is not valid Unicode; a byte in the file says the file is not UTF-8
        said = "not valid Unicode" if name.startswith("escape") else "has a byte that is not UTF-8"
        assert said in bad["error"] or name == "empty.jsonl"
        assert fine["id"] == "ok" and fine["labels"] is not None and summary.errors == 1
    with pytest.raises(InputError, match=r"escape.jsonl:1: 'id' is not valid Unicode"):
        ingest([tmp_path / "escape.jsonl"], tmp_path / "s.jsonl")


def test_a_lone_carriage_return_does_not_end_a_line(run_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"id": "a",\r"text": "We will strike back."}\r\n{"id": "b", "text":\r"Talks."}\n'
        b'{"id": "c", "text": "Talks resumed."}\n'
    )
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    assert [(r["line"], r["id"]) for r in read_jsonl(out)] == [(1, "a"), (2, "b"), (3, "c")]
    assert summary.errors == 0
    text_file = tmp_path / "in.txt"
    text_file.write_bytes(b"old mac\rline, one record\r\nWe will strike back.\n")
    out2 = tmp_path / "out2.jsonl"
    predict_file(resolve_model(run_dir), text_file, out2, progress=False)
    assert [r["text"] for r in read_jsonl(out2)] == [
        "old mac\rline, one record",
        "We will strike back.",
    ]


def test_a_csv_field_longer_than_the_csv_modules_default_cap_is_read(run_dir, tmp_path):
    article = "We will strike back. " * 8_000  # 168,000 characters; the default cap is 131,072
    source = tmp_path / "long.csv"
    source.write_text(f'id,text\nlong,"{article}"\nshort,Talks resumed.\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    assert summary.errors == 0 and [r["id"] for r in read_jsonl(out)] == ["long", "short"]


def test_a_quoted_field_over_lines_is_one_record_named_by_its_first_line(run_dir, tmp_path):
    source = tmp_path / "multi.csv"
    source.write_text(
        'id,text\n1,"We will strike,\nand strike hard."\n\n2,"They deny it, he said."\n'
        '3,"Talks\r\nresumed."\n4,Talks resumed.\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    summary = predict_file(resolve_model(run_dir), source, out, progress=False)
    rows = read_jsonl(out)
    assert [(r["line"], r["id"]) for r in rows] == [(2, "1"), (5, "2"), (6, "3"), (8, "4")]
    assert rows[0]["text"] == "We will strike,\nand strike hard." and summary.errors == 0


@pytest.mark.parametrize(
    "content,opened",
    [
        ('id,text\n1,"We will strike.\n2,They deny it.\n', 2),  # the tester's file
        ('id,text\n1,ok\n2,"a\nb"\n3,"stray\n4,more\n5,more', 5),  # no final line break
        ('id,text,source\n1,ok,x\n2,"stray\n3,more,y\n', 3),  # not in the last column
        ('id,text\n1,ok\n2,"\r\n', 3),
    ],
)
def test_a_stray_quote_that_runs_to_the_end_is_one_line_naming_where_it_opened(
    run_dir, tmp_path, content, opened
):
    source = tmp_path / "stray.csv"
    source.write_bytes(content.encode("utf-8"))
    refusal = rf"stray.csv:{opened}: a quoted field opens here and never closes"
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=refusal):
        predict_file(resolve_model(run_dir), source, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stray.csv"]  # nothing written
    with pytest.raises(InputError, match=refusal):
        ingest([source], tmp_path / "s.jsonl")
    ran = stancelab(
        "predict", "--model", str(run_dir), "-i", str(source), "-o", str(out), "--no-progress"
    )
    assert ran.returncode == 1
    assert f"stray.csv:{opened}: a quoted field opens here" in one_error_line(ran.stderr)


def test_lone_surrogate_in_corpus_input_is_an_error(tmp_path):
    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "a", "text": "We will strike \\udcff back."}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"docs.jsonl:1: 'text' is not valid Unicode"):
        ingest([source], tmp_path / "s.jsonl")


def test_undecodable_cli_argument_is_one_line(run_dir):
    import os
    import subprocess
    import sys

    from reliability_common import code_root, env

    ran = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"stancelab.cli", b"predict", b"--model"]
        + [os.fsencode(str(run_dir)), b"We will strike \xff back."],
        capture_output=True,
        env=env(),
        cwd=code_root(),
    )
    assert ran.returncode == 1
    stderr = ran.stderr.decode("utf-8", "replace")
    assert "not valid Unicode" in one_error_line(stderr)


# -- item 10: one line instead of a traceback; empty batches; invisible text ---------------------


def test_predict_of_an_empty_list_is_an_empty_list(run_dir):
    from stancelab.prediction.api import predict

    assert predict([], model=run_dir) == []
    assert resolve_model(run_dir).predict_proba([]).shape == (0, 4)


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200c\u200d", " \u2060\ufeff ", "\u00ad"])
def test_zero_width_only_text_is_empty(run_dir, tmp_path, text):
    from stancelab.prediction.api import predict

    with pytest.raises(ValueError, match="index 0 is empty"):
        predict([text], model=run_dir)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "z", "text": text}) + "\n", encoding="utf-8")
    predict_file(resolve_model(run_dir), source, tmp_path / "o.jsonl", progress=False)
    assert "empty" in read_jsonl(tmp_path / "o.jsonl")[0]["error"]


@pytest.mark.parametrize(
    "text,problem",
    [
        ("\u200b", "'text' is empty or only white space or invisible characters"),
        ("We\u0000 strike", "'text' contains a NUL character (U+0000) at character 2"),
        ("\ud800 We strike", "'text' is not valid Unicode"),
    ],
)
def test_a_labelled_text_prediction_would_refuse_is_one_line_naming_its_line(
    run_dir, tmp_path, text, problem
):
    """Gold and ``--data`` files are checked like predict's input (``text_problem``) when
    loaded: before, training and evaluation ended in a traceback from the model, and
    ``data export`` wrote a zero-width text and crashed in pyarrow on a lone surrogate."""
    from reliability_common import run

    labelled = tmp_path / "bad.jsonl"
    rows = [{"id": f"s{i}", "text": t, "labels": lab} for i, (t, lab) in enumerate(TINY)]
    rows.insert(1, {"id": "x1", "text": text, "labels": []})
    labelled.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    where = f"{labelled}:2: {problem}"
    with pytest.raises(InputError) as caught:
        load_labelled(labelled)
    assert str(caught.value).startswith(where)
    out = ["--out", str(tmp_path / "out")]
    ran = [
        run(
            "-m", "training.train", "configs/baseline.yaml", *out, "--set", f"data.gold={labelled}"
        ),
        run("-m", "training.evaluate", "--model", str(run_dir), "--data", str(labelled), *out),
        stancelab("data", "export", "--gold", str(labelled), *out),
    ]
    for done in ran:
        assert done.returncode == 1 and one_error_line(done.stderr).startswith(f"error: {where}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [labelled.name]  # nothing written


def test_a_labelled_spreadsheet_is_one_line_saying_the_format(run_dir, tmp_path):
    """A held-out set kept as a CSV (`--data held.csv`) was read as JSON Lines: "held.csv:1:
    invalid JSON (Expecting value)", with no word of the format wanted."""
    from reliability_common import run

    held = tmp_path / "held.csv"
    held.write_text("id,text,labels\nh1,We will strike back.,threat\n", encoding="utf-8")
    wanted = (
        f'{held}: a labelled file is JSON Lines, one {{"text": ..., "labels": [...]}} object per '
        "line, not .csv; write each row so, in a .jsonl file"
    )
    with pytest.raises(InputError) as caught:
        load_labelled(held)
    assert str(caught.value) == wanted
    out = ["--out", str(tmp_path / "out")]
    done = run("-m", "training.evaluate", "--model", str(run_dir), "--data", str(held), *out)
    assert done.returncode == 1 and one_error_line(done.stderr) == f"error: {wanted}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [held.name]  # nothing written


def test_an_id_that_is_not_valid_unicode_in_a_labelled_file_is_an_error(tmp_path):
    labelled = tmp_path / "bad.jsonl"
    labelled.write_text(
        '{"id": "x\\udc80", "text": "We deny it.", "labels": ["denial"]}\n', encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"bad.jsonl:1: 'id' is not valid Unicode"):
        load_labelled(labelled)


@pytest.mark.parametrize(
    "edit,what",
    [
        (lambda m: m["params"].update(colour="blue"), "colour"),
        (lambda m: m["params"].update(C=-3), "C"),
        (lambda m: m.update(thresholds=["high", 0.5, 0.5, 0.5]), "thresholds"),
        (lambda m: m.update(thresholds=[None, 0.5, 0.5, 0.5]), "thresholds"),
        (lambda m: m.update(seed="x"), "seed"),
    ],
)
def test_bad_manifest_entries_are_model_load_errors(run_dir, tmp_path, edit, what):
    import shutil

    from stancelab.errors import ModelLoadError
    from stancelab.models.registry import load_model

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    manifest = json.loads((copy / "stancelab.json").read_text())
    edit(manifest)
    (copy / "stancelab.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=what):
        load_model(copy)
    if what == "colour":  # the command line prints the same, as one line
        ran = stancelab("predict", "--model", str(copy), "We will strike back.")
        assert ran.returncode == 1 and what in one_error_line(ran.stderr)
