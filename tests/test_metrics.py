"""The evaluation statistics against hand-computed cases and known behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from stancelab.data.labelled import LabelledSet
from stancelab.evaluation.comparison import compare, summarize_run
from stancelab.evaluation.erroranalysis import ALL_FAIL, DISAGREE, select_cases
from stancelab.evaluation.metrics import (
    expected_calibration_error,
    figures,
    holm,
    mcnemar,
    paired_bootstrap,
    repeat_picks,
    repeat_spread,
    resample_weights,
    summarize,
)
from stancelab.evaluation.protocol import Protocol
from stancelab.evaluation.results import EvaluationResult, Run
from stancelab.labels import LABELS

# Four sentences, labels in scheme order (threat, conditional_deescalation, accusation, denial).
Y = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
PRED = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
PROBA = np.array(
    [[0.9, 0.1, 0.2, 0.1], [0.4, 0.2, 0.1, 0.1], [0.3, 0.8, 0.1, 0.2], [0.6, 0.1, 0.3, 0.1]]
)


def test_figures_on_a_hand_made_example():
    f = figures(Y, PROBA[None], PRED[None], np.ones((1, 4)))
    # threat: tp 1, fp 1, fn 1 -> P = R = F1 = 0.5; conditional: perfect; the two labels
    # without any gold or predicted positive score 0 (scikit-learn's zero_division=0).
    assert f["precision"][0].tolist() == [0.5, 1.0, 0.0, 0.0]
    assert f["recall"][0].tolist() == [0.5, 1.0, 0.0, 0.0]
    assert f["f1"][0].tolist() == [0.5, 1.0, 0.0, 0.0]
    assert f["macro_f1"][0] == pytest.approx(0.375)
    assert f["micro_f1"][0] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert f["exact_match"][0] == pytest.approx(0.5)  # sentences 1 and 3
    assert f["none_accuracy"][0] == 0.0  # the one none sentence was predicted threat
    assert f["support"][0].tolist() == [2, 1, 0, 0]
    # threat ranking 0.9 (pos), 0.6 (neg), 0.4 (pos): AP = 0.5 * 1 + 0.5 * 2/3
    assert f["pr_auc"][0, 0] == pytest.approx(0.5 + 1 / 3)
    assert np.isnan(f["pr_auc"][0, 2])  # no positive: undefined, not zero


def test_weighted_figures_match_scikit_learn_and_calibration():
    rng = np.random.default_rng(3)
    y = (rng.random((80, 4)) < 0.3).astype(int)
    proba = np.round(np.clip(0.5 * y + 0.6 * rng.random((80, 4)), 0, 1), 1)  # many ties
    pred = (proba >= 0.5).astype(int)
    w = rng.integers(0, 3, (4, 80)).astype(float)
    f = figures(y, proba[None], pred[None], w)
    for b in range(len(w)):
        for j in range(4):
            expected = average_precision_score(y[:, j], proba[:, j], sample_weight=w[b])
            assert f["pr_auc"][b, j] == pytest.approx(expected)
        kwargs = {"zero_division": 0, "sample_weight": w[b]}
        assert f["macro_f1"][b] == pytest.approx(f1_score(y, pred, average="macro", **kwargs))
        assert f["micro_f1"][b] == pytest.approx(f1_score(y, pred, average="micro", **kwargs))
    unit = figures(y, proba[None], pred[None], np.ones((1, 80)))
    assert unit["ece"][0] == pytest.approx(expected_calibration_error(y, proba))


def test_repeats_are_averaged():
    other = 1 - PRED
    both = figures(Y, np.stack([PROBA, PROBA]), np.stack([PRED, other]), np.ones((1, 4)))
    one = figures(Y, PROBA[None], PRED[None], np.ones((1, 4)))["macro_f1"][0]
    two = figures(Y, PROBA[None], other[None], np.ones((1, 4)))["macro_f1"][0]
    assert both["macro_f1"][0] == pytest.approx((one + two) / 2)


def test_resample_weights_are_seeded_counts():
    w = resample_weights(50, 30, seed=7)
    assert w.shape == (30, 50)
    assert (w.sum(axis=1) == 50).all()
    assert np.array_equal(w, resample_weights(50, 30, seed=7))
    assert not np.array_equal(w, resample_weights(50, 30, seed=8))


def test_bootstrap_interval_covers_the_true_value_on_synthetic_data():
    # A model whose exact-set accuracy in the population is 0.7: over many samples of 150
    # sentences, the 95% interval must cover 0.7 in about 95% of them.
    rng = np.random.default_rng(11)
    covered, widths = 0, []
    for _ in range(60):
        y = (rng.random((150, 4)) < 0.25).astype(int)
        right = rng.random(150) < 0.7
        pred = np.where(right[:, None], y, 1 - y)
        s = summarize(y, y[None].astype(float), pred[None], n_boot=400, seed=1)
        lo, hi = s["overall"]["exact_match"]["ci"]
        covered += lo <= 0.7 <= hi
        widths.append(hi - lo)
    assert covered / 60 >= 0.85
    assert 0.08 < np.mean(widths) < 0.2  # about 2 * 1.96 * sqrt(0.21 / 150) = 0.147


def test_summarize_reports_every_figure_with_an_interval():
    s = summarize(Y, PROBA, PRED, n_boot=200, seed=0)
    assert s["sentences"] == 4 and s["repeats"] == 1
    for fig in s["overall"].values():
        lo, hi = fig["ci"]
        assert lo <= fig["value"] <= hi
    assert s["per_label"]["threat"]["support"] == 2
    assert s["per_label"]["accusation"]["pr_auc"] == {"value": None, "ci": [None, None]}


def test_mcnemar_on_a_hand_computed_table():
    # threat: 7 discordant sentences, model a alone right on 1, model b alone right on 6,
    # and 3 sentences both right. Exact two-sided binomial: 2 * P(X <= 1 | 7, 0.5) = 16/128.
    y = np.zeros((10, 4), int)
    y[:, 0] = 1
    a = np.zeros((10, 4), int)
    b = np.zeros((10, 4), int)
    a[[0, 7, 8, 9], 0] = 1  # right on 0 (alone) and on 7-9 (with b)
    b[1:10, 0] = 1  # right on 1-6 alone and on 7-9
    result = mcnemar(y, a, b)
    assert (result["threat"]["a_only"], result["threat"]["b_only"]) == (1, 6)
    assert result["threat"]["p_value"] == pytest.approx(0.125)
    assert result["denial"] == {"a_only": 0, "b_only": 0, "p_value": 1.0, "p_holm": 1.0}
    # 10 against 0: 2 * 0.5 ** 10
    b[:, 1] = 1
    assert mcnemar(y, a, b)["conditional_deescalation"]["p_value"] == pytest.approx(2 / 1024)


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_paired_bootstrap_identical_and_clearly_different_models():
    rng = np.random.default_rng(5)
    y = (rng.random((120, 4)) < 0.3).astype(int)
    good = np.where(rng.random((120, 4)) < 0.9, y, 1 - y)
    bad = np.where(rng.random((120, 4)) < 0.6, y, 1 - y)
    same = paired_bootstrap(
        y, (good[None] * 1.0, good[None]), (good[None] * 1.0, good[None]), n_boot=300
    )
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["p_value"] == 1.0
    diff = paired_bootstrap(
        y, (good[None] * 1.0, good[None]), (bad[None] * 1.0, bad[None]), n_boot=500
    )
    assert diff["difference"] > 0.2 and diff["ci"][0] > 0 and diff["p_value"] < 0.01
    back = paired_bootstrap(
        y, (bad[None] * 1.0, bad[None]), (good[None] * 1.0, good[None]), n_boot=500
    )
    assert back["difference"] == pytest.approx(-diff["difference"])
    assert back["ci"] == pytest.approx([-diff["ci"][1], -diff["ci"][0]])


def _noisy(y: np.ndarray, right: float, seed: int) -> np.ndarray:
    """Predictions of ``y`` that get each cell right with probability ``right``."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(y.shape) < right, y, 1 - y)


