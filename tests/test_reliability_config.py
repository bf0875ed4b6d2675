"""Issue #17, item 8: config values are checked by range, with one error line naming the key
and the allowed range; a number written 8e-5 is a number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY
from reliability_common import one_error_line, run

from stancelab.config import load_config


def write_config(tmp_path: Path, gold: Path, model: str = "baseline") -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model: {model}\nname: c\nseed: 1\ndata: {{gold: {gold}, augment: false}}\nparams: {{}}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    "override,key,allowed",
    [
        ("params.C=-1", "C", "a number > 0"),
        ("params.word_ngrams=[2,1]", "word_ngrams", "1 <= low <= high"),
        ("params.char_ngrams=[0,3]", "char_ngrams", "1 <= low <= high"),
        ("params.class_weight=heavy", "class_weight", "balanced or null"),
        ("seed=-5", "seed", "0 to 2**32 - 1"),
        ("params.inner_folds=1", "inner_folds", "an integer from 2 to 50"),
        ("params.min_df=0", "min_df", "an integer >= 1"),
        ("params.grid={C: [1, -2]}", "grid.C", "a number > 0"),
        ("params.grid={seed: [1]}", "grid.seed", "not a parameter to search"),
        ("params.C=.nan", "C", "finite"),
    ],
)
def test_out_of_range_baseline_values_get_one_line(tmp_path, tiny_gold, override, key, allowed):
    config = write_config(tmp_path, tiny_gold)
    ran = run("-m", "training.train", str(config), "--out", str(tmp_path / "r"), "--set", override)
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert key in line and allowed in line, line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("override", ["params.min_df=500", "params.grid={min_df: [1, 500]}"])
def test_a_min_df_no_n_gram_reaches_is_one_line_naming_it(tmp_path, tiny_gold, override):
    """scikit-learn's vectorizer raises a ValueError when min_df exceeds the sentences of a
    fit (or leaves no n-gram): that is the config's value against this data, one line."""
    config = write_config(tmp_path, tiny_gold)
    ran = run("-m", "training.train", str(config), "--out", str(tmp_path / "r"), "--set", override)
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert line.startswith("error: params.min_df 500: no word or character n-gram is in"), line
    assert line.endswith("give a smaller min_df"), line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "override,key",
    [
        ("params.learning_rate=-1e-5", "learning_rate"),
        ("params.epochs=0", "epochs"),
        ("params.validation_fraction=0.9", "validation_fraction"),
    ],
)
def test_out_of_range_transformer_values_name_the_allowed_range(tmp_path, override, key):
    config = write_config(tmp_path, Path("gold.jsonl"), model="transformer")
    ran = run("-m", "training.train", str(config), "--set", override)
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert key in line and "allowed:" in line, line


@pytest.mark.parametrize("value", ["8e-5", "8E-5", "1e-3", "-2e+1"])
def test_a_number_in_e_notation_is_a_number(tmp_path, value):
    import yaml

    config = write_config(tmp_path, Path("gold.jsonl"), model="transformer")
    assert isinstance(yaml.safe_load(value), str)  # what YAML 1.1 makes of it
    if float(value) < 0:
        return
    loaded = load_config(config, {"params.learning_rate": yaml.safe_load(value)})
    assert loaded.params.learning_rate == float(value)


