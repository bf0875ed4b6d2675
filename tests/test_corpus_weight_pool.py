"""``benchmarks/corpus_weight.py --pool``: runs of other seeds summarised together, on fake
runs (no model is fit here)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def corpus_weight(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # it imports label_prior
    sys.modules.pop("corpus_weight", None)
    return importlib.import_module("corpus_weight")


def _run(path: Path, *, seed: int | None, repeat: int = 3, config="configs/transformer.yaml"):
    y = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]]
    pred = [row[:] for row in y]
    pred[(seed or 13) % len(y)][0] ^= 1  # each seed wrong somewhere else
    variant = {"training_sentences": 10, "fit_seconds": 1.0, "proba": y, "pred": pred}
    fits = [{"scheme": "kfold", "fold": "r0f0", "y": y, "as_is": variant, "repeated": variant}]
    run = {"config": config, "repeat": repeat, "fits": fits}
    if seed is not None:  # the first run wrote no seed
        run["seed"] = seed
    path.write_text(json.dumps(run), encoding="utf-8")
    return path


def test_pool_summarises_runs_of_other_seeds(corpus_weight, tmp_path):
    a, b = _run(tmp_path / "a.json", seed=None), _run(tmp_path / "b.json", seed=14)
    corpus_weight.pool([a, b], tmp_path / "pooled.json")
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["seeds"] == [13, 14] and pooled["repeat"] == 3
    assert len(pooled["summary"]["kfold"]["as_is"]["macro_f1_per_seed"]) == 2


def test_pool_never_writes_over_one_of_its_runs(corpus_weight, tmp_path):
    # The default --out is corpus_weight.json: the first run, which --pool reads.
    a, b = _run(tmp_path / "a.json", seed=None), _run(tmp_path / "b.json", seed=14)
    before = a.read_text()
    with pytest.raises(SystemExit, match="a.json"):
        corpus_weight.pool([a, b], a)
    assert a.read_text() == before


@pytest.mark.parametrize(
    "other",
    [
        {"seed": 14, "repeat": 2},  # another setting: not the same comparison
        {"seed": 14, "config": "configs/transformer_small.yaml"},  # another model
        {"seed": None},  # the same seed twice: one run counted as two
    ],
)
def test_pool_refuses_runs_that_are_not_other_seeds_of_one_comparison(
    corpus_weight, tmp_path, other
):
    a = _run(tmp_path / "a.json", seed=None)
    b = _run(tmp_path / "b.json", **other)
    with pytest.raises(SystemExit, match="--pool"):
        corpus_weight.pool([a, b], tmp_path / "pooled.json")
    assert not (tmp_path / "pooled.json").exists()


def test_pool_refuses_a_file_without_fits(corpus_weight, tmp_path):
    a, b = _run(tmp_path / "a.json", seed=None), _run(tmp_path / "b.json", seed=14)
    corpus_weight.pool([a, b], tmp_path / "pooled.json")
    with pytest.raises(SystemExit, match="pooled.json"):
        corpus_weight.pool([tmp_path / "pooled.json", b], tmp_path / "again.json")


def _figures(text: str) -> list[tuple[float, int]]:
    """The decimal numbers of a README table row, with their printed decimals."""
    import re

    return [
        (float(m.replace("−", "-")), len(m.split(".")[1]))
        for m in re.findall(r"[−+-]?\d+\.\d+", text)
    ]


def _as_stored(fresh, stored):
    """``fresh`` cut to the keys of ``stored``: a figure added to the summary since the file was
    written (paired_bootstrap's "a" and "b") is not a figure that changed."""
    if isinstance(stored, dict):
        return {k: _as_stored(fresh[k], v) for k, v in stored.items() if k in fresh}
    return fresh


def test_the_readme_second_seed_table_is_what_the_results_say(corpus_weight):
    """README, "A second seed": each figure as the JSON files give it, to the digits shown."""
    results = ROOT / "benchmarks" / "results"
    runs = [
        json.loads((results / f).read_text())
        for f in ("corpus_weight.json", "corpus_weight_seed14.json")
    ]
    pooled = corpus_weight.summarize([r["fits"] for r in runs])
    stored = json.loads((results / "corpus_weight_pooled.json").read_text())["summary"]
    assert _as_stored(pooled, stored) == stored
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**A second seed") :]
    for scheme, title in (
        ("kfold", "| 5-fold CV (169) |"),
        ("logo", "| leave one article out (169) |"),
    ):
        row = next(line for line in section.splitlines() if line.startswith(title))
        expected = []
        for summary in (runs[1]["summary"][scheme], pooled[scheme]):
            test = summary["repeated_minus_as_is"]
            expected += [summary["as_is"]["macro_f1"], summary["repeated"]["macro_f1"]]
            expected += [test["difference"], *test["ci"], test["p_value"]]
        shown = _figures(row)
        assert len(shown) == len(expected), row
        for (value, decimals), exact in zip(shown, expected, strict=True):
            assert abs(value - exact) <= 0.5 * 10**-decimals + 1e-9, (row, value, exact)


@pytest.mark.parametrize(
    "flags",
    [
        ["--config", "configs/transformer_small.yaml"],
        ["--repeat", "3"],  # the default, given: still refused
        ["--schemes", "kfold"],
        ["--seed-offset", "1"],
        ["--repeat", "2", "--seed-offset", "0"],
    ],
)
def test_pool_refuses_the_options_of_a_run(corpus_weight, tmp_path, monkeypatch, capsys, flags):
    # --pool reads them from its files: given, they would seem to have had an effect.
    a, b = _run(tmp_path / "a.json", seed=None), _run(tmp_path / "b.json", seed=14)
    out = tmp_path / "pooled.json"
    argv = ["corpus_weight.py", "--pool", str(a), str(b), "--out", str(out), *flags]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as refused:
        corpus_weight.main()
    named = [flag for flag in flags if flag.startswith("--")]
    message = str(refused.value.code)
    assert message.startswith("--pool: ") and "\n" not in message
    assert all(flag in message for flag in named) and "from the files" in message
    assert not out.exists() and capsys.readouterr().out == ""


def test_pool_refuses_the_options_of_a_run_before_reading_its_files(
    corpus_weight, tmp_path, monkeypatch
):
    missing = tmp_path / "not-there.json"
    argv = ["corpus_weight.py", "--pool", str(missing), "--repeat", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "pooled.json")])
    with pytest.raises(SystemExit, match="--repeat"):
        corpus_weight.main()


def test_pool_without_the_options_of_a_run_still_pools(corpus_weight, tmp_path, monkeypatch):
    a, b = _run(tmp_path / "a.json", seed=None), _run(tmp_path / "b.json", seed=14)
    out = tmp_path / "pooled.json"
    argv = ["corpus_weight.py", "--pool", str(a), str(b), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    corpus_weight.main()
    assert json.loads(out.read_text())["seeds"] == [13, 14]


def test_the_dyads_scheme_is_bootstrapped_over_whole_dyads(corpus_weight):
    # Its figures claim to hold for unseen conflicts, whose sentences are not independent.
    y = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]]
    variant = {"proba": y, "pred": y}
    dyads = ["A–B", "A–B", "C–D", "C–D", "E–F", "E–F"]
    fit = {"scheme": "dyads", "fold": "d1", "y": y, "test_dyads": dyads}
    run = [{**fit, "as_is": variant, "repeated": variant}]
    summary = corpus_weight.summarize([run, run])
    assert summary["dyads"]["repeated_minus_as_is"]["resampled"] == "whole dyads and repeats"
