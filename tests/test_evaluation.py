"""The evaluation harness end to end on a tiny fixture with the real baseline model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.evaluation.augmentation import unseen
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
from stancelab.labels import LABELS
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
    # the k-fold CV's two repeats are resampled with its sentences; one article each is not
    assert a["resampled"] == comparison["macro_f1"]["resampled"] == "sentences and repeats"
    logo = metrics["results"]["logo"]["base_a"]["corpus+augment"]
    assert logo["resampled"] == metrics["comparisons"]["logo"][0]["macro_f1"]["resampled"]
    assert logo["resampled"] == "sentences"
    assert [p["variant"] for p in metrics["learning_curve"]["base_a"]] == [
        "corpus",
        "corpus + 50% augment",
        "corpus+augment",
    ]
    assert set(metrics["per_article"]["base_b"]) == {"d0", "d1", "d2"}
    data = evaluated[0].data  # an article's labels with no example: 0 in its macro-F1, said
    for doc, figures in metrics["per_article"]["base_b"].items():
        held = [
            set(labels) for labels, d in zip(data.labels, data.doc_ids, strict=True) if d == doc
        ]
        absent = [n for n in LABELS if not any(n in labels for labels in held)]
        assert figures["labels_without_examples"] == absent, doc
    report = outputs.report.read_text()
    assert "bootstrap over sentences and, for the 2 repeats of the k-fold CV, over repeats" in (
        " ".join(report.split())
    )
    assert "| article | sentences | base_a | base_b | no example of |" in report
    # ECE is what the report says it is: 10 equal-width bins over every (sentence, label)
    # probability of the out-of-fold predictions, the mean over the repeats
    assert "into 10 equal-width bins and sums each bin's share times the gap" in (
        " ".join(report.split())
    )
    rows = [json.loads(line) for line in (fixture_dir / "report" / "predictions.jsonl").open()]
    per_repeat = []
    for r in range(2):
        mine = [
            row
            for row in rows
            if (row["model"], row["variant"], row["scheme"], row["repeat"])
            == ("base_a", "corpus+augment", "kfold", r)
        ]
        p = np.array([[row["proba"][n] for n in LABELS] for row in mine]).ravel()
        y = np.array([[n in row["gold"] for n in LABELS] for row in mine], float).ravel()
        bins = np.minimum((p * 10).astype(int), 9)
        # share x |mean probability - frequency| = |sum of probabilities - positives| / all
        per_repeat.append(sum(abs(p[bins == b].sum() - y[bins == b].sum()) for b in set(bins)))
        per_repeat[-1] /= len(p)
    assert a["overall"]["ece"]["value"] == pytest.approx(np.mean(per_repeat), abs=1e-3)
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
    assert metrics["models"]["run"]["seen_in_training"] == 0
    assert metrics["models"]["run"]["engine"] == "baseline"
    assert "Caution" not in metrics["verdict"]
    report = " ".join((tmp_path / "r" / "report.md").read_text().split())
    assert "on the same predictions as the other figures" in report  # not "out-of-fold"
    assert "out-of-fold" not in report
    # What was scored, by which code: as a training run's run.json records it.
    from stancelab.data.labelled import load_labelled

    run_json = json.loads((run / "run.json").read_text())
    assert metrics["code_version"] == run_json["code_version"]
    assert metrics["data"]["path"] == str(held_out)
    assert metrics["data"]["checksum_sha256"] == load_labelled(held_out).checksum()


def test_labels_absent_from_the_data_are_named_with_the_macro_f1_of_the_others(
    fixture_dir, tmp_path, capsys
):
    from stancelab.evaluation.heldout import evaluate_saved
    from stancelab.models.fit import train_run
    from training.evaluate import main

    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out
    rows = [{"text": t, "labels": lab} for t, lab in AUGMENT]
    few = [r for r in rows if set(r["labels"]) <= {"threat", "accusation"}]  # and none
    data = _write(tmp_path / "few.jsonl", few)
    args = ["--model", str(run), "--data", str(data), "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*args, "--n-boot", "100"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    summary = metrics["results"]["held-out"]["run"]["as trained"]
    assert summary["labels_without_examples"] == ["conditional_deescalation", "denial"]
    f1 = {label: row["f1"]["value"] for label, row in summary["per_label"].items()}
    # The metric is unchanged (the two labels count as 0); the second figure leaves them out.
    assert summary["overall"]["macro_f1"]["value"] == pytest.approx(sum(f1.values()) / 4)
    present = summary["macro_f1_labels_with_examples"]
    assert present["labels"] == ["threat", "accusation"]
    assert present["value"] == pytest.approx((f1["threat"] + f1["accusation"]) / 2)
    assert present["ci"][0] <= present["value"] <= present["ci"][1]
    note = (
        "Note: these sentences have no example of conditional_deescalation or denial, and "
        "macro-F1 counts each such label as 0; over the labels that have examples (threat, "
        f"accusation), macro-F1 is {present['value']:.3f} (95% CI {present['ci'][0]:.3f}–"
        f"{present['ci'][1]:.3f}) for run."
    )
    assert note in metrics["verdict"]
    assert note in printed  # the verdict the script prints
    assert note in (tmp_path / "r" / "report.md").read_text()
    # A file of sentences with no label at all: nothing to average over.
    none = _write(tmp_path / "none.jsonl", [r for r in rows if not r["labels"]])
    outputs = write_outputs(evaluate_saved([run], none, progress=False, n_boot=100), tmp_path / "n")
    verdict = json.loads(outputs.metrics.read_text())["verdict"]
    assert "no example of any label, so macro-F1 is 0 whatever the model predicts" in verdict
    # A file with every label: no note, and no second figure.
    every = evaluate_saved([run], fixture_dir / "gold.jsonl", progress=False, n_boot=100)
    outputs = write_outputs(every, tmp_path / "all")
    metrics = json.loads(outputs.metrics.read_text())
    summary = metrics["results"]["held-out"]["run"]["as trained"]
    assert summary["labels_without_examples"] == [] and "Note:" not in metrics["verdict"]
    assert "macro_f1_labels_with_examples" not in summary


def test_a_file_the_model_was_trained_on_is_not_reported_as_held_out(fixture_dir, tmp_path):
    from stancelab.evaluation.heldout import evaluate_saved
    from stancelab.models.fit import train_run

    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out  # trained on TINY
    mine = [{"text": t, "labels": lab} for t, lab in AUGMENT]
    mine.insert(
        2,
        {
            "text": "“We will strike their bases if they cross the border again”",
            "labels": ["threat"],
        },
    )
    mine.append({"text": TINY[5][0].upper(), "labels": TINY[5][1]})
    data = _write(tmp_path / "mine.jsonl", mine)
    result = evaluate_saved([run], data, progress=False, n_boot=100)
    assert result.models["run"]["seen_in_training"] == 2
    assert "2 of the 12 sentences are in run's training data" in " ".join(result.notes)
    outputs = write_outputs(result, tmp_path / "r", command="pytest")
    verdict = json.loads(outputs.metrics.read_text())["verdict"]
    assert verdict.endswith(
        "Caution: 2 of these sentences are in run's training data, so its figures on them are "
        "not held-out."
    )
    (run / "training_texts.json").unlink()  # a run from before, or a model saved alone
    result = evaluate_saved([run], data, progress=False, n_boot=100)
    assert result.models["run"]["seen_in_training"] is None
    assert "was not checked" in " ".join(result.notes)


@pytest.mark.parametrize("content", ["{}", '{"hashes": null}', '{"hashes": "0a1b"}', "[]"])
def test_a_damaged_list_of_training_sentences_is_an_error_not_none_seen(
    fixture_dir, tmp_path, capsys, content
):
    """Before, a training_texts.json without its list of hashes read as an empty list:
    "None of the N sentences are in run's training data", and no caution, on the very
    sentences the model was trained on."""
    from reliability_common import one_error_line

    from stancelab.models.fit import train_run
    from training.evaluate import main

    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out  # trained on TINY
    (run / "training_texts.json").write_text(content, encoding="utf-8")
    out = tmp_path / "report"
    args = ["--model", str(run), "--data", str(fixture_dir / "gold.jsonl"), "--out", str(out)]
    assert main([*args, "--quiet", "--n-boot", "100"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {run / 'training_texts.json'}: ")
    assert not out.exists()


def test_a_failed_report_run_leaves_no_folder_it_created(fixture_dir, tmp_path, capsys):
    """Before, a run refused after it had made the missing folders above --out left them
    there, empty."""
    from reliability_common import one_error_line

    from stancelab.models.fit import train_run
    from training.active_learning import main as active_learning
    from training.evaluate import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: nonsense\n", encoding="utf-8")
    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "We will strike.", "labels": ["threat"]}\nnot json\n')
    (tmp_path / "mine").mkdir()  # a folder of the user's: it stays
    before = sorted(tmp_path.rglob("*"))
    for refused, why in (
        (lambda out: main([str(bad), "--out", str(out), "--quiet"]), "bad.yaml"),
        (
            lambda out: main(["--model", str(run), "--data", str(broken), "--out", str(out)]),
            "broken.jsonl:2",
        ),
        (
            lambda out: active_learning(["--config", str(bad), "--out", str(out), "--folds", "2"]),
            "bad.yaml",
        ),
    ):
        for parent in ("new", "mine"):
            assert refused(tmp_path / parent / "deeper" / "report") == 1
            assert why in one_error_line(capsys.readouterr().err)
            assert sorted(tmp_path.rglob("*")) == before


def test_an_evaluation_report_holds_no_active_learning_section_it_did_not_run(
    fixture_dir, tmp_path
):
    from stancelab.active.simreport import report_section
    from stancelab.models.fit import train_run
    from training.active_learning import main as active_learning
    from training.evaluate import main

    out = tmp_path / "out"  # an active-learning result left by an earlier run
    args = ["--out", str(out), "--seeds", "1", "--folds", "2", "--warm-start", "60"]
    assert active_learning([*args, "--batch", "10", "--budget", "10", "--workers", "1"]) == 0
    assert report_section(out) is not None
    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out
    held_out = _write(tmp_path / "mine.jsonl", [{"text": t, "labels": lab} for t, lab in AUGMENT])
    assert main(["--model", str(run), "--data", str(held_out), "--out", str(out), "--quiet"]) == 0
    assert "Active learning" not in (out / "report.md").read_text()
    assert main([str(fixture_dir / "a.yaml"), "--out", str(out), "--quiet"]) == 0
    assert "Active learning" not in (out / "report.md").read_text()


def test_an_active_learning_run_into_a_pipeline_report_replaces_the_reports_section(
    evaluated, tmp_path, capsys
):
    """The report showed the replaced run's table under the new run's figure."""
    from stancelab.active.simreport import report_section
    from training.active_learning import main as active_learning

    out = tmp_path / "latest"  # as training.pipeline writes it: benchmark first, then report
    args = ["--out", str(out), "--seeds", "1", "--folds", "2", "--warm-start", "60"]
    args += ["--workers", "1", "--n-boot", "100", "--batch", "10"]
    assert active_learning([*args, "--budget", "10"]) == 0
    old = report_section(out)
    write_outputs(evaluated[0], out, command="pytest", sections=[old])
    before = (out / "report.md").read_text()
    assert before.endswith("\n\n" + old.rstrip("\n") + "\n")
    capsys.readouterr()

    assert active_learning([*args, "--budget", "20"]) == 0
    new = report_section(out)
    assert "| 20 |" in new and "| 20 |" not in old
    after = (out / "report.md").read_text()
    assert after == before[: -len(old.rstrip("\n") + "\n")] + new.rstrip("\n") + "\n"
    assert f"its section in {out / 'report.md'}" in capsys.readouterr().out


def test_a_killed_active_learning_run_leaves_the_report_folder_as_it_was(evaluated, tmp_path):
    """Before, a run killed between writing its files and its section in report.md left the
    replaced run's table in the report under the new run's figure and active_learning.json."""
    from conftest import tree_snapshot
    from reliability_common import start_paused

    from stancelab.active.simreport import report_section
    from training.active_learning import main as active_learning

    out = tmp_path / "latest"  # as training.pipeline writes it: benchmark first, then report
    args = ["--out", str(out), "--seeds", "1", "--folds", "2", "--warm-start", "60"]
    args += ["--workers", "1", "--n-boot", "100", "--batch", "10"]
    assert active_learning([*args, "--budget", "10"]) == 0
    write_outputs(evaluated[0], out, command="pytest", sections=[report_section(out)])
    before = tree_snapshot(out)
    killed, _ = start_paused(  # the simulation done, about to put its section in report.md
        tmp_path,
        "stancelab.active.simreport:refresh_report",
        ["training.active_learning", *args, "--budget", "20"],
    )
    killed.kill()
    killed.communicate()
    assert tree_snapshot(out) == before
    assert active_learning([*args, "--budget", "20"]) == 0  # what the kill left is cleared
    new = report_section(out)
    assert "| 20 |" in new and (out / "report.md").read_text().endswith(new.rstrip("\n") + "\n")
    assert sorted(p.name for p in tmp_path.glob(".*")) == []  # no lock or temporary folder


def test_an_out_folder_of_other_files_is_refused_and_an_earlier_report_replaced_whole(
    evaluated, fixture_dir, tmp_path, capsys, monkeypatch
):
    from conftest import tree_snapshot
    from reliability_common import one_error_line

    from stancelab.models.fit import train_run
    from training.active_learning import main as active_learning
    from training.evaluate import main
    from training.pipeline import main as pipeline

    run = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out
    held_out = _write(tmp_path / "mine.jsonl", [{"text": t, "labels": lab} for t, lab in AUGMENT])
    evaluate = ["--model", str(run), "--data", str(held_out), "--quiet", "--n-boot", "100"]
    mine = tmp_path / "results"  # a user's folder: files of the report's names, one other
    _write(mine / "predictions.jsonl", [{"my": "work"}])
    (mine / "report.md").write_text("my notes\n", encoding="utf-8")
    (mine / "metrics.json").write_text('{"accuracy": 0.9}\n', encoding="utf-8")  # not ours
    (mine / "notes.txt").write_text("keep me\n", encoding="utf-8")
    before = tree_snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)  # the pipeline's steps, were they to run, write here
    for refused in (
        lambda: main([*evaluate, "--out", str(mine)]),
        lambda: active_learning(["--out", str(mine)]),
        lambda: pipeline(["--out", str(mine), "--quiet"]),
    ):
        assert refused() == 1
        line = one_error_line(capsys.readouterr().err)
        assert f"{mine}: holds files and no earlier report" in line and "--overwrite" in line
    assert tree_snapshot(tmp_path) == before  # nothing written, nothing left beside
    # --overwrite: the report's files replace theirs, the user's other file stays.
    assert main([*evaluate, "--out", str(mine), "--overwrite"]) == 0
    assert json.loads((mine / "metrics.json").read_text())["results"]["held-out"]
    assert (mine / "notes.txt").read_text() == "keep me\n"
    # An earlier report is replaced whole, without --overwrite: no figure of the old one
    # (this one, cross-validation with a learning curve) survives beside the new one.
    earlier = tmp_path / "earlier"
    shutil.copytree(fixture_dir / "report", earlier)
    assert (earlier / "learning_curve.png").exists()
    assert main([*evaluate, "--out", str(earlier)]) == 0
    assert not (earlier / "learning_curve.png").exists()
    assert json.loads((earlier / "metrics.json").read_text())["results"].keys() == {"held-out"}
    assert sorted(p.name for p in tmp_path.glob(".*")) == []  # no lock or temporary folder


def _dead_pid() -> int:
    """The id of a process that has ended (as a killed evaluation's has)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_an_active_learning_run_puts_back_a_report_a_killed_evaluation_had_moved_aside(
    evaluated, fixture_dir, tmp_path
):
    from training.active_learning import main as active_learning

    # An evaluation killed between its two renames leaves the earlier report (with a note of
    # the user's) at .out.part-old-PID and no out.
    out = tmp_path / "out"
    aside = tmp_path / f".out.part-old-{_dead_pid()}"
    shutil.copytree(fixture_dir / "report", aside)
    (aside / "notes.txt").write_text("keep me\n", encoding="utf-8")
    args = ["--out", str(out), "--seeds", "1", "--folds", "2", "--warm-start", "60"]
    assert active_learning([*args, "--batch", "10", "--budget", "10", "--workers", "1"]) == 0
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert "results" in json.loads((out / "metrics.json").read_text())
    assert (out / "active_learning.json").exists() and not aside.exists()


