"""data.corpus_repeat: copies of one sentence never on both sides of a held-out cut."""

from __future__ import annotations

import dataclasses

from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.models.transformer.model import holdout_split


def test_copies_of_a_sentence_without_doc_id_stay_on_one_side_of_the_held_out_part() -> None:
    # A user's gold file need not carry doc_ids: each such sentence is a group of its own,
    # and its copies must be that same group, not one group per copy.
    gold = load_labelled("labels/gold.jsonl", default_source="corpus")
    gold = dataclasses.replace(gold, doc_ids=[""] * len(gold))
    rows = gold.concat(load_augmentation("labels/augment")).with_corpus_repeated(3)
    group_of: dict[str, set[str]] = {}
    for row_id, group in zip(rows.ids, rows.groups, strict=True):
        group_of.setdefault(row_id, set()).add(group)
    assert all(len(groups) == 1 for groups in group_of.values())
    for seed in range(3):
        train, val, grouped = holdout_split(rows.y, 0.15, seed, rows.groups, rows.texts)
        assert grouped
        assert not {rows.ids[i] for i in train} & {rows.ids[i] for i in val}


def test_cross_fitted_held_out_figures_keep_a_sentences_copies_in_one_fold() -> None:
    import numpy as np

    from stancelab.models.calibration import crossfit_heldout

    rng = np.random.default_rng(0)
    n = 60
    y = (rng.random((n, 4)) < 0.3).astype(int)
    y[:8] = np.eye(4, dtype=int)[np.arange(8) % 4]  # every label present
    logits = rng.normal(size=(n, 4)) + 2 * y
    keys = [f"s{i}" for i in range(n)]
    copies = list(range(0, n, 2))  # every other sentence held out three times
    rows = np.concatenate([np.arange(n), copies, copies])
    proba, pred = crossfit_heldout(y[rows], logits[rows], 13, keys=[keys[i] for i in rows])
    # A copy's figures come from a map fitted without any copy of it: all copies of one
    # sentence are in one fold, so they get one probability.
    by_key: dict[str, set] = {}
    for r, i in enumerate(rows):
        by_key.setdefault(keys[i], set()).add(tuple(np.round(proba[r], 12)))
    assert all(len(v) == 1 for v in by_key.values())
    # Without copies, the plain split as before.
    plain = crossfit_heldout(y, logits, 13)
    assert np.array_equal(plain[0], crossfit_heldout(y, logits, 13, keys=keys)[0])


def test_corpus_repeat_on_a_gold_file_with_no_corpus_row_is_refused(tmp_path) -> None:
    import json

    import pytest
    import yaml

    from stancelab.config import load_config
    from stancelab.errors import ConfigError
    from stancelab.evaluation.crossval import _load
    from stancelab.models.fit import training_data

    gold = tmp_path / "gold.jsonl"
    rows = [json.loads(line) for line in open("labels/gold.jsonl", encoding="utf-8")]
    gold.write_text(
        "".join(json.dumps({**r, "source": "news"}) + "\n" for r in rows), encoding="utf-8"
    )
    config = tmp_path / "t.yaml"
    config.write_text(
        yaml.safe_dump({"model": "transformer", "data": {"gold": str(gold), "corpus_repeat": 3}})
    )
    # Every row names its own source: nothing would be repeated, so say so.
    with pytest.raises(ConfigError, match="corpus_repeat.*'news'"):
        training_data(load_config(config))
    with pytest.raises(ConfigError, match="corpus_repeat.*'news'"):
        _load([config])
    assert len(training_data(load_config(config, {"data.corpus_repeat": 1}))) > len(rows)


def test_the_harness_time_left_counts_the_rows_a_fit_trains_on_copies_included() -> None:
    import pytest

    from stancelab.config import load_config
    from stancelab.evaluation.progress import FitProgress
    from stancelab.models.fit import rows_fitted, training_data

    config = load_config("configs/transformer.yaml")  # data.corpus_repeat: 3
    gold = load_labelled("labels/gold.jsonl", default_source="corpus")
    mixed = training_data(config)  # gold + the augmentation set
    assert rows_fitted(config, gold) == 3 * len(gold)
    assert rows_fitted(config, mixed) == len(mixed) + 2 * len(gold)
    assert rows_fitted(load_config("configs/baseline.yaml"), mixed) == len(mixed)
    # Measured on a mixed fit, a corpus-only fit (--contrast, --full) is estimated by its
    # rows: three per sentence, where counting sentences once underestimated it 2.6 times.
    sizes = [rows_fitted(config, mixed), rows_fitted(config, gold)]
    tracker = FitProgress(["transformer", "transformer"], sizes, enabled=False)
    tracker.start(0, "mixed")
    tracker.done(0, 100.0)
    assert tracker.remaining() == pytest.approx(100.0 * sizes[1] / sizes[0], rel=0.01)


def test_a_threshold_is_tuned_only_on_three_held_out_sentences_not_three_copies() -> None:
    """Thresholds keep 0.5 below three positive sentences (a cut tuned on one or two is
    noise); one sentence held out three times (data.corpus_repeat: 3) is still one. In
    corpus-only fits of the default recipe (--contrast, data.augment: false) the held-out
    articles often hold one or two sentences of a rare label, three or six rows."""
    import numpy as np
    from conftest import TINY

    from stancelab.config import TransformerParams
    from stancelab.data.labelled import label_matrix
    from stancelab.models.calibration import tune_thresholds
    from stancelab.models.transformer.model import TransformerModel

    y = np.array([[1], [1], [0], [0], [0], [0]])
    proba = np.array([[0.9], [0.35], [0.3], [0.2], [0.1], [0.1]])
    rows = [0, 1, 2, 3, 4, 5] * 3  # each held-out sentence with its two copies
    keys = [f"s{i}" for i in rows]
    assert tune_thresholds(y[rows], proba[rows], keys=keys) == [0.5]
    assert tune_thresholds(y, proba) == [0.5]

    # A fit: the labels whose held-out positives are fewer than three sentences keep 0.5.
    texts = [t for t, _ in TINY] * 3
    labels = [lab for _, lab in TINY] * 3
    groups = [f"g{i % 6}" for i in range(len(TINY))] * 3
    y = label_matrix(labels)
    _, val, grouped = holdout_split(y, 0.15, 3, groups, texts)
    assert grouped
    once = {texts[i]: i for i in val}
    few = [j for j in range(y.shape[1]) if y[list(once.values()), j].sum() < 3]
    assert [j for j in few if y[val, j].sum() >= 3], "no label has 1-2 sentences held out"
    params = TransformerParams(
        model="packaged:all-MiniLM-L6-v2", max_length=16, batch_size=8, epochs=1, progress=False
    )
    model = TransformerModel(params, seed=3).fit(texts, labels, groups)
    assert [model.thresholds_[j] for j in few] == [0.5] * len(few)