def test_intervals_over_repeats_include_how_far_another_repeat_would_move_the_figure():
    # Two repeats of one model on 600 sentences, one far better than the other (a lucky and
    # an unlucky seed). Over sentences alone the mean of the two is known to about ±0.03;
    # a third seed could land near either, so the interval must reach towards both.
    rng = np.random.default_rng(3)
    y = (rng.random((600, 4)) < 0.3).astype(int)
    lucky, unlucky = _noisy(y, 0.95, 1), _noisy(y, 0.65, 2)
    pred = np.stack([lucky, unlucky])
    s = summarize(y, pred * 1.0, pred, n_boot=1000, seed=0)
    per_repeat = s["per_repeat"]["macro_f1"]
    assert per_repeat[0] - per_repeat[1] > 0.3
    lo, hi = s["overall"]["macro_f1"]["ci"]
    assert lo < per_repeat[1] + 0.05 and hi > per_repeat[0] - 0.05
    assert s["resampled"] == "sentences and repeats"
    # A repeat given twice adds no spread: the interval is that of the one repeat over
    # sentences, and one repeat's summary is as before (sentences only).
    one = summarize(y, lucky[None] * 1.0, lucky[None], n_boot=1000, seed=0)
    twice = summarize(y, np.stack([lucky, lucky]) * 1.0, np.stack([lucky, lucky]), n_boot=1000)
    assert one["resampled"] == "sentences"
    assert twice["overall"]["macro_f1"]["ci"] == pytest.approx(one["overall"]["macro_f1"]["ci"])
    assert twice["per_label"]["denial"]["f1"]["ci"] == pytest.approx(
        one["per_label"]["denial"]["f1"]["ci"]
    )


