"""The TF-IDF baseline and the shared model interface."""

from __future__ import annotations

import json
import zipfile
from collections import Counter

import numpy as np
import pytest

from stancelab.config import BaselineParams, ConfigError, load_config
from stancelab.errors import ModelLoadError
from stancelab.labels import LABELS
from stancelab.models.base import MANIFEST
from stancelab.models.baseline import PIPELINE_FILE, BaselineModel
from stancelab.models.baseline_files import ARRAYS_FILE, PARAMS_FILE
from stancelab.models.registry import load_model


@pytest.fixture(scope="module")
def fitted():
    from conftest import TINY

    texts = [t for t, _ in TINY]
    labels = [lab for _, lab in TINY]
    return BaselineModel(BaselineParams(inner_folds=3), seed=1).fit(texts, labels), texts, labels


def test_predict_shapes_and_types(fitted):
    model, texts, _ = fitted
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(LABELS))
    assert np.all((proba >= 0) & (proba <= 1))
    one = model.predict_proba("We will retaliate against any attack.")
    assert one.shape == (1, len(LABELS))
    preds = model.predict(texts)
    assert len(preds) == len(texts)
    assert all(isinstance(p, tuple) and set(p) <= set(LABELS) for p in preds)
    assert list(preds[0]) == [name for name in LABELS if name in preds[0]]  # scheme order


def test_thresholds_are_applied(fitted):
    model, texts, _ = fitted
    proba = model.predict_proba(texts)
    saved = list(model.thresholds_)
    try:
        model.thresholds_ = [0.0] * len(LABELS)
        assert all(p == LABELS for p in model.predict(texts))
        model.thresholds_ = [1.01] * len(LABELS)
        assert all(p == () for p in model.predict(texts))
        cut = [float(np.median(proba[:, j])) for j in range(len(LABELS))]
        model.thresholds_ = cut
        expected = [tuple(n for j, n in enumerate(LABELS) if row[j] >= cut[j]) for row in proba]
        assert model.predict(texts) == expected
    finally:
        model.thresholds_ = saved


def test_learns_the_tiny_task(fitted):
    model, texts, labels = fitted
    hits = sum(set(p) == set(lab) for p, lab in zip(model.predict(texts), labels, strict=True))
    assert hits >= len(texts) * 0.6


def test_bad_inputs(fitted):
    model, _, _ = fitted
    with pytest.raises(TypeError, match="index 1"):
        model.predict(["fine", None])
    with pytest.raises(TypeError):
        model.predict(b"bytes")
    with pytest.raises(ValueError, match="index 0"):
        model.predict(["   ", "fine"])
    with pytest.raises(ValueError, match="empty"):
        model.predict_proba("")


def test_fit_rejects_unknown_labels_and_missing_classes():
    with pytest.raises(ValueError, match="unknown label"):
        BaselineModel().fit(["a b c", "d e f"], [["threat"], ["sarcasm"]])
    with pytest.raises(ValueError, match="no positive example"):
        BaselineModel().fit(["a b c", "d e f"], [["threat"], []])


def test_save_load_round_trip_identical(fitted, tmp_path):
    model, texts, _ = fitted
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, BaselineModel)
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.thresholds_ == model.thresholds_
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert manifest["kind"] == "baseline" and manifest["labels"] == list(LABELS)
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_tampered_missing_or_corrupt_model(fitted, tmp_path):
    model, _, _ = fitted
    directory = model.save(tmp_path / "m")
    path = directory / ARRAYS_FILE
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model(directory)
    path.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(directory)
    (directory / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="corrupt manifest"):
        load_model(directory)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a stancelab model"):
        load_model(tmp_path / "empty")


def test_unaudited_types_refuse_to_load(fitted, tmp_path):
    """An old-format (skops) file whose checksum matches but holds a type outside the
    allow-list is refused."""
    import skops.io as sio

    from stancelab.files import sha256_file

    model, _, _ = fitted
    directory = model.save(tmp_path / "m")
    sio.dump(Counter(payload=1), directory / PIPELINE_FILE)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"] = {PIPELINE_FILE: sha256_file(directory / PIPELINE_FILE)}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    assert zipfile.is_zipfile(directory / PIPELINE_FILE)
    with pytest.raises(ModelLoadError, match="unaudited types"), pytest.warns(UserWarning):
        load_model(directory)