def test_gold_without_a_positive_example_of_a_label_is_one_line(tmp_path):
    gold = tmp_path / "gold.jsonl"
    rows = [
        {"id": f"s{i}", "text": t, "labels": [x for x in lab if x != "denial"]}
        for i, (t, lab) in enumerate(TINY)
    ]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = write_config(tmp_path, gold)
    ran = run("-m", "training.train", str(config), "--out", str(tmp_path / "r"))
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert "no positive example for label(s): denial" in line, line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "setup,args,expected",
    [
        (lambda t, c: None, ["{tmp}"], "is a directory, expected a file"),
        (lambda t, c: c.write_bytes(b"model: baseline\nname: \xe9t\xe9\n"), [], "not valid UTF-8"),
        (lambda t, c: c.write_text("model: baseline\nparams: {C: [1,\n"), [], "invalid YAML at"),
        (
            lambda t, c: c.write_text("model: baseline\nname: c\nparams:\n  C: 4.0\n  C: 1.0e-4\n"),
            [],
            "invalid YAML at line 5, column 3 (the key 'C' is given twice)",
        ),
        (
            lambda t, c: c.write_text(c.read_text() + "params: {min_df: 2}\n"),
            [],
            "(the key 'params' is given twice)",
        ),
        (lambda t, c: None, ["--set", "seed.x=1"], "seed is a value, not a section"),
        (lambda t, c: None, ["--set", "name=."], "is not a run name"),
        (lambda t, c: None, ["--set", "name=a//b"], "is not a run name"),
        (lambda t, c: None, ["--set", "name=../elsewhere"], "is not a run name"),
        (lambda t, c: (t / "a.txt").write_text("x"), ["--out", "{tmp}/a.txt/sub"], "a.txt/sub"),
        # A key YAML reads as a number or a boolean (``1:``, ``on:``): a TypeError traceback.
        (lambda t, c: c.write_text(c.read_text() + "1: 2\n"), [], "unknown key(s) 1 in RunConfig"),
        (
            lambda t, c: c.write_text(c.read_text().replace("params: {}", "params: {on: 2}")),
            [],
            "unknown key(s) True in BaselineParams; valid keys: word_ngrams,",
        ),
        (lambda t, c: None, ["--set", "params={1: 2}"], "unknown key(s) 1 in BaselineParams"),
    ],
)
def test_config_and_path_mistakes_of_training_get_one_line(
    tmp_path, tiny_gold, setup, args, expected
):
    config = write_config(tmp_path, tiny_gold)
    setup(tmp_path, config)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args and args[0] == str(tmp_path):  # a folder given as the config
        config, args = Path(args[0]), args[1:]
    ran = run("-m", "training.train", str(config), *args)
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert expected in line, line
    if "unknown key(s) True" in expected:  # why YAML read it so, and what to do
        assert line.endswith("as a boolean or a number: quote it if it is meant as a name)")


@pytest.mark.parametrize("value", ["[1,", "{", "'x", "*a", ": x"])
def test_a_set_value_that_is_not_yaml_is_a_usage_error_not_a_traceback(tmp_path, tiny_gold, value):
    config = write_config(tmp_path, tiny_gold)
    ran = run(
        "-m",
        "training.train",
        str(config),
        "--out",
        str(tmp_path / "r"),
        "--set",
        f"params.C={value}",
    )
    assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran.stderr
    said = f"error: argument --set: params.C: {value!r} is not a YAML value ("
    assert ran.stderr.splitlines()[-1].startswith(f"python -m training.train: {said}"), ran.stderr
    assert not (tmp_path / "r").exists()


def test_a_set_value_that_gives_a_key_twice_is_refused_as_in_a_config(tmp_path, tiny_gold):
    """The rule of the config file holds for a --set value: plain YAML would keep C: [16.0]
    alone and the grid would search one value, the first list dropped unsaid."""
    config = write_config(tmp_path, tiny_gold)
    out = str(tmp_path / "r")
    grid = "params.grid={C: [1.0, 4.0], C: [16.0]}"
    ran = run("-m", "training.train", str(config), "--out", out, "--set", grid)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran.stderr
    assert "params.grid: " in ran.stderr and "the key 'C' is given twice" in ran.stderr
    assert not (tmp_path / "r").exists()


