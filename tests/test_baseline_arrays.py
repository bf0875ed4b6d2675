"""The baseline's array format: exact scores without scikit-learn, audited loading, old runs.

The exactness tests fit the shipped baseline's pipeline (``configs/baseline.yaml``) on the
shipped gold + augmentation data and compare its scikit-learn scores with the array form's,
bit for bit, on the corpus sentences and on the 2,000 sentences of
``benchmarks/predict_speed.py``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from stancelab.config import BaselineParams, load_config
from stancelab.data.labelled import label_matrix, load_augmentation, load_labelled
from stancelab.errors import ModelLoadError
from stancelab.files import sha256_file
from stancelab.models.base import MANIFEST
from stancelab.models.baseline import PIPELINE_FILE, TRUSTED_TYPES, BaselineModel, build_pipeline
from stancelab.models.baseline_files import ARRAYS_FILE, PARAMS_FILE, LinearTfidf
from stancelab.models.registry import load_model
from stancelab.prediction.api import predict

ROOT = Path(__file__).resolve().parent.parent

ODD_TEXTS = [
    "Nous allons riposter si l'on nous attaque, a déclaré le ministre.",
    "وزير الدفاع حذر من العواقب",
    "Мы ответим на любую провокацию.",
    "Kabul’s “proxies” — again!   Twice\tin\n\na row…",
    "Ünïcödé ÀÉÎ straße İstanbul ǅ ﬁnal",  # lower() changes length or letters
    "a",
    "zzzzqqqq xxxyyy",  # nothing in the vocabulary
    "!!! ??? ...",
    "The army said it would respond to any attack on the border. " * 30,
    "we WILL strike back; we will strike back. We will: strike-back!",
    "emoji 🚀🔥 and CJK 漢字 and digits 2026-12-04 and _underscores_",
]


@pytest.fixture(scope="module")
def shipped_pipeline():
    """The shipped baseline's scikit-learn pipeline, fitted on the shipped training data."""
    config = load_config(ROOT / "configs" / "baseline.yaml")
    gold = load_labelled(ROOT / "labels" / "gold.jsonl")
    augment = load_augmentation(ROOT / "labels" / "augment")
    texts = gold.texts + augment.texts
    y = label_matrix(gold.labels + augment.labels)
    return build_pipeline(config.params, config.seed).fit(texts, y), gold.texts


@pytest.fixture(scope="module")
def loaded_scorer(shipped_pipeline, tmp_path_factory):
    pipeline, _ = shipped_pipeline
    directory = tmp_path_factory.mktemp("arrays")
    LinearTfidf.from_pipeline(pipeline).save(directory)
    return LinearTfidf.load(directory)