def test_paired_bootstrap_draws_both_models_repeats_alike():
    rng = np.random.default_rng(4)
    y = (rng.random((500, 4)) < 0.3).astype(int)
    strong, weak = _noisy(y, 0.95, 1), _noisy(y, 0.7, 2)
    # a equals b on every repeat, though the repeats differ a lot: the difference is 0 in
    # every resample only if repeat r of a is always drawn with repeat r of b
    b = np.stack([strong, weak])
    same = paired_bootstrap(y, (b * 1.0, b), (b * 1.0, b), n_boot=400)
    assert same["ci"] == [0.0, 0.0] and same["resampled"] == "sentences and repeats"
    # a leads by a lot on one repeat and trails on the other: the mean lead is small and
    # positive, and another repeat could go either way, so the interval holds 0
    a = np.stack([strong, _noisy(y, 0.6, 3)])
    c = np.stack([weak, weak])
    diff = paired_bootstrap(y, (a * 1.0, a), (c * 1.0, c), n_boot=1000)
    first = paired_bootstrap(y, (a[:1] * 1.0, a[:1]), (c[:1] * 1.0, c[:1]), n_boot=1000)
    assert first["ci"][0] > 0.1  # on the lucky repeat alone the lead is clear
    assert diff["difference"] > 0 and diff["ci"][0] < 0 < diff["ci"][1]


def test_repeat_picks_are_seeded_draws_with_replacement():
    picks = repeat_picks(3, 500, seed=1)
    assert picks.shape == (500, 3) and set(np.unique(picks)) == {0, 1, 2}
    assert np.array_equal(picks, repeat_picks(3, 500, seed=1))
    assert (np.ptp(picks, axis=1) == 0).any()  # some resamples draw one repeat three times