def test_an_evaluation_refuses_an_output_folder_before_it_runs(tmp_path, tiny_gold):
    from stancelab.models.fit import train_run

    model = train_run(write_config(tmp_path, tiny_gold), out=tmp_path / "run").out
    folder = tmp_path / "ev"
    folder.mkdir()
    data = folder / "predictions.jsonl"  # the name of one of the evaluation's outputs
    data.write_bytes(tiny_gold.read_bytes())
    ran = run("-m", "training.evaluate", "--model", str(model), "--data", str(data),
              "--out", str(folder), "--quiet")  # fmt: skip
    assert "holds the input" in one_error_line(ran.stderr)
    assert data.read_bytes() == tiny_gold.read_bytes() and sorted(folder.iterdir()) == [data]
    (tmp_path / "a.txt").write_text("x")
    ran = run("-m", "training.evaluate", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "a.txt"))
    assert "a.txt: is a file; --out needs a folder" in one_error_line(ran.stderr)
    assert "cross-validating" not in ran.stdout + ran.stderr  # refused before any fit


@pytest.mark.parametrize("name", ["ablation/c16", "modèle_fr", "v1.2-final"])
def test_a_run_name_may_nest_folders_and_use_any_letters(tmp_path, tiny_gold, name):
    config = load_config(write_config(tmp_path, tiny_gold), {"name": name})
    assert config.name == name


@pytest.mark.parametrize(
    "text",
    [
        "base: &b\n  params: &p\n    C: 1\nother:\n  <<: *b\n  params:\n    <<: *p\n    C: 2\n",
        "a: &a {x: 1}\nb: &b {y: 2}\nc: {<<: [*a, *b], x: 3}\n",  # own keys override
        "a: &a {x: 1}\nc: {<<: *a, x: 3}\nd: *a\n",
    ],
)
def test_overrides_through_yaml_merges_read_as_plain_yaml_does(text):
    import yaml

    from stancelab.config import load_yaml

    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text,problem",
    [
        # merges PyYAML reads wrong: {'r': {'C': 1}} where YAML says C is 2; C: 1.0 for 4.0;
        # and which of two merged mappings wins depends on the key's length (x: 1, lr: 2)
        ("r:\n  <<: &q\n    <<: &p\n      C: 1\n    C: 2\ns: *q\n", "merges another itself"),
        ("params: {<<: &t {<<: {C: 1.0}, C: 4.0}}\n", "merges another itself"),
        ("p: &p {<<: {C: 1}, C: 2}\nq: {<<: *p}\n", "merges another itself"),
        ("a: &a {x: 1}\nb: &b {x: 2}\nc: {<<: [*a, *b]}\n", "both give 'x'"),
        ("a: &a {lr: 1}\nb: &b {lr: 2}\nc: {<<: [*a, *b]}\n", "both give 'lr'"),
        ("a: &a {lr: 1}\nc: {<<: [*a], <<: {lr: 2}}\n", "both give 'lr'"),
        # a key given twice in a merged mapping, never read by plain YAML's check
        ("params: {<<: {C: 1.0, C: 4.0}}\n", "the key 'C' is given twice"),
        ("r:\n  <<: &q\n    C: 1\n    C: 2\ns: *q\n", "the key 'C' is given twice"),
    ],
)
def test_merges_that_pyyaml_reads_wrong_are_refused(text, problem):
    import yaml

    from stancelab.config import load_yaml

    with pytest.raises(yaml.YAMLError, match=problem):
        load_yaml(text)


def test_a_config_with_such_a_merge_is_one_line(tmp_path, tiny_gold):
    config = write_config(tmp_path, tiny_gold)
    # the params read C: 1.0 where the file says 4.0
    config.write_text(
        config.read_text().replace("params: {}", "params: {<<: {<<: {C: 1.0}, C: 4.0}}")
    )
    ran = run("-m", "training.train", str(config), "--out", str(tmp_path / "r"))
    assert ran.returncode == 1
    line = one_error_line(ran.stderr)
    assert "invalid YAML at line" in line and "merges another itself" in line, line
    assert not (tmp_path / "r").exists()