def two_thousand() -> list[str]:
    """``fixed_sentences()`` of benchmarks/predict_speed.py: the corpus, then 1,831 others."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "predict_speed", ROOT / "benchmarks" / "predict_speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fixed_sentences()


def test_scores_equal_scikit_learn_on_corpus_and_2000_sentences(shipped_pipeline, loaded_scorer):
    pipeline, corpus = shipped_pipeline
    texts = two_thousand()
    assert len(texts) == 2000 and texts[: len(corpus)] == corpus
    for batch in (corpus, texts):
        expected = pipeline.decision_function(batch)
        np.testing.assert_array_equal(loaded_scorer.decision_function(batch), expected)
    # one at a time too: a row's score does not depend on its batch
    one_by_one = np.vstack([loaded_scorer.decision_function([t]) for t in corpus[:40]])
    np.testing.assert_array_equal(one_by_one, pipeline.decision_function(corpus[:40]))


def test_labels_equal_scikit_learn(shipped_pipeline, loaded_scorer):
    """Labels through calibration and thresholds: the same on all 2,000 sentences."""
    from stancelab.models.calibration import PlattCalibrator

    pipeline, corpus = shipped_pipeline
    texts = two_thousand()
    reference = pipeline.decision_function(texts)
    calibrator = PlattCalibrator().fit(
        reference[: len(corpus)], np.eye(4)[np.arange(len(corpus)) % 4]
    )
    cut = np.array([0.3, 0.4, 0.5, 0.6])
    want = calibrator.transform(reference) >= cut
    got = calibrator.transform(loaded_scorer.decision_function(texts)) >= cut
    assert want.any() and (~want).any()
    np.testing.assert_array_equal(got, want)


def test_features_equal_scikit_learn_on_odd_text(shipped_pipeline, loaded_scorer):
    pipeline, _ = shipped_pipeline
    expected = pipeline.named_steps["features"].transform(ODD_TEXTS)
    got = loaded_scorer.transform(ODD_TEXTS)
    assert (got != expected).nnz == 0
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(
        loaded_scorer.decision_function(ODD_TEXTS), pipeline.decision_function(ODD_TEXTS)
    )


def test_other_analyzer_settings_equal_scikit_learn():
    """char (not char_wb), unigram-only words, no sublinear tf, no norm."""
    from conftest import TINY
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline

    texts = [t for t, _ in TINY]
    features = FeatureUnion(
        [
            ("w", TfidfVectorizer(ngram_range=(1, 1), lowercase=False, norm=None)),
            ("c", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)),
        ]
    )
    pipe = Pipeline(
        [("features", features), ("classifier", OneVsRestClassifier(LogisticRegression()))]
    )
    pipe.fit(texts, label_matrix([lab for _, lab in TINY]))
    scorer = LinearTfidf.from_pipeline(pipe)
    scorer.check_against(pipe, texts + ODD_TEXTS)


def test_fit_checks_its_array_form(monkeypatch):
    from conftest import TINY

    from stancelab.models import baseline_files

    def off_by_a_bit(self, texts):
        return real(self, texts) + 1e-12

    real = baseline_files.LinearTfidf.decision_function
    monkeypatch.setattr(baseline_files.LinearTfidf, "decision_function", off_by_a_bit)
    with pytest.raises(RuntimeError, match="does not reproduce scikit-learn"):
        BaselineModel(BaselineParams(inner_folds=3), seed=1).fit(
            [t for t, _ in TINY], [lab for _, lab in TINY]
        )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import TINY

    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model, model.save(tmp_path_factory.mktemp("run") / "baseline")


def test_saved_run_holds_no_pickle_and_loads_exactly(tiny_run):
    model, directory = tiny_run
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [MANIFEST, PARAMS_FILE, ARRAYS_FILE]
    )
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as archive:
        assert all(archive[k].dtype == np.float64 for k in archive.files)
    loaded = load_model(directory)
    texts = ODD_TEXTS + ["We will strike back."]
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    read = model.model_inputs(texts)  # as the model reads them (the ligature above: "fi")
    np.testing.assert_array_equal(
        loaded.decision_function(texts), model.pipeline_.decision_function(read)
    )
    assert loaded.top_ngrams(3) == model.top_ngrams(3)
    assert loaded.explain(texts[-1]) == model.explain(texts[-1])


def rewrite(directory: Path, name: str, content: bytes) -> None:
    """Replace a model file and record its new checksum, so only the audit can catch it."""
    (directory / name).write_bytes(content)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"][name] = sha256_file(directory / name)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def copy_run(directory: Path, target: Path) -> Path:
    import shutil

    return Path(shutil.copytree(directory, target))


def write_npz(path: Path, allow_pickle: bool = False, **arrays) -> bytes:
    with path.open("wb") as handle:
        np.savez(handle, allow_pickle=allow_pickle, **arrays)
    return path.read_bytes()


def arrays_of(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda a: a.update(coef=a["coef"].astype(np.float32)), "float64"),
        (lambda a: a.update(coef=a["coef"][:, :-1]), "do not fit"),
        (lambda a: a.update(intercept=np.append(a["intercept"], 0.0)), "do not fit"),
        (lambda a: a.update(idf_word=a["idf_word"][:-1]), "idf_word has shape"),
        (lambda a: a.update(extra=np.zeros(2)), "expected"),
        (lambda a: a.pop("intercept"), "expected"),
        (lambda a: a["coef"].__setitem__((0, 0), np.nan), "not finite"),
        (lambda a: a.update(coef=np.array([[{"x": 1}]], dtype=object)), "cannot read"),
    ],
)
def test_audit_refuses_bad_arrays(tiny_run, tmp_path, change, message):
    directory = copy_run(tiny_run[1], tmp_path / "m")
    arrays = arrays_of(directory)
    change(arrays)
    content = write_npz(tmp_path / "x.npz", allow_pickle=True, **arrays)
    rewrite(directory, ARRAYS_FILE, content)
    with pytest.raises(ModelLoadError, match=message):
        load_model(directory)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: s["blocks"][0]["params"].update(analyzer="sentencepiece"), "bad analyzer"),
        (lambda s: s["blocks"][0]["params"].update(ngram_range=[2, 1]), "bad ngram_range"),
        (lambda s: s["blocks"][0]["params"].update(preprocessor="os.system"), "exactly"),
        (lambda s: s["blocks"][0]["params"].update(token_pattern="(a)(b)"), "one group"),
        (lambda s: s["blocks"][0]["params"].update(token_pattern="(unclosed"), "word"),
        (lambda s: s["blocks"][0]["vocabulary"].append(s["blocks"][0]["vocabulary"][0]), "repeats"),
        (lambda s: s["blocks"][0]["vocabulary"].__setitem__(0, 7), "list of strings"),
        (lambda s: s["blocks"][1].update(name="word"), "repeated name"),
        (lambda s: s.update(labels=["threat"]), "labels"),
        (lambda s: s.update(format="pickle"), "not a"),
    ],
)
def test_audit_refuses_bad_settings(tiny_run, tmp_path, change, message):
    directory = copy_run(tiny_run[1], tmp_path / "m")
    spec = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))
    change(spec)
    rewrite(directory, PARAMS_FILE, json.dumps(spec).encode())
    with pytest.raises(ModelLoadError, match=message):
        load_model(directory)


def test_tampered_arrays_fail_their_checksum(tiny_run, tmp_path):
    directory = copy_run(tiny_run[1], tmp_path / "m")
    path = directory / PARAMS_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("word", "wurd", 1), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model(directory)


def save_old_format(model: BaselineModel, directory: Path) -> Path:
    """A run directory as stancelab wrote it before the array format (skops)."""
    import zipfile

    import skops.io as sio

    directory = model.save(directory)
    for name in (PARAMS_FILE, ARRAYS_FILE):
        (directory / name).unlink()
    sio.dump(model.pipeline_, directory / PIPELINE_FILE, compression=zipfile.ZIP_DEFLATED)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"] = {PIPELINE_FILE: sha256_file(directory / PIPELINE_FILE)}
    del manifest["text_form"]  # recorded since; a skops-era model reads text as given
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


def test_old_skops_run_still_loads_and_resaves_as_arrays(tiny_run, tmp_path):
    model, _ = tiny_run
    old = save_old_format(model, tmp_path / "old")
    assert set(TRUSTED_TYPES)  # the old format's allow-list is still applied
    with pytest.warns(UserWarning, match="old skops format"):
        loaded = load_model(old)
    texts = ["We will strike back.", *ODD_TEXTS]
    assert loaded.text_form_ is None  # as given: "ﬁnal" and "…" in ODD_TEXTS stay as they are
    raw = model.calibration_.transform(model.pipeline_.decision_function(texts))
    np.testing.assert_array_equal(loaded.predict_proba(texts), raw)
    assert (raw != model.predict_proba(texts)).any()  # which a model fitted now reads otherwise
    with pytest.warns(UserWarning, match="old skops format"):
        via_predict = predict(texts, model=old)
    assert [p.labels for p in via_predict] == loaded.predict(texts)
    loaded.save(old)  # in place: the stale skops file goes
    assert not (old / PIPELINE_FILE).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_model(old)
    assert again.text_form_ is None
    np.testing.assert_array_equal(again.predict_proba(texts), raw)


def test_load_needs_no_scikit_learn_in_process(tiny_run):
    """In a fresh process: loading and predicting import no scikit-learn, skops or torch."""
    import subprocess

    _, directory = tiny_run
    code = (
        "import json, sys; from stancelab import load_model; "
        f"m = load_model({str(directory)!r}); m.predict(['We will strike back.']); "
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
        "('sklearn', 'skops', 'torch', 'pandas'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