def test_explanations(fitted):
    model, _, _ = fitted
    top = model.top_ngrams(5)
    assert set(top) == set(LABELS) and all(len(v) == 5 for v in top.values())
    why = model.explain("The ministry denied any involvement in the attack.")
    assert set(why) == set(LABELS)
    assert all(weight > 0 for items in why.values() for _, weight in items)
    assert any("den" in name for name, _ in why["denial"])


def test_grid_search_records_choice():
    from conftest import TINY

    model = BaselineModel(BaselineParams(inner_folds=3, grid={"C": [0.5, 8.0]}), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    assert model.search_["best"]["C"] in (0.5, 8.0)
    assert len(model.search_["candidates"]) == 2
    assert model.params.C == model.search_["best"]["C"]


def test_config_rejects_unknown_keys_and_bad_types(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: baseline\nparams:\n  C: 2.0\n  colour: blue\n")
    with pytest.raises(ConfigError, match="colour"):
        load_config(cfg)
    cfg.write_text("model: baseline\nparams:\n  C: lots\n")
    with pytest.raises(ConfigError, match="C"):
        load_config(cfg)
    cfg.write_text("model: baseline\nextra: 1\n")
    with pytest.raises(ConfigError, match="extra"):
        load_config(cfg)
    cfg.write_text("model: svm\n")
    with pytest.raises(ConfigError, match="model"):
        load_config(cfg)
    cfg.write_text("model: baseline\nparams:\n  word_ngrams: [1, 3]\n")
    assert load_config(cfg).params.word_ngrams == (1, 3)


def test_shipped_baseline_config_loads():
    config = load_config("configs/baseline.yaml")
    assert config.model == "baseline" and config.data.augment is True


def test_train_entry_point_writes_a_run_directory(tiny_gold, tmp_path):
    from training.train import main

    cfg = tmp_path / "b.yaml"
    cfg.write_text(
        f"model: baseline\nname: tiny\ndata:\n  gold: {tiny_gold}\n  augment: false\n"
        "params:\n  inner_folds: 3\n"
    )
    assert main([str(cfg), "--out", str(tmp_path / "run")]) == 0
    run = tmp_path / "run"
    for name in (
        "stancelab.json",
        PARAMS_FILE,
        ARRAYS_FILE,
        "config.yaml",
        "run.json",
        "README.md",
    ):
        assert (run / name).exists(), name
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["sentences"] == 24 and len(info["data"]["checksum_sha256"]) == 64
    assert "stancelab" in info["code_version"] and info["train_seconds"] > 0
    assert info["processes"] == 1
    assert "macro_f1" in info["metrics"]
    card = (run / "README.md").read_text()
    assert "Intended use" in card and "processes" not in card.split("## Intended use")[0]
    assert main([str(tmp_path / "missing.yaml")]) == 1


def test_held_out_figures_never_score_a_row_with_maps_fitted_on_it(fitted):
    # The shipped calibration and thresholds are fitted on every inner out-of-fold score.
    # The held-out figures of run.json and the model card must calibrate and threshold each
    # row by maps fitted on the other rows only (as the transformer's), recomputed here from
    # the inner folds' scores; before, they used the shipped maps on the rows that fitted them.
    from stancelab.data.folds import multilabel_kfold
    from stancelab.data.labelled import label_matrix
    from stancelab.evaluation.metrics import expected_calibration_error, macro_f1
    from stancelab.models.baseline import fit_pipeline
    from stancelab.models.calibration import PlattCalibrator, tune_thresholds
    from stancelab.models.fit import oof_metrics

    model, texts, labels = fitted
    y = label_matrix(labels)
    scores = np.zeros(y.shape)
    for train, test in multilabel_kfold(y, 3, seed=1):
        pipe = fit_pipeline(model.params, 1, [texts[i] for i in train], y[train])
        scores[test] = pipe.decision_function([texts[i] for i in test])
    proba, pred = np.zeros(y.shape), np.zeros(y.shape, dtype=int)
    for other, rows in multilabel_kfold(y, 5, seed=1):
        calibrator = PlattCalibrator().fit(scores[other], y[other])
        cut = tune_thresholds(y[other], calibrator.transform(scores[other]))
        proba[rows] = calibrator.transform(scores[rows])
        pred[rows] = proba[rows] >= np.asarray(cut)
    figures = oof_metrics(model)
    assert figures["macro_f1"] == pytest.approx(float(macro_f1(y, pred)))
    assert figures["ece"] == pytest.approx(expected_calibration_error(y, proba))
    assert "cross-fitted" in figures["source"]