def test_a_report_moved_aside_by_a_killed_evaluation_whose_id_is_reused_is_put_back(
    evaluated, fixture_dir, tmp_path, capsys
):
    import subprocess
    import sys

    from training.evaluate import main

    # The killed evaluation's process id now belongs to another, live process.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        out = tmp_path / "out"
        aside = tmp_path / f".out.part-old-{other.pid}"
        shutil.copytree(fixture_dir / "report", aside)
        earlier = (aside / "report.md").read_bytes()
        missing = tmp_path / "missing.jsonl"  # this evaluation fails: the old report stays
        run = tmp_path / "run"
        shutil.copytree(fixture_dir / "report", run)  # any folder: the data is read first
        assert main(["--model", str(run), "--data", str(missing), "--out", str(out)]) == 1
        capsys.readouterr()
    finally:
        other.kill()
        other.wait()
    assert (out / "report.md").read_bytes() == earlier


def test_a_second_evaluation_into_one_out_is_refused_while_the_first_runs(
    evaluated, fixture_dir, tmp_path
):
    from reliability_common import one_error_line, run, start_paused

    from stancelab.models.fit import train_run

    model = train_run(fixture_dir / "b.yaml", out=tmp_path / "run").out
    held_out = _write(tmp_path / "mine.jsonl", [{"text": t, "labels": lab} for t, lab in AUGMENT])
    out = tmp_path / "out"
    shutil.copytree(fixture_dir / "report", out)  # an earlier report
    earlier = (out / "report.md").read_bytes()
    args = ["--model", str(model), "--data", str(held_out), "--out", str(out), "--quiet"]
    first, go = start_paused(  # the first holds --out before it scores a sentence
        tmp_path, "stancelab.evaluation.heldout:evaluate_saved", ["training.evaluate", *args]
    )
    try:
        second = run("-m", "training.evaluate", *args)
        untouched = (out / "report.md").read_bytes() == earlier
    finally:
        go.write_text("go")
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert second.returncode == 1
    assert untouched  # the first writes its report elsewhere, then moves it into place
    assert (
        f"{out}: another training.evaluate, training.pipeline or training.active_learning "
        "is writing this output" in one_error_line(second.stderr)
    )
    assert "held-out" in json.loads((out / "metrics.json").read_text())["results"]
    assert not list(tmp_path.glob(".out*"))  # no lock file or temporary folder left


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
    # So the articles that were scored have no conditional de-escalation, which macro-F1
    # counts as 0: the report says so, under that scheme's table.
    outputs = write_outputs(result, tmp_path / "r", command="pytest")
    logo_figures = json.loads(outputs.metrics.read_text())["results"]["logo"]["base_c"]["corpus"]
    assert logo_figures["labels_without_examples"] == ["conditional_deescalation"]
    logo_section = outputs.report.read_text().split("## Leave one article out")[1].split("## ")[0]
    assert "no example of conditional_deescalation, and macro-F1 counts" in logo_section
    per_article = json.loads(outputs.metrics.read_text())["per_article"]["base_c"]
    for doc in ("d1", "d2"):  # and so does the per-article table, for each article
        absent = per_article[doc]["labels_without_examples"]
        assert "conditional_deescalation" in absent
        assert f"| `{doc}` | {per_article[doc]['sentences']} | " in logo_section
        assert f" | {', '.join(absent)} |" in logo_section
    no_docs = _write(tmp_path / "nodocs.jsonl", [{"text": t, "labels": lab} for t, lab in TINY])
    config = _config(tmp_path / "d.yaml", "base_d", no_docs, tmp_path / "none", False)
    result = evaluate([config], protocol, progress=False)
    assert not any(r.scheme == "logo" for r in result.runs)
    assert any("Leave-one-article-out was skipped" in note for note in result.notes)