def test_repeat_spread():
    s = repeat_spread([0.5, 0.6, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)
    assert (s["min"], s["max"], s["repeats"]) == (0.5, 0.7, 3)
    assert repeat_spread([0.4])["std"] is None


def test_select_cases_ranks_failures_and_disagreements():
    y = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    pa = np.array([[0.2, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 0.4, 0], [0, 0, 0, 0.1]])
    pb = np.array([[0.1, 0, 0, 0], [0, 0.1, 0, 0], [0, 0, 0.45, 0], [0, 0, 0, 0.1]])
    cases = select_cases(
        y, {"a": (pa, (pa >= 0.5).astype(int)), "b": (pb, (pb >= 0.5).astype(int))}
    )
    # Sentences 0 and 2 fail in both (0 by a larger margin); 1: only a is right; 3: both right.
    assert [(c["index"], c["kind"]) for c in cases] == [(0, ALL_FAIL), (2, ALL_FAIL), (1, DISAGREE)]


def _dyad_result(seed: int) -> tuple[EvaluationResult, float]:
    """Leave-dyads-out predictions of two models on 30 conflicts of 12 sentences, and the
    population exact-set accuracy of the first. Whether a model gets a sentence right is
    decided per conflict (a conflict it reads right or wrong, as a new conflict's wording
    is), so the sentences of one conflict are not independent draws."""
    rng = np.random.default_rng(seed)
    dyads = [f"c{i // 12}" for i in range(360)]
    y = (rng.random((360, 4)) < 0.3).astype(int)
    right_a = np.repeat(rng.random(30) < 0.7, 12)[:, None]
    right_b = np.repeat(rng.random(30) < 0.7, 12)[:, None]
    pred_a, pred_b = np.where(right_a, y, 1 - y), np.where(right_b, y, 1 - y)
    data = LabelledSet(
        [f"s{i}" for i in range(360)],
        [f"sentence {i}" for i in range(360)],
        [tuple(n for n, on in zip(LABELS, row, strict=True) if on) for row in y],
        dyads=dyads,
    )
    runs = [
        Run(name, "corpus+augment", "dyads", pred[None] * 1.0, pred[None], [dyads])
        for name, pred in (("a", pred_a), ("b", pred_b))
    ]
    models = {n: {"primary": "corpus+augment"} for n in ("a", "b")}
    protocol = Protocol("dyads", leave_dyads_out=5, n_boot=300, seed=seed)
    return EvaluationResult(data, protocol, models, runs), 0.7


def test_leave_dyads_out_intervals_resample_whole_dyads():
    # The figures of leaving dyads out are for conflicts never seen. Over 60 draws of 30
    # conflicts, a 95% interval must cover the population accuracy in about 95% of them;
    # resampling sentences, as if 360 independent ones had been drawn, covered it in 40 of
    # the 60 (59 over whole dyads).
    covered = 0
    for seed in range(60):
        result, truth = _dyad_result(seed)
        summary = summarize_run(result, result.runs[0])
        lo, hi = summary["overall"]["exact_match"]["ci"]
        covered += lo <= truth <= hi
    assert covered / 60 >= 0.85
    assert summary["resampled"] == "whole dyads"
    # the paired comparison of two models draws the same dyads for both: a model against
    # itself differs by exactly 0 in every resample, and the interval is the one of
    # resampling the dyads by hand
    a, b = result.runs
    assert compare(result, a, a)["macro_f1"]["ci"] == [0.0, 0.0]
    test = compare(result, a, b)["macro_f1"]
    assert test["resampled"] == "whole dyads"
    p = result.protocol
    by_hand = paired_bootstrap(
        result.data.y,
        (a.proba[0], a.pred[0]),
        (b.proba[0], b.pred[0]),
        n_boot=p.n_boot,
        seed=p.seed,
        groups=result.data.dyads,
    )
    assert test["ci"] == by_hand["ci"] and test["difference"] == by_hand["difference"]
    # a sentence counts as often as its dyad was drawn, and each resample draws 3 dyads
    weights = resample_weights(6, 50, seed=0, groups=["x", "x", "y", "y", "y", "z"])
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 2] == weights[:, 4]).all()
    assert (weights[:, 0] + weights[:, 2] + weights[:, 5] == 3).all()


