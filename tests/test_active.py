"""Model-assisted annotation: selection strategies, the simulated benchmark,
and ``stancelab label suggest`` / ``review`` against the real Label Studio server (conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from typer.testing import CliRunner

from stancelab.active.selection import label_uncertainty, select
from stancelab.active.simreport import report_section, simulation_verdict
from stancelab.active.simulation import Setup, summarize_curves
from stancelab.config import BaselineParams
from stancelab.evaluation.metrics import macro_f1
from stancelab.labels import LABELS
from stancelab.models.baseline import BaselineModel

runner = CliRunner()
THEMES = {
    "border": "Troops shelled the border villages again overnight, officials said",
    "talks": "Negotiators will meet in Doha next week to discuss a prisoner exchange",
    "denial": "The ministry flatly denied that its drones struck the fuel depot",
    "aid": "Aid convoys reached the besieged city after a three-week blockade",
}


def paraphrases(theme: str, n: int) -> list[str]:
    return [
        f"{THEMES[theme]} ({['on Monday', 'on Tuesday', 'late', 'early'][i % 4]})."
        for i in range(n)
    ]


# --- strategies --------------------------------------------------------------------------------


def test_uncertainty_is_closeness_to_each_labels_own_threshold():
    thresholds = [0.2, 0.5, 0.5, 0.8]
    proba = np.array([[0.2, 0.5, 0.0, 1.0], [0.1, 0.75, 1.0, 0.4]])
    u = label_uncertainty(proba, thresholds)
    assert u[0].tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0])
    assert u[1].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.5])  # scaled on each side of t


def test_uncertainty_picks_the_uncertain_sentences_first():
    texts = [text for theme in THEMES for text in paraphrases(theme, 1)] + [
        "A cargo ship docked at the northern port.",
        "Schools reopened in the capital after the holiday.",
    ]
    proba = np.full((len(texts), len(LABELS)), 0.02)
    proba[4, 3] = 0.29  # at denial's threshold (0.3): the most uncertain
    proba[1, 0] = 0.55  # just above threat's 0.5
    proba[2, 2] = 0.99  # confident: not uncertain
    picks = select("uncertainty", texts, 2, proba=proba, thresholds=[0.5, 0.5, 0.5, 0.3], weight=0)
    assert [p.index for p in picks] == [4, 1] and [p.rank for p in picks] == [1, 2]
    assert picks[0].score == pytest.approx(1 - 0.01 / 0.3)


def test_diversity_penalty_keeps_near_copies_out_of_one_batch():
    texts = paraphrases("border", 4) + paraphrases("talks", 1) + paraphrases("aid", 1)
    proba = np.full((len(texts), len(LABELS)), 0.02)
    proba[:4, 0] = 0.5  # the four near-copies are the most uncertain
    proba[4:, 0] = 0.4
    plain = select("uncertainty", texts, 3, proba=proba, weight=0)
    assert {p.index for p in plain} <= {0, 1, 2, 3}  # without the penalty: three near-copies
    diverse = select("uncertainty", texts, 3, proba=proba)
    assert sorted(p.index for p in diverse)[1:] == [4, 5] and diverse[0].index in {0, 1, 2, 3}
    assert diverse[1].similarity < 0.5 and diverse[0].similarity == 0.0
    # A sentence close to one already labelled is pushed down the same way.
    labelled = select("uncertainty", texts, 1, proba=proba, labelled_texts=paraphrases("border", 1))
    assert labelled[0].index in {4, 5}


def test_diversity_strategy_covers_the_themes_and_is_deterministic():
    texts = [t for theme in THEMES for t in paraphrases(theme, 3)]
    picks = select("diversity", texts, 4, seed=3)
    assert sorted(p.index // 3 for p in picks) == [0, 1, 2, 3]  # one per theme
    assert select("diversity", texts, 4, seed=3) == picks
    one = select("random", texts, 6, seed=1)
    assert one == select("random", texts, 6, seed=1) and one != select("random", texts, 6, seed=2)
    assert len(select("random", texts[:3], 10)) == 3
    with pytest.raises(ValueError, match="needs the model's probabilities"):
        select("uncertainty", texts, 2)
    with pytest.raises(ValueError, match="unknown strategy"):
        select("margin", texts, 2)


# --- the simulated benchmark -------------------------------------------------------------------


def test_benchmark_statistics_and_verdict():
    rng = np.random.default_rng(1)
    y = (rng.random((60, 4)) < 0.4).astype(int)
    noisy = np.where(rng.random((3, 4, 60, 4)) < 0.3, 1 - y, y)
    setup = Setup(seeds=3, batch=10, budget=30, n_boot=300)
    from sklearn.metrics import f1_score

    assert float(macro_f1(y, noisy[0, 0])) == pytest.approx(
        f1_score(y, noisy[0, 0], average="macro", zero_division=0)
    )
    better = noisy.copy()
    better[:, 1:] = y  # uncertainty reaches the gold labels after the first round
    pred = np.stack([better, noisy], axis=1)  # (seeds, strategies, budgets, n, L)
    result = summarize_curves(pred, y, setup)
    diff = result["difference"]
    assert diff["mean"][0] == 0 and diff["average_gain_interval"][0] > 0
    assert diff["seeds_ahead"][1:] == [3, 3, 3]
    result.update(setup={**setup.__dict__, "strategies": list(setup.strategies)})
    assert simulation_verdict(result).startswith("**Yes: uncertainty sampling helps here.**")
    same = summarize_curves(np.stack([noisy, noisy], axis=1), y, setup)
    same.update(setup=result["setup"])
    assert simulation_verdict(same).startswith("**Not shown")


def test_benchmark_entry_point_writes_its_outputs(tmp_path):
    from training.active_learning import main

    assert report_section(tmp_path) is None
    args = ["--out", str(tmp_path), "--seeds", "1", "--folds", "2", "--warm-start", "60"]
    assert (
        main([*args, "--batch", "10", "--budget", "10", "--workers", "1", "--n-boot", "100"]) == 0
    )
    result = json.loads((tmp_path / "active_learning.json").read_text())
    assert result["budgets"] == [0, 10] and set(result["curves"]) == {"uncertainty", "random"}
    assert (tmp_path / "active_learning.png").stat().st_size > 10_000
    section = report_section(tmp_path)
    assert section.startswith("## Active learning (simulated)") and "active_learning.png" in section
    assert section in (tmp_path / "active_learning.md").read_text()


@pytest.mark.parametrize(
    "given, named",
    [
        (["--n-boot", "0"], "--n-boot"),  # a traceback after the whole simulation
        (["--folds", "1"], "--folds"),  # ran 2 folds, reported "1-fold" and a pool of 0
        (["--folds", "500"], "--folds"),  # ran one fold per sentence (169), reported 500
        (["--warm-start", "-5"], "--warm-start"),  # started from all but 5 authored sentences
        (["--budget", "25"], "--budget 25 is not a multiple of --batch 10"),  # stopped at 20
        (  # named the first pool found too small, not the budget that fits them all
            ["--budget", "90"],
            "--budget 90 exceeds the smallest pool of the folds, 83 sentences: give --budget "
            "80 or less",
        ),
    ],
)
def test_benchmark_refuses_settings_out_of_range_before_the_work(tmp_path, capsys, given, named):
    from training.active_learning import main

    out = tmp_path / "report"
    args = ["--out", str(out), "--seeds", "1", "--folds", "2", "--warm-start", "60"]
    args += ["--batch", "10", "--budget", "10", "--workers", "1", "--n-boot", "100", *given]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0]
    assert not out.exists() or not any(out.iterdir())


# --- augmentation copies of gold sentences: left out of training, and said so ---------------

ROOT = Path(__file__).resolve().parent.parent
COPIES_NOTE = (
    "3 augmentation sentence(s) copy a corpus sentence (the same words, or at least 80% of "
    "them) and were left out of {}."
)


def config_with_gold_copies(tmp_path: Path) -> Path:
    """The baseline config with 3 gold sentences added to (part of) its augmentation set as
    authored ones (as a gold file that holds augmentation sentences has them)."""
    import shutil

    import yaml

    augment = tmp_path / "augment"
    augment.mkdir()
    shutil.copy(ROOT / "labels" / "augment" / "asia_pacific.jsonl", augment)  # enough here
    gold = (ROOT / "labels" / "gold.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    (augment / "copies.jsonl").write_text(
        "".join(
            json.dumps({**json.loads(row), "id": f"copy{i}", "source": "authored", "dyad": "A–B"})
            + "\n"
            for i, row in enumerate(gold)
        ),
        encoding="utf-8",
    )
    config = yaml.safe_load((ROOT / "configs" / "baseline.yaml").read_text(encoding="utf-8"))
    config["data"].update(gold=str(ROOT / "labels" / "gold.jsonl"), augment_dir=str(augment))
    config["params"]["inner_folds"] = 3
    path = tmp_path / "copies.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_the_simulation_notes_augmentation_copies_of_gold_it_leaves_out(tmp_path, capsys):
    from training.active_learning import main

    out = tmp_path / "report"
    args = ["--out", str(out), "--config", str(config_with_gold_copies(tmp_path)), "--seeds", "1"]
    args += ["--folds", "2", "--warm-start", "60", "--batch", "10", "--budget", "10"]
    assert main([*args, "--workers", "1", "--n-boot", "100"]) == 0
    note = COPIES_NOTE.format("the warm starts")
    assert json.loads((out / "active_learning.json").read_text())["notes"] == [note]
    assert f"note: {note}" in capsys.readouterr().out.splitlines()


def test_review_cross_validation_notes_augmentation_copies_of_gold_it_leaves_out(tmp_path):
    from stancelab.active.assist import load_sources
    from stancelab.data.labelled import load_labelled

    gold = load_labelled(ROOT / "labels" / "gold.jsonl", default_source="corpus")
    config = config_with_gold_copies(tmp_path)
    sources, notes = load_sources(gold, config_path=config, folds=2, log=lambda _: None)
    assert notes == [COPIES_NOTE.format("every training fold")]  # label review prints them
    assert sources[0].proba.shape == (len(gold), len(LABELS))


# --- Label Studio: suggest and review ----------------------------------------------------------


def cli(args: list[str], creds):
    from stancelab.cli import app

    env = {"LABEL_STUDIO_URL": creds.url, "LABEL_STUDIO_API_KEY": creds.token}
    return runner.invoke(app, ["label", *args], env=env)


def project_tasks(creds, title: str) -> list:
    from stancelab.annotation.client import connect, find_project

    ls = connect(creds)
    pid = find_project(ls, title).id
    return sorted(ls.tasks.list(project=pid, fields="all"), key=lambda t: t.id)


def test_suggest_with_a_gold_file_that_is_not_there_is_refused_before_the_server(tmp_path):
    """By the command and, with the same line, by the Python API (which went on as if there
    were no gold set)."""
    from stancelab.active.assist import suggest
    from stancelab.annotation.credentials import Credentials
    from stancelab.cli import app
    from stancelab.errors import InputError

    sentences = tmp_path / "sentences.jsonl"
    sentences.write_text(json.dumps({"id": "s1", "doc_id": "d", "text": TINY[0][0]}) + "\n")
    typo = tmp_path / "labels" / "gld.jsonl"  # gold.jsonl mistyped: nothing would be left out
    args = ["label", "suggest", "--strategy", "random", "--sentences", str(sentences)]
    env = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "token-123456"}
    done = runner.invoke(app, [*args, "--gold", str(typo)], env=env)
    assert done.exit_code == 1 and done.stderr.count("\n") == 1, done.output
    assert done.stderr.startswith(f"error: {typo}: no such file (--gold)"), done.stderr
    creds = Credentials(env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"])
    with pytest.raises(InputError) as refused:
        suggest(creds, "p", sentences, predictor=None, k=1, strategy="random", gold_path=typo)
    assert f"error: {refused.value}\n" == done.stderr


@pytest.fixture
def tiny_model(tmp_path, tiny_texts, tiny_labels) -> Path:
    model = BaselineModel(BaselineParams(inner_folds=3), seed=1).fit(tiny_texts, tiny_labels)
    return model.save(tmp_path / "model")


@pytest.mark.labelstudio
@pytest.mark.slow
def test_suggest_pushes_in_rank_order_with_preannotations_and_never_duplicates(
    labelstudio, tmp_path, tiny_model
):
    from stancelab.annotation.client import connect, find_project
    from stancelab.annotation.tasks import ModelPredictor

    creds = labelstudio.credentials
    rows = [
        {"id": f"d{i % 3}-s{i}", "doc_id": f"d{i % 3}", "index": i, "text": text}
        for i, (text, _) in enumerate(TINY)
    ]
    sentences, gold = tmp_path / "sentences.jsonl", tmp_path / "gold.jsonl"
    sentences.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gold.write_text("".join(json.dumps({**r, "labels": []}) + "\n" for r in rows[:4]))
    pushed = tmp_path / "pushed.jsonl"  # half the pool is already in the project, unranked
    pushed.write_text("".join(json.dumps(r) + "\n" for r in rows[4:14]))
    assert cli(["push", "--project", "suggested", "--sentences", str(pushed)], creds).exit_code == 0
    args = ["suggest", "--project", "suggested", "--model", str(tiny_model), "--k", "6"]
    args += ["--sentences", str(sentences), "--gold", str(gold)]
    done = cli(args, creds)
    assert done.exit_code == 0 and "20 candidate sentence(s)" in done.stdout, done.output

    # The same choice the library makes, in the same order, in Label Studio.
    predictor = ModelPredictor(tiny_model)
    pool = rows[4:]
    proba = np.array([[p.scores[n] for n in LABELS] for p in predictor(pool).values()])
    expected = select(
        "uncertainty",
        [r["text"] for r in pool],
        6,
        proba=proba,
        thresholds=predictor.model.thresholds_,
        labelled_texts=[r["text"] for r in rows[:4]],
    )
    order = [pool[p.index]["id"] for p in expected]
    fresh = [i for i in order if i not in {r["id"] for r in rows[4:14]}]
    assert f"{len(fresh)} new task(s), {6 - len(fresh)} re-ranked" in done.stdout
    assert f"{len(fresh)} with new tasks, {6 - len(fresh)} added to existing" in done.stdout
    tasks = project_tasks(creds, "suggested")
    ranked = {t.data["id"]: t for t in tasks if "rank" in t.data}
    assert [ranked[i].data["rank"] for i in order] == [1, 2, 3, 4, 5, 6]
    assert [t.data["id"] for t in tasks[10:]] == fresh  # new tasks are imported in rank order
    for task in tasks:
        if task.data["id"] not in ranked:
            assert not task.predictions
            continue
        (pred,) = task.predictions
        assert pred.model_version == predictor.model_version
        choices = pred.result[0]["value"]["choices"]
        assert choices == list(predictor.model.predict(task.data["text"])[0])
    ls = connect(creds)
    pid = find_project(ls, "suggested").id
    (view,) = [v for v in ls.views.list(project=pid) if v.data["title"] == "stancelab: label next"]
    in_view = [t.data["id"] for t in ls.tasks.list(project=pid, view=view.id, include="id,data")]
    assert in_view == order

    again = cli(args, creds)
    assert "0 new task(s), 0 re-ranked, 6 unchanged" in again.stdout, again.output
    first = ranked[order[0]]
    ls.annotations.create(id=first.id, result=[])  # rank 1 gets labelled ("none")
    third = cli(
        [*args[:-4], "--strategy", "random", "--sentences", str(sentences), "--gold", str(gold)],
        creds,
    )
    assert third.exit_code == 0 and "19 candidate sentence(s)" in third.stdout, third.output
    after = project_tasks(creds, "suggested")
    ids = [t.data["id"] for t in after]
    assert len(ids) == len(set(ids))  # never a second task for a sentence
    others = [t for t in after if t.id != first.id]
    assert next(t for t in after if t.id == first.id).data == first.data  # left alone
    ranked = sorted((t.data["rank"], t.data["id"]) for t in others if "rank" in t.data)
    assert [r for r, _ in ranked] == [1, 2, 3, 4, 5, 6]
    assert all(t.data["strategy"] == "random" for t in others if "rank" in t.data)
    in_view = [t.data["id"] for t in ls.tasks.list(project=pid, view=view.id, include="id,data")]
    assert in_view == [i for _, i in ranked]  # the annotated one has left the tab


@pytest.mark.labelstudio
@pytest.mark.slow
def test_review_pushes_gold_and_predictions_side_by_side_ranked_and_idempotent(
    labelstudio, tmp_path, tiny_gold
):
    creds = labelstudio.credentials
    gold = [json.loads(line) for line in tiny_gold.read_text().splitlines()]
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"models": {"base": {"primary": "corpus"}}}))
    lines = []
    for model in ("base", "tx"):
        for row in gold:
            proba = {n: (0.9 if n in row["labels"] else 0.05) for n in LABELS}
            if row["id"] == "s12":  # gold denial; both models say accusation, not denial
                proba |= {"denial": 0.02, "accusation": 0.95}
            if row["id"] == "s3" and model == "tx":  # gold threat; only tx disagrees
                proba["threat"] = 0.03
            for variant in ("corpus", "50% corpus"):
                lines.append(
                    {
                        "model": model,
                        "variant": variant,
                        "scheme": "kfold",
                        "repeat": 0,
                        "id": row["id"],
                        "gold": row["labels"],
                        "predicted": [n for n, p in proba.items() if p >= 0.5],
                        "proba": proba if variant == "corpus" else dict.fromkeys(LABELS, 0.5),
                    }
                )
    (out / "predictions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    args = ["review", "--project", "tiny", "--gold", str(tiny_gold), "--k", "5"]
    args += ["--predictions", str(out / "predictions.jsonl")]
    done = cli(args, creds)
    assert done.exit_code == 0, done.output
    assert "base (corpus), tx (corpus) on 24 gold sentence(s): 2 flagged" in done.stdout
    tasks = project_tasks(creds, "tiny-review")
    assert [(t.data["id"], t.data["review_rank"]) for t in tasks] == [("s12", 1), ("s3", 2)]
    first = tasks[0].data
    assert first["gold"] == "denial" and first["flagged_by"] == 2
    assert first["predicted"] == "base (corpus): accusation; tx (corpus): accusation"
    assert "Gold: denial" in first["review"] and "denial: gold yes" in first["suspect"]
    versions = {p.model_version: p.result[0]["value"]["choices"] for p in tasks[0].predictions}
    assert sorted(v.split("-")[1] for v in versions) == ["base", "tx"]
    assert list(versions.values()) == [["accusation"], ["accusation"]]
    assert tasks[1].data["gold"] == "threat" and tasks[1].data["flagged_by"] == 1

    again = cli(args, creds)
    assert "0 new task(s), 0 re-ranked, 2 unchanged" in again.stdout, again.output
    assert len(project_tasks(creds, "tiny-review")) == 2

    # Cross-validation instead of a predictions file: a corpus-only baseline config.
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"model: baseline\nname: tinybase\ndata:\n  gold: {tiny_gold}\n  augment: false\n"
        "params:\n  inner_folds: 3\n"
    )
    cv = cli(
        [
            "review",
            "--project",
            "tiny-cv",
            "--gold",
            str(tiny_gold),
            "--config",
            str(config),
            "--folds",
            "3",
        ],
        creds,
    )
    assert cv.exit_code == 0 and "out-of-fold predictions from tinybase" in cv.stdout, cv.output
    ranks = [t.data["review_rank"] for t in project_tasks(creds, "tiny-cv-review")]
    assert sorted(ranks) == list(range(1, len(ranks) + 1))