def test_pipeline_runs_end_to_end(tmp_path, fixture_dir, monkeypatch, capsys):
    from training.active_learning import main as active_learning
    from training.pipeline import main

    shutil.copytree(Path(__file__).resolve().parent.parent / "seeds", tmp_path / "seeds")
    shutil.copy(fixture_dir / "gold.jsonl", _write(tmp_path / "labels" / "gold.jsonl", []))
    (tmp_path / "labels" / "exports").mkdir()
    stale = ["--out", str(tmp_path / "reports" / "latest"), "--seeds", "1", "--folds", "2"]
    stale += ["--warm-start", "60", "--batch", "10", "--budget", "10", "--workers", "1"]
    assert active_learning(stale) == 0  # an earlier run's result, left in the report folder
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
    assert "Active learning" not in (tmp_path / "reports" / "latest" / "report.md").read_text()
    metrics = json.loads((tmp_path / "reports" / "latest" / "metrics.json").read_text())
    assert metrics["pipeline"]["trained"]["base_p"]["sentences"] == len(TINY) + len(AUGMENT)
    assert np.isfinite(
        metrics["results"]["kfold"]["base_p"]["corpus+augment"]["overall"]["macro_f1"]["value"]
    )


@pytest.mark.parametrize("second", ["same name", "bad key"])
def test_pipeline_refuses_configs_it_cannot_compare_before_any_step(
    tmp_path, fixture_dir, monkeypatch, capsys, second
):
    """Two configs of one name, or a config with a mistake, are refused before the corpus
    step and the training: before, the first config's run replaced runs/<name>, the second
    config's replaced it again, and only then did the evaluation refuse them."""
    from conftest import tree_snapshot
    from reliability_common import one_error_line

    from stancelab.models.fit import train_run
    from training.pipeline import main

    shutil.copytree(Path(__file__).resolve().parent.parent / "seeds", tmp_path / "seeds")
    shutil.copy(fixture_dir / "gold.jsonl", _write(tmp_path / "labels" / "gold.jsonl", []))
    (tmp_path / "labels" / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    gold, augment = Path("labels/gold.jsonl"), fixture_dir / "augment"
    first = _config(tmp_path / "p.yaml", "base_p", gold, augment, False)
    extra = ", C: 1.0" if second == "same name" else ", bogus: 1"
    other = _config(
        tmp_path / "q.yaml", "base_p" if second == "same name" else "q", gold, augment, True, extra
    )
    train_run(first, out=tmp_path / "runs" / "base_p")  # the user's earlier run
    before = tree_snapshot(tmp_path)
    assert main(["--configs", str(first), str(other), "--quiet", "--skip-active-learning"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert ("distinct names" if second == "same name" else "bogus") in line
    assert tree_snapshot(tmp_path) == before  # no corpus, no run replaced, no report


def test_pipeline_refuses_a_config_of_another_gold_set_before_any_step(
    tmp_path, fixture_dir, monkeypatch, capsys
):
    """An analyst's config of their own gold set (labels/mine/gold.jsonl) was trained and
    evaluated on it, under the corpus and gold steps of seeds/ and labels/exports/ ("gold:
    169 labelled sentences") and an active-learning benchmark run on labels/gold.jsonl
    (configs/baseline.yaml's), all in one report."""
    from conftest import tree_snapshot
    from reliability_common import one_error_line

    from training.pipeline import main

    shutil.copytree(Path(__file__).resolve().parent.parent / "seeds", tmp_path / "seeds")
    shutil.copy(fixture_dir / "gold.jsonl", _write(tmp_path / "labels" / "gold.jsonl", []))
    shutil.copy(fixture_dir / "gold.jsonl", _write(tmp_path / "labels" / "mine.jsonl", []))
    (tmp_path / "labels" / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    augment = fixture_dir / "augment"
    shipped = _config(tmp_path / "p.yaml", "base_p", Path("./labels/gold.jsonl"), augment, True)
    mine = _config(tmp_path / "m.yaml", "mine", Path("labels/mine.jsonl"), augment, True)
    before = tree_snapshot(tmp_path)
    assert main(["--configs", str(mine), "--quiet"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"error: {mine}: data.gold is labels/mine.jsonl, not labels/gold.jsonl, the gold set "
        "this pipeline rebuilds from labels/exports and seeds (and runs its active-learning "
        "benchmark on); train and evaluate your own gold set with training.train and "
        "training.evaluate (README, 'Using your own corpus')"
    )
    assert tree_snapshot(tmp_path) == before  # no corpus, no gold, no run, no report
    from stancelab.evaluation.crossval import load_configs
    from training.pipeline import refuse_other_gold

    refuse_other_gold([shipped], load_configs([shipped]))  # the same file, spelt otherwise


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
    # its figures are for unseen conflicts: the intervals draw whole dyads, and say so
    assert metrics["results"]["dyads"]["base_a"]["corpus+augment"]["resampled"] == "whole dyads"
    assert "## Leave dyads out (unseen conflicts)" in outputs.report.read_text()
    assert "(leaving dyads out: over whole dyads," in outputs.report.read_text()


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
    repeated = protocol_for(parse_args(["a.yaml", "--repeats", "4", "--articles"]))
    assert repeated.repeats == 4 and repeated.name == "default+articles+repeats4"
    assert protocol_for(parse_args(["a.yaml", "--full", "--repeats", "3"])).name == "full"
    for bad in (
        ["a.yaml", "--repeats", "0"],
        ["--model", "r", "--data", "d.jsonl", "--repeats", "2"],
    ):
        with pytest.raises(SystemExit):
            parse_args(bad)
    with pytest.raises(SystemExit):
        parse_args(["--model", "r", "--data", "d.jsonl", "--contrast"])


def test_copies_of_corpus_sentences_are_left_out_of_training(fixture_dir, tmp_path):
    copies = [
        # quotes, case, punctuation and an attribution around a corpus sentence
        "\u201cWE WILL STRIKE their bases if they cross the border again,\u201d he said.",
        "The army warned of a heavy price for any further incursions!",  # one word changed
        "\uff34\uff48\uff45 rebels are backed and financed by a hostile power, he said.",
        "Force will only be used as a last resort \u2026 the ministry said.",
    ]
    kin = "We will strike their ports if they close the strait again."  # shares 8 of 14 words
    rows = [
        {"id": f"aug{i}", "text": t, "labels": lab, "source": "authored", "dyad": f"c{i % 5}"}
        for i, (t, lab) in enumerate(AUGMENT)
    ]
    rows += [
        {"id": f"copy{i}", "text": t, "labels": ["threat"], "source": "authored", "dyad": "c0"}
        for i, t in enumerate([*copies, kin])
    ]
    aug_dir = tmp_path / "augment"
    _write(aug_dir / "a.jsonl", rows)
    aug, gold = load_augmentation(aug_dir), load_labelled(fixture_dir / "gold.jsonl")
    kept = {aug.texts[i] for i in unseen(aug, gold)}
    assert kept == {t for t, _ in AUGMENT} | {kin}
    config = _config(tmp_path / "c.yaml", "base_c", fixture_dir / "gold.jsonl", aug_dir, True)
    protocol = Protocol("test", folds=3, leave_one_article_out=False, contrast=(), curve=())
    result = evaluate([config], protocol, progress=False)
    assert sorted(result.augmentation.texts) == sorted(kept)
    assert "4 augmentation sentence(s) copy a corpus sentence" in " ".join(result.notes)


def test_leave_dyads_out_needs_one_augmentation_set_for_every_model(fixture_dir, tmp_path):
    other = tmp_path / "other"
    rows = [
        {"id": f"aug{i}", "text": t, "labels": lab, "source": "authored", "dyad": f"c{i % 5}"}
        for i, (t, lab) in enumerate(AUGMENT)
    ]
    extra = {"id": "x", "text": "The guards fired warning shots at the ferry.", "labels": []}
    _write(other / "a.jsonl", [*rows, {**extra, "source": "authored", "dyad": "c9"}])
    gold = fixture_dir / "gold.jsonl"
    protocol = Protocol(
        "dyads", folds=3, leave_one_article_out=False, contrast=(), curve=(), leave_dyads_out=5
    )
    differ = _config(tmp_path / "x.yaml", "base_x", gold, other, True)
    result = evaluate([fixture_dir / "a.yaml", differ], protocol, progress=False)
    assert result.dyads is None
    assert any(
        n.startswith("Leave-dyads-out was skipped: the configs train on different augmentation")
        for n in result.notes
    )
    assert any(f"base_x: {other}, {len(AUGMENT) + 1} sentences" in n for n in result.notes)
    # The same rows in another folder are the same set; a config that does not train on
    # augmentation does not choose the set (its folder is ignored).
    _write(tmp_path / "same" / "a.jsonl", rows)
    same = _config(tmp_path / "s.yaml", "base_s", gold, tmp_path / "same", True)
    unused = _config(tmp_path / "u.yaml", "base_u", gold, other, False)
    result = evaluate([unused, fixture_dir / "a.yaml", same], protocol, progress=False)
    assert result.dyads is not None and str(result.dyads.data_path) == str(fixture_dir / "augment")
    assert sorted(result.dyads.data.texts) == sorted(t for t, _ in AUGMENT)
    assert {r.config for r in result.dyads.runs} == {"base_a", "base_s"}
    timing = write_outputs(result, tmp_path / "r", command="pytest")
    per_model = json.loads(timing.metrics.read_text())["timing"]["per_model"]
    assert per_model["base_a"]["fits"] == 3 + 5  # the corpus folds and the dyad folds
    assert per_model["base_u"]["fits"] == 3


def test_training_sentences_are_matched_by_their_words_and_wordless_ones_whole():
    from stancelab.models.runs import text_hash

    same = ["We will “strike” back.", "we will 'STRIKE' back…", "We will strike back"]
    assert len({text_hash(t) for t in same}) == 1
    # Sentences without words match only themselves (white space aside), never each other.
    assert text_hash("—") == text_hash(" — ") != text_hash("?!") != text_hash("...")
    assert text_hash("?!") != text_hash("")


def test_a_wordless_corpus_sentence_is_no_copy_of_another_wordless_one():
    from stancelab.data.labelled import LabelledSet

    corpus = LabelledSet(ids=["c0", "c1"], texts=["—", "We will strike back."], labels=[(), ()])
    aug = LabelledSet(
        ids=["a0", "a1", "a2"], texts=["?!", " — ", "We will STRIKE back"], labels=[(), (), ()]
    )
    # "?!" copies nothing; " — " is the corpus's "—"; the last has its words.
    assert unseen(aug, corpus) == [0]


def test_the_one_repeat_line_names_the_command_that_takes_repeats():
    """A report of ``training.pipeline`` says the same, and the pipeline has no --repeats."""
    from stancelab.evaluation.report import _repeats_section

    metrics = {"results": {"kfold": {}}, "seed_variance": {"m": {"repeats": 1}}}
    (line,) = [s for s in _repeats_section(metrics) if s.startswith("- m:")]
    assert "`python -m training.evaluate` with `--repeats 3`" in line


def test_the_pipeline_keys_a_training_run_by_its_config_name_also_through_a_link(
    tmp_path, fixture_dir, monkeypatch
):
    """The progress bar's per-row hints are looked up by config name: a run directory that
    is a link (``runs/base_p`` -> elsewhere, written where it points) keeps that name."""
    from training.pipeline import step_train

    (tmp_path / "disk" / "big_run").mkdir(parents=True)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "base_p").symlink_to(tmp_path / "disk" / "big_run")
    monkeypatch.chdir(tmp_path)
    config = _config(
        tmp_path / "p.yaml", "base_p", fixture_dir / "gold.jsonl", fixture_dir / "augment", True
    )
    trained = step_train([config])
    assert list(trained) == ["base_p"]
    assert trained["base_p"]["rows"] == len(TINY) + len(AUGMENT)
    assert (tmp_path / "disk" / "big_run" / "stancelab.json").exists()


def test_the_time_left_of_the_dyad_folds_starts_from_the_training_runs_hints(fixture_dir, capsys):
    # The pipeline's hints (seconds per row trained on, from its training runs) hold for
    # every scheme's fits: with them, no bar of the evaluation starts at "estimating".
    protocol = Protocol(
        "dyads", folds=3, leave_one_article_out=False, contrast=(), curve=(), leave_dyads_out=5
    )
    result = evaluate([fixture_dir / "a.yaml"], protocol, rate_hints={"base_a": 1e-3})
    assert result.dyads is not None
    bars = capsys.readouterr().err
    assert "left" in bars and "estimating" not in bars
    evaluate([fixture_dir / "a.yaml"], protocol)  # without hints: until the first fit
    assert "time left: estimating" in capsys.readouterr().err