def test_a_bootstrap_p_value_at_its_floor_is_shown_as_a_bound():
    # No resample of 200 is as extreme as the observed difference: p is 1/201 by the +1
    # correction, and all the bootstrap says is that it is below 1/200. Shown as "= 0.005",
    # it read as a measured p-value (and with --n-boot 100 as "= 0.010").
    from stancelab.evaluation.comparison import fmt_p
    from stancelab.evaluation.tables import diff

    rng = np.random.default_rng(5)
    y = (rng.random((120, 4)) < 0.3).astype(int)
    good, bad = _noisy(y, 0.9, 1), _noisy(y, 0.6, 2)
    test = paired_bootstrap(y, (good * 1.0, good), (bad * 1.0, bad), n_boot=200)
    assert test["p_value"] == pytest.approx(1 / 201)
    assert diff(test).endswith(", p < 0.005 (significant)")
    assert fmt_p(1 / 101, 100) == "< 0.01"
    assert fmt_p(3 / 101, 100) == "= 0.030"  # two resamples as extreme: a value
    assert fmt_p(1 / 2001, 2000) == "< 0.001" and fmt_p(0.2) == "= 0.200"  # McNemar: exact


def test_the_p_value_floor_counts_only_the_resamples_the_figure_was_defined_on():
    # none_accuracy is undefined on a resample that draws no gold-none sentence; those
    # resamples are dropped, so p's floor is 1/(1 + the ones left), above 1/(1 + n_boot):
    # at the floor it was shown as a measured value ("= 0.013" for 100 resamples).
    from stancelab.evaluation.tables import diff

    y = np.array([[0, 0, 0, 0]] * 2 + [[1, 0, 0, 0]] * 4)
    right, wrong = y.copy(), y.copy()
    wrong[:2, 1] = 1  # b labels both gold-none sentences; a leaves them none
    groups = ["none", "none", "x", "x", "y", "y"]  # the gold-none ones are one group
    test = paired_bootstrap(
        y,
        (right * 1.0, right),
        (wrong * 1.0, wrong),
        metric="none_accuracy",
        n_boot=100,
        groups=groups,
    )
    assert ", p = " not in diff(test)  # no resample as extreme: a bound, not a value
    assert 0 < test["resamples"] < 100
    assert test["p_value"] == pytest.approx(1 / (1 + test["resamples"]))
    assert f", p < {1 / test['resamples']:.3g}" in diff(test)


def test_a_verdict_quotes_both_models_on_the_sentences_their_difference_is_on():
    # Model b could not score one fold (its training data lacked a label): the paired
    # difference is on the 140 sentences both scored. The verdict quoted a's figure on all
    # 200 (0.828) beside b's on 140 (0.638), a gap of 0.190 for a difference of 0.187.
    from stancelab.evaluation.comparison import build_metrics

    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < 0.3).astype(int)
    a, b = _noisy(y, 0.9, 1), _noisy(y, 0.75, 2)
    proba_b, pred_b = b * 1.0, b.copy()
    proba_b[:60], pred_b[:60] = np.nan, -1  # the unscored fold
    data = LabelledSet(
        [f"s{i}" for i in range(200)],
        [f"sentence {i}" for i in range(200)],
        [tuple(n for n, on in zip(LABELS, row, strict=True) if on) for row in y],
    )
    runs = [
        Run("a", "corpus", "kfold", a[None] * 1.0, a[None], [["f"] * 200]),
        Run("b", "corpus", "kfold", proba_b[None], pred_b[None], [["f"] * 200]),
    ]
    models = {n: {"primary": "corpus", "fits": 5, "config": n, "kind": "baseline"} for n in "ab"}
    metrics = build_metrics(EvaluationResult(data, Protocol(n_boot=200), models, runs))
    on_a, on_b = (f1_score(y[60:], m[60:], average="macro", zero_division=0) for m in (a, b))
    assert (
        f"on the 140 sentences both models were scored on, a has a higher macro-F1 than b: "
        f"{on_a:.3f} against {on_b:.3f}, a difference of {on_a - on_b:.3f}"
    ) in metrics["verdict"]
    test = metrics["comparisons"]["kfold"][0]["macro_f1"]
    assert (test["a"], test["b"]) == pytest.approx((on_a, on_b))
