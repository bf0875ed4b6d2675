"""The TF-IDF baseline: word + character n-grams, one-vs-rest logistic regression.

A plain scikit-learn ``Pipeline`` (features, then a one-vs-rest linear classifier with
balanced class weights). Its raw decision values are Platt-calibrated and thresholded per
label; calibration and thresholds are fitted on inner cross-validation of the training data
only.

Saved as plain arrays and JSON (``stancelab.models.baseline_files``: no pickle, every name, type
and shape audited on load, the files' SHA-256 checked against the manifest). Predicting
uses those numbers through ``LinearTfidf``, both for a loaded model and for
a freshly fitted one, and gives the fitted pipeline's scores exactly; loading and predicting
import neither scikit-learn nor skops, so a fresh process labels text in well under 2 s.
Run directories saved before (``pipeline.skops``) still load, through ``skops.io``, whose
import takes about 10 s.

Train it with ``python -m training.train configs/baseline.yaml``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stancelab.config import BaselineParams
from stancelab.data.folds import multilabel_kfold
from stancelab.data.labelled import label_matrix
from stancelab.errors import ConfigError, InputError, ModelLoadError, first_line
from stancelab.evaluation.metrics import macro_f1
from stancelab.files import write_json
from stancelab.labels import LABELS
from stancelab.models import baseline_files
from stancelab.models.base import (
    MANIFEST,
    TEXT_FORM,
    Groups,
    LabelSets,
    StanceModel,
    Texts,
    check_checksum,
    read_manifest,
)
from stancelab.models.baseline_files import LinearTfidf
from stancelab.models.calibration import PlattCalibrator, tune_thresholds

CHECK_TEXTS = 500  # training texts on which a fit checks its array form against scikit-learn
# Run directories saved before the array format hold the pipeline as one skops file.
PIPELINE_FILE = "pipeline.skops"
# Every type such a file may contain; anything else in it refuses to load.
TRUSTED_TYPES = [
    "builtins.str",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._label.LabelBinarizer",
]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One BLAS thread: small sparse problems gain nothing from more, and their spinning slows
    fits on a busy machine (README, "Measured figures")."""
    import sklearn.linear_model  # noqa: F401  (loaded first, so the limit reaches its BLAS)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def build_pipeline(params: BaselineParams, seed: int = 0):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline

    common = dict(
        lowercase=True,
        sublinear_tf=params.sublinear_tf,
        min_df=params.min_df,
        max_features=params.max_features,
        dtype=np.float64,
    )
    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=tuple(params.word_ngrams),
                    token_pattern=r"(?u)\b\w[\w’']*\b",
                    **common,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=tuple(params.char_ngrams), **common
                ),
            ),
        ]
    )
    classifier = OneVsRestClassifier(
        LogisticRegression(
            C=params.C,
            class_weight=params.class_weight,
            solver="liblinear",
            random_state=seed,
            max_iter=2000,
        )
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def fit_pipeline(params: BaselineParams, seed: int, texts: list[str], y: np.ndarray):
    """``build_pipeline`` fitted; a ``min_df`` that leaves no n-gram in so few sentences is
    a ConfigError naming it, not scikit-learn's ValueError from deep inside the fit."""
    try:
        return build_pipeline(params, seed).fit(texts, y)
    except ValueError as exc:
        said = str(exc)  # the vectorizer's two messages for it, as scikit-learn words them
        if "min_df" not in said and "no terms remain" not in said:
            raise
        raise ConfigError(
            f"params.min_df {params.min_df}: no word or character n-gram is in that many of "
            f"the {len(texts)} sentences of a fit (the inner folds' fits included); give a "
            "smaller min_df"
        ) from None


class BaselineModel(StanceModel):
    kind = "baseline"
    params_type = BaselineParams

    # -- training ----------------------------------------------------------------------------
    # groups are unused: calibration and thresholds come from inner CV over all rows.
    def fit(self, texts: Texts, label_sets: LabelSets, groups: Groups = None) -> BaselineModel:
        with single_threaded_blas():
            return self._fit(texts, label_sets)

    def _fit(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> BaselineModel:
        texts = self.training_inputs(texts)
        y = label_matrix(label_sets)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} label sets")
        missing = [LABELS[j] for j in range(len(LABELS)) if y[:, j].sum() == 0]
        if missing:
            raise InputError(
                f"the training data has no positive example for label(s): {', '.join(missing)}; "
                "every label needs at least one sentence that has it"
            )
        self.search_ = self._grid_search(texts, y) if self.params.grid else {}
        for key, value in self.search_.get("best", {}).items():
            setattr(self.params, key, value)
        scores = self._out_of_fold_scores(texts, y, self.params)
        self.calibration_ = PlattCalibrator().fit(scores, y)
        self.thresholds_ = tune_thresholds(y, self.calibration_.transform(scores))
        # Those maps are fitted to every out-of-fold score, so figures on the same rows would
        # be fitted to themselves: the held-out figures (``oof_metrics``, which only a
        # training run asks for) cross-fit them on the raw scores, as the transformer's do.
        self.oof_ = {
            "y": y,
            "scores": scores,
            "seed": self.seed,
            "source": (
                f"inner {self.params.inner_folds}-fold cross-validation of the training data, "
                "calibration and thresholds cross-fitted on its out-of-fold scores"
                + (
                    "; the same scores chose the params.grid settings, so the figures lean "
                    "optimistic"
                    if self.search_
                    else ""
                )
            ),
        }
        self.pipeline_ = fit_pipeline(self.params, self.seed, texts, y)
        # ``stop_words_`` (the terms max_features cut) is only for introspection, and
        # scikit-learn documents it as safe to drop.
        for _, vectorizer in self.pipeline_.named_steps["features"].transformer_list:
            vectorizer.stop_words_ = None
        # Predicting uses the pipeline's numbers (what a saved model holds); they must give
        # its scores exactly. Checked here, on the training texts, at a few ms per 100 texts.
        self.scorer_ = LinearTfidf.from_pipeline(self.pipeline_)
        self.scorer_.check_against(self.pipeline_, texts[:CHECK_TEXTS])
        self.text_form_ = TEXT_FORM  # how it read its training texts
        return self

    def _out_of_fold_scores(
        self, texts: list[str], y: np.ndarray, params: BaselineParams
    ) -> np.ndarray:
        scores = np.zeros(y.shape, dtype=float)
        for train, test in multilabel_kfold(y, self.params.inner_folds, seed=self.seed):
            pipe = fit_pipeline(params, self.seed, [texts[i] for i in train], y[train])
            scores[test] = pipe.decision_function([texts[i] for i in test])
        return scores

    def _grid_search(self, texts: list[str], y: np.ndarray) -> dict:
        """Inner-CV search over ``params.grid``; scored by macro-F1 at tuned thresholds."""
        from dataclasses import replace

        keys = sorted(self.params.grid)
        results = []
        for values in itertools.product(*(self.params.grid[k] for k in keys)):
            candidate = replace(self.params, **dict(zip(keys, values, strict=True)), grid={})
            scores = self._out_of_fold_scores(texts, y, candidate)
            proba = PlattCalibrator().fit(scores, y).transform(scores)
            cut = np.asarray(tune_thresholds(y, proba))
            results.append(
                {
                    "params": dict(zip(keys, values, strict=True)),
                    "macro_f1": float(macro_f1(y, proba >= cut)),
                }
            )
        best = max(results, key=lambda r: r["macro_f1"])
        return {"candidates": results, "best": best["params"], "best_macro_f1": best["macro_f1"]}

    # -- inference ---------------------------------------------------------------------------
    def decision_function(self, texts: str | Sequence[str]) -> np.ndarray:
        """Raw per-label scores: the fitted pipeline's ``decision_function``, computed from
        its saved numbers (``LinearTfidf``) so that a loaded model needs no pipeline."""
        texts = self.model_inputs(texts)
        if not texts:  # no texts, no scores (scikit-learn rejects an empty batch)
            return np.zeros((0, len(LABELS)))
        return self.scorer_.decision_function(texts)

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        return self.calibration_.transform(self.decision_function(texts))

    # -- explanations ------------------------------------------------------------------------
    def _feature_names(self) -> np.ndarray:
        return self.scorer_.feature_names()

    def _coefficients(self) -> np.ndarray:
        return self.scorer_.coef

    def top_ngrams(self, k: int = 15) -> dict[str, list[tuple[str, float]]]:
        """The k n-grams with the largest positive weight for each label."""
        names, coef = self._feature_names(), self._coefficients()
        return {
            label: [(str(names[i]), float(coef[j, i])) for i in np.argsort(-coef[j])[:k]]
            for j, label in enumerate(LABELS)
        }

    def explain(self, text: str, k: int = 5) -> dict[str, list[tuple[str, float]]]:
        """For one text: per label, the n-grams present that pushed its score up the most."""
        text = self.model_inputs(text)[0]
        x = self.scorer_.transform([text])
        names, coef = self._feature_names(), self._coefficients()
        out = {}
        for j, label in enumerate(LABELS):
            contrib = x.data * coef[j, x.indices]
            order = np.argsort(-contrib)[:k]
            out[label] = [
                (str(names[x.indices[i]]), float(contrib[i])) for i in order if contrib[i] > 0
            ]
        return out

    # -- persistence (arrays: stancelab.models.baseline_files) ------------------------------
    def save(self, directory: str | Path) -> Path:
        from dataclasses import asdict

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = self.scorer_.save(directory)
        # A directory re-saved over an old-format one must not keep the stale skops file.
        (directory / PIPELINE_FILE).unlink(missing_ok=True)
        write_json(
            directory / MANIFEST,
            self.manifest(
                calibration=self.calibration_.to_dict(),
                params=asdict(self.params),
                seed=self.seed,
                files=files,
            ),
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> BaselineModel:
        directory = Path(directory)
        manifest = read_manifest(directory)
        files = manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise ModelLoadError(f"{directory / MANIFEST}: the file list is missing")
        legacy = PIPELINE_FILE in files
        names = (
            [PIPELINE_FILE] if legacy else [baseline_files.PARAMS_FILE, baseline_files.ARRAYS_FILE]
        )
        for name in names:
            path = directory / name
            if not path.is_file():
                raise ModelLoadError(
                    f"{directory}: missing {name}; the model directory is incomplete"
                )
            check_checksum(path, files.get(name))
        try:
            seed = manifest.get("seed", 13)
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"seed must be an integer, got {seed!r}")
            model = cls(BaselineParams(**manifest.get("params", {})), seed=seed)
            model.calibration_ = PlattCalibrator.from_dict(manifest["calibration"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"{directory / MANIFEST}: bad entry ({exc})") from None
        model.thresholds_ = [float(t) for t in manifest["thresholds"]]
        model.text_form_ = manifest.get("text_form")
        if legacy:
            model.pipeline_ = _load_skops(directory / PIPELINE_FILE)
            model.scorer_ = LinearTfidf.from_pipeline(model.pipeline_)
        else:
            model.scorer_ = LinearTfidf.load(directory)
        return model


def _load_skops(path: Path):
    """A pipeline from a run directory saved before the array format (slow: skops walks
    all of scikit-learn on import). Re-saving the loaded model writes the array format."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    warnings.warn(
        f"{path.parent} is in the old skops format, which takes about 10 s to load; "
        f"re-save it once in the fast format with "
        f"`stancelab.load_model({str(path.parent)!r}).save(NEW_DIR)`",
        stacklevel=3,
    )
    try:
        # One pass: skops refuses any type it does not trust by default and we did not audit.
        return sio.load(path, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as exc:
        raise ModelLoadError(
            f"{path}: refuses to load unaudited types ({first_line(exc)})"
        ) from None
    except Exception as exc:  # skops raises a variety of errors on a damaged archive
        raise ModelLoadError(f"{path}: cannot read the saved pipeline ({exc})") from None
