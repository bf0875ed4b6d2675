"""The evaluation harness end to end on a tiny fixture with the real baseline model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.evaluation.crossval import evaluate
from stancelab.evaluation.protocol import (
    AUGMENTED,
    CORPUS,
    Mix,
    Protocol,
    build_dyad_folds,
    build_folds,
    folds_fingerprint,
    training_set,
)
from stancelab.evaluation.report import write_outputs
from stancelab.models.baseline import BaselineModel

# Written for these tests: a few labelled sentences standing in for labels/augment/.
AUGMENT = [
    ("Border guards were told to open fire on any vessel that ignores the warning.", ["threat"]),
    (
        "The alliance said it would answer any strike on its ships with overwhelming force.",
        ["threat"],
    ),
    (
        "Negotiators will return to the table as soon as the artillery falls silent.",
        ["conditional_deescalation"],
    ),
    (
        "The junta offered an amnesty to fighters who hand in their weapons by Friday.",
        ["conditional_deescalation"],
    ),
    ("The ministry charged the rebels with mining farmland near the river.", ["accusation"]),
    ("A spokeswoman blamed the coast guard for ramming the fishing boat.", ["accusation"]),
    ("The navy rejected claims that its patrol had fired the first shot.", ["denial"]),
    ("Officials dismissed as fabricated the reports of a secret arms deal.", ["denial"]),
    ("Aid convoys crossed the valley road for the first time in a month.", []),
    ("The two delegations met for three hours at a hotel by the lake.", []),
]
PROTOCOL = Protocol(
    "test",
    folds=3,
    repeats=2,
    leave_one_article_out=True,
    contrast=("kfold",),
    curve=(Mix(1.0, 0.5),),
    n_boot=200,
)


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(
    path: Path, name: str, gold: Path, aug_dir: Path, augment: bool, extra: str = ""
) -> Path:
    path.write_text(
        f"model: baseline\nname: {name}\ndata: {{gold: {gold}, augment: {str(augment).lower()}, "
        f"augment_dir: {aug_dir}}}\nparams: {{inner_folds: 2, char_ngrams: [3, 4]{extra}}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluation")
    gold = _write(
        root / "gold.jsonl",
        [
            {"id": f"s{i}", "doc_id": f"d{i % 3}", "text": t, "labels": lab}
            for i, (t, lab) in enumerate(TINY)
        ],
    )
    _write(
        root / "augment" / "a.jsonl",
        [
            {"id": f"aug{i}", "text": t, "labels": lab, "source": "authored", "dyad": f"c{i % 5}"}
            for i, (t, lab) in enumerate(AUGMENT)
        ],
    )
    _config(root / "a.yaml", "base_a", gold, root / "augment", True)
    _config(root / "b.yaml", "base_b", gold, root / "augment", False, ", C: 1.0")
    return root


@pytest.fixture(scope="module")
def evaluated(fixture_dir: Path):
    """One evaluation of two configs, with every fit and scoring call recorded."""
    calls = []
    fit, proba = BaselineModel.fit, BaselineModel.predict_proba

    def recording_fit(self, texts, labels, groups=None):
        calls.append(("fit", id(self), list(texts)))
        return fit(self, texts, labels, groups)

    def recording_proba(self, texts):
        calls.append(("score", id(self), list(texts) if not isinstance(texts, str) else [texts]))
        return proba(self, texts)

    patch = pytest.MonkeyPatch()
    patch.setattr(BaselineModel, "fit", recording_fit)
    patch.setattr(BaselineModel, "predict_proba", recording_proba)
    try:
        result = evaluate(
            [fixture_dir / "a.yaml", fixture_dir / "b.yaml"], PROTOCOL, progress=False
        )
    finally:
        patch.undo()
    outputs = write_outputs(result, fixture_dir / "report", command="pytest")
    return result, outputs, calls


def test_augmentation_never_reaches_a_test_fold(evaluated, fixture_dir):
    result, _, calls = evaluated
    aug_texts = {t for t, _ in AUGMENT}
    gold_texts = {t for t, _ in TINY}
    trained_on: dict[int, set[str]] = {}
    scored_any = False
    for kind, model, texts in calls:
        if kind == "fit":
            trained_on[model] = set(texts)
        else:  # every text scored by a fitted model: corpus only, never seen in its training
            assert not set(texts) & aug_texts
            assert set(texts) <= gold_texts
            assert not set(texts) & trained_on[model]
            scored_any = True
    assert scored_any
    assert any(set(texts) & aug_texts for kind, _, texts in calls if kind == "fit")
    rows = [json.loads(line) for line in (fixture_dir / "report" / "predictions.jsonl").open()]
    assert {r["id"] for r in rows} == {f"s{i}" for i in range(len(TINY))}


def test_training_set_adds_augmentation_to_the_training_side_only(fixture_dir):
    corpus = load_labelled(fixture_dir / "gold.jsonl")
    aug = load_augmentation(fixture_dir / "augment")
    for fold in build_folds(corpus, PROTOCOL):
        test_ids = {corpus.ids[i] for i in fold.test}
        for mix in (CORPUS, AUGMENTED, Mix(1.0, 0.5), Mix(0.5, 0.0)):
            train = training_set(corpus, aug, fold, mix, seed=0)
            assert not test_ids & set(train.ids)
            assert len([i for i in train.ids if i.startswith("aug")]) == round(
                mix.augment * len(aug)
            )
    assert len({f.name for f in build_folds(corpus, PROTOCOL) if f.scheme == "logo"}) == 3


def test_every_model_gets_identical_folds(evaluated, fixture_dir):
    result, _, _ = evaluated
    corpus = load_labelled(fixture_dir / "gold.jsonl")
    assert result.folds_sha256 == folds_fingerprint(corpus, build_folds(corpus, PROTOCOL))
    for scheme in ("kfold", "logo"):
        a, b = result.primary("base_a", scheme), result.primary("base_b", scheme)
        assert a.fold == b.fold and all(name for rep in a.fold for name in rep)
    kfold = result.primary("base_a", "kfold")
    assert len(kfold.fold) == 2 and kfold.fold[0] != kfold.fold[1]  # two differently seeded repeats


def test_runs_cover_both_augmentation_settings_and_the_curve(evaluated):
    result, _, _ = evaluated
    kinds = {(r.config, r.variant, r.scheme) for r in result.runs}
    for name in ("base_a", "base_b"):
        assert {
            (name, "corpus", "kfold"),
            (name, "corpus+augment", "kfold"),
            (name, "corpus + 50% augment", "kfold"),
        } <= kinds
    assert ("base_a", "corpus+augment", "logo") in kinds and ("base_b", "corpus", "logo") in kinds
    assert result.models["base_a"]["primary"] == "corpus+augment"
    assert result.models["base_b"]["primary"] == "corpus"
    # 3 folds x 2 repeats x 2 settings + 3 curve folds + 3 articles, per config
    assert result.models["base_a"]["fits"] == result.models["base_b"]["fits"] == 18
    assert all(r.scored.all() for r in result.runs)


def test_metrics_json_and_report_are_complete(evaluated, fixture_dir):
    _, outputs, _ = evaluated
    metrics = json.loads(outputs.metrics.read_text())
    a = metrics["results"]["kfold"]["base_a"]["corpus+augment"]
    assert set(a["overall"]) == {"macro_f1", "micro_f1", "exact_match", "none_accuracy", "ece"}
    lo, hi = a["overall"]["macro_f1"]["ci"]
    assert lo <= a["overall"]["macro_f1"]["value"] <= hi
    assert set(a["per_label"]["denial"]) == {"precision", "recall", "f1", "pr_auc", "support"}
    comparison = metrics["comparisons"]["kfold"][0]
    assert set(comparison["mcnemar"]["per_label"]) == {
        "threat",
        "conditional_deescalation",
        "accusation",
        "denial",
    }
    assert 0 < comparison["macro_f1"]["p_value"] <= 1
    assert set(metrics["augmentation_effect"]["kfold"]) == {"base_a", "base_b"}
    assert metrics["seed_variance"]["base_a"]["repeats"] == 2
    assert [p["variant"] for p in metrics["learning_curve"]["base_a"]] == [
        "corpus",
        "corpus + 50% augment",
        "corpus+augment",
    ]
    assert set(metrics["per_article"]["base_b"]) == {"d0", "d1", "d2"}
    report = outputs.report.read_text()
    for heading in (
        "## Verdict",
        "## Cross-validation",
        "## Leave one article out",
        "## Corpus only vs corpus + augmentation",
        "## Per label",
        "## Error analysis",
    ):
        assert heading in report
    assert metrics["verdict"] in report
    assert ("no significant difference" in metrics["verdict"]) != (
        "has a higher" in metrics["verdict"]
    )
    if "no significant difference" in metrics["verdict"]:  # a signed figure says its order
        comparison = metrics["comparisons"]["kfold"][0]
        d = comparison["macro_f1"]["difference"]
        assert f"({comparison['a']} − {comparison['b']}) is {d:+.3f}" in metrics["verdict"]
    for png in ("f1_per_label", "reliability", "learning_curve", "label_cooccurrence"):
        data = (fixture_dir / "report" / f"{png}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert f"({png}.png)" in report
    rows = outputs.predictions.read_text().splitlines()
    assert len(rows) == sum(len(r.proba) * r.scored.sum() for r in evaluated[0].runs)


def test_error_analysis_shows_baseline_ngrams(evaluated):
    result, outputs, _ = evaluated
    assert result.explanations and all(
        name in ("base_a", "base_b") for name, _ in result.explanations
    )
    assert "n-grams" in outputs.report.read_text()


def test_model_and_data_mode_scores_a_trained_model(fixture_dir, tmp_path, capsys):
    from stancelab.models.fit import train_run
    from training.evaluate import main

    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out
    held_out = _write(tmp_path / "mine.jsonl", [{"text": t, "labels": lab} for t, lab in AUGMENT])
    assert (
        main(
            ["--model", str(run), "--data", str(held_out), "--out", str(tmp_path / "r"), "--quiet"]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    summary = metrics["results"]["held-out"]["run"]["as trained"]
    assert summary["sentences"] == len(AUGMENT)
    assert (
        tmp_path / "r" / "report.md"
    ).exists() and "| run | as trained |" in capsys.readouterr().out
    assert main(["--model", str(run), "--data", str(tmp_path / "missing.jsonl"), "--quiet"]) == 1
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_unscorable_folds_and_missing_articles_are_reported(tmp_path, fixture_dir):
    # conditional_deescalation only in article d0: holding d0 out leaves no training example.
    rows = [
        {
            "id": f"s{i}",
            "doc_id": "d0" if "conditional_deescalation" in lab else f"d{1 + i % 2}",
            "text": t,
            "labels": lab,
        }
        for i, (t, lab) in enumerate(TINY)
    ]
    gold = _write(tmp_path / "gold.jsonl", rows)
    config = _config(tmp_path / "c.yaml", "base_c", gold, tmp_path / "none", False)
    protocol = Protocol(
        "test", folds=2, leave_one_article_out=True, contrast=(), curve=(), n_boot=100
    )
    result = evaluate([config], protocol, progress=False)
    logo = result.primary("base_c", "logo")
    assert not logo.scored[[i for i, r in enumerate(rows) if r["doc_id"] == "d0"]].any()
    assert any("d0 was not scored" in note for note in result.notes)
    no_docs = _write(tmp_path / "nodocs.jsonl", [{"text": t, "labels": lab} for t, lab in TINY])
    config = _config(tmp_path / "d.yaml", "base_d", no_docs, tmp_path / "none", False)
    result = evaluate([config], protocol, progress=False)
    assert not any(r.scheme == "logo" for r in result.runs)
    assert any("Leave-one-article-out was skipped" in note for note in result.notes)


def test_pipeline_runs_end_to_end(tmp_path, fixture_dir, monkeypatch, capsys):
    from training.pipeline import main

    shutil.copytree(Path(__file__).resolve().parent.parent / "seeds", tmp_path / "seeds")
    shutil.copy(fixture_dir / "gold.jsonl", _write(tmp_path / "labels" / "gold.jsonl", []))
    (tmp_path / "labels" / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    config = _config(
        tmp_path / "p.yaml", "base_p", Path("labels/gold.jsonl"), fixture_dir / "augment", True
    )
    assert main(["--configs", str(config), "--quiet", "--skip-active-learning"]) == 0
    out = capsys.readouterr()
    assert "using labels/gold.jsonl as committed" in out.out
    assert "not in the current corpus" in out.err  # the fixture's ids are not corpus ids
    assert (tmp_path / "runs" / "base_p" / "stancelab.json").exists()
    assert "report: reports/latest/report.md" in out.out
    metrics = json.loads((tmp_path / "reports" / "latest" / "metrics.json").read_text())
    assert metrics["pipeline"]["trained"]["base_p"]["sentences"] == len(TINY) + len(AUGMENT)
    assert np.isfinite(
        metrics["results"]["kfold"]["base_p"]["corpus+augment"]["overall"]["macro_f1"]["value"]
    )


def test_leave_dyads_out_scores_each_authored_sentence_once_on_unseen_dyads(fixture_dir):
    protocol = Protocol(
        "dyads",
        folds=3,
        leave_one_article_out=False,
        contrast=(),
        curve=(),
        leave_dyads_out=5,
        n_boot=200,
    )
    result = evaluate([fixture_dir / "a.yaml", fixture_dir / "b.yaml"], protocol, progress=False)
    dyads = result.dyads
    aug = load_augmentation(fixture_dir / "augment")
    assert sorted(dyads.data.ids) == sorted(aug.ids)
    (run,) = dyads.runs  # base_b trains on the corpus only: it is left out, with a note
    assert run.config == "base_a" and run.scheme == "dyads" and run.scored.all()
    assert any("base_b" in n for n in dyads.notes)
    for fold in build_dyad_folds(dyads.data, protocol):
        train = training_set(dyads.data, result.data, fold, AUGMENTED, 0)
        test_dyads = {dyads.data.dyads[i] for i in fold.test}
        assert not test_dyads & {d for d in train.dyads if d}  # no dyad on both sides
        assert set(result.data.ids) <= set(train.ids)  # the corpus trains every fold
    outputs = write_outputs(result, fixture_dir / "dyads-report", command="pytest")
    metrics = json.loads(outputs.metrics.read_text())
    assert set(metrics["results"]) == {"kfold", "dyads"}
    assert metrics["results"]["dyads"]["base_a"]["corpus+augment"]["sentences"] == len(AUGMENT)
    assert metrics["data"]["dyads"]["dyads"] == 5
    assert "## Leave dyads out (unseen conflicts)" in outputs.report.read_text()


@pytest.mark.parametrize(
    ("dyad", "why"),
    [
        (lambda i: "c1", "it needs at least two dyads, and the augmentation set has 1"),
        (lambda i: "" if i == 3 else f"c{i % 5}", "1 augmentation row(s) have no dyad, the first"),
    ],
)
def test_leave_dyads_out_that_cannot_run_is_skipped_with_a_note_not_a_crash(
    fixture_dir, tmp_path, dyad, why
):
    aug_dir = tmp_path / "augment"
    rows = [
        {"id": f"aug{i}", "text": t, "labels": lab, "source": "authored", "dyad": dyad(i)}
        for i, (t, lab) in enumerate(AUGMENT)
    ]
    _write(aug_dir / "a.jsonl", rows)
    config = _config(tmp_path / "c.yaml", "base_c", fixture_dir / "gold.jsonl", aug_dir, True)
    protocol = Protocol(
        "dyads", folds=3, leave_one_article_out=False, contrast=(), curve=(), leave_dyads_out=5
    )
    result = evaluate([config], protocol, progress=False)
    assert result.dyads is None
    assert any(n.startswith(f"Leave-dyads-out was skipped: {why}") for n in result.notes)
    assert result.runs and all(run.scheme == "kfold" for run in result.runs)  # CV still ran


def test_evaluate_flags_add_schemes_to_the_default_protocol():
    from training.evaluate import parse_args, protocol_for

    default = protocol_for(parse_args(["a.yaml"]))
    assert (default.repeats, default.contrast, default.leave_one_article_out) == (1, (), False)
    assert default.leave_dyads_out == 0 and default.curve == ()
    assert default.name == "default"
    extra = protocol_for(parse_args(["a.yaml", "--contrast", "--articles", "--dyads"]))
    assert extra.contrast == ("kfold",) and extra.leave_one_article_out
    assert extra.leave_dyads_out == 5 and extra.repeats == 1
    assert extra.name == "default+contrast+articles+dyads"
    assert protocol_for(parse_args(["a.yaml", "--dyads"])).name == "default+dyads"
    full = protocol_for(parse_args(["a.yaml", "--full", "--contrast"]))
    assert full.contrast == ("kfold", "logo") and full.repeats == 3
    assert full.name == "full"  # --full already holds every scheme
    with pytest.raises(SystemExit):
        parse_args(["--model", "r", "--data", "d.jsonl", "--contrast"])
