"""The TF-IDF baseline: word + character n-grams, one-vs-rest logistic regression.

A plain scikit-learn ``Pipeline`` (features, then a one-vs-rest linear classifier with
balanced class weights). Its raw decision values are Platt-calibrated and thresholded per
label; calibration and thresholds are fitted on inner cross-validation of the training data
only. Saved with ``skops.io`` (no pickle); loading audits every type in the file against an
allow-list and checks the file's SHA-256 against the manifest.

Train it with ``python -m training.train configs/baseline.yaml``.
"""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stancelab.config import BaselineParams
from stancelab.data.folds import multilabel_kfold
from stancelab.data.labelled import label_matrix
from stancelab.errors import ModelLoadError, first_line
from stancelab.evaluation.metrics import macro_f1
from stancelab.files import sha256_file, write_json
from stancelab.labels import LABELS
from stancelab.models.base import (
    MANIFEST,
    Groups,
    LabelSets,
    StanceModel,
    Texts,
    as_text_list,
    check_checksum,
    read_manifest,
)
from stancelab.models.calibration import PlattCalibrator, tune_thresholds

PIPELINE_FILE = "pipeline.skops"
# Every type a saved baseline may contain; anything else in a file refuses to load.
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


class BaselineModel(StanceModel):
    kind = "baseline"
    params_type = BaselineParams

    # -- training ----------------------------------------------------------------------------
    # groups are unused: calibration and thresholds come from inner CV over all rows.
    def fit(self, texts: Texts, label_sets: LabelSets, groups: Groups = None) -> BaselineModel:
        with single_threaded_blas():
            return self._fit(texts, label_sets)

    def _fit(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> BaselineModel:
        texts = as_text_list(list(texts))
        y = label_matrix(label_sets)
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} label sets")
        missing = [LABELS[j] for j in range(len(LABELS)) if y[:, j].sum() == 0]
        if missing:
            raise ValueError(f"no positive example for label(s): {', '.join(missing)}")
        self.search_ = self._grid_search(texts, y) if self.params.grid else {}
        for key, value in self.search_.get("best", {}).items():
            setattr(self.params, key, value)
        scores = self._out_of_fold_scores(texts, y, self.params)
        self.calibration_ = PlattCalibrator().fit(scores, y)
        oof_proba = self.calibration_.transform(scores)
        self.thresholds_ = tune_thresholds(y, oof_proba)
        self.oof_ = {
            "y": y,
            "proba": oof_proba,
            "source": (
                f"inner {self.params.inner_folds}-fold cross-validation of the training data "
                "(calibration and thresholds fitted on the same out-of-fold scores)"
            ),
        }
        self.pipeline_ = build_pipeline(self.params, self.seed).fit(texts, y)
        # scikit-learn keeps vocabulary indices as numpy integers, and skops writes every numpy
        # scalar as its own array file, which makes saving very slow; plain ints are stored
        # inline. ``stop_words_`` (the terms max_features cut) is only
        # for introspection, and scikit-learn documents it as safe to drop before saving.
        for _, vectorizer in self.pipeline_.named_steps["features"].transformer_list:
            vectorizer.vocabulary_ = {t: int(i) for t, i in vectorizer.vocabulary_.items()}
            vectorizer.stop_words_ = None
        return self

    def _out_of_fold_scores(
        self, texts: list[str], y: np.ndarray, params: BaselineParams
    ) -> np.ndarray:
        scores = np.zeros(y.shape, dtype=float)
        for train, test in multilabel_kfold(y, self.params.inner_folds, seed=self.seed):
            pipe = build_pipeline(params, self.seed).fit([texts[i] for i in train], y[train])
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
        return np.asarray(self.pipeline_.decision_function(as_text_list(texts)), float).reshape(
            -1, len(LABELS)
        )

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        return self.calibration_.transform(self.decision_function(texts))

    # -- explanations ------------------------------------------------------------------------
    def _feature_names(self) -> np.ndarray:
        union = self.pipeline_.named_steps["features"]
        return np.concatenate(
            [
                np.array([f"{name}:{f}" for f in vec.get_feature_names_out()])
                for name, vec in union.transformer_list
            ]
        )

    def _coefficients(self) -> np.ndarray:
        return np.vstack(
            [est.coef_.ravel() for est in self.pipeline_.named_steps["classifier"].estimators_]
        )

    def top_ngrams(self, k: int = 15) -> dict[str, list[tuple[str, float]]]:
        """The k n-grams with the largest positive weight for each label."""
        names, coef = self._feature_names(), self._coefficients()
        return {
            label: [(str(names[i]), float(coef[j, i])) for i in np.argsort(-coef[j])[:k]]
            for j, label in enumerate(LABELS)
        }

    def explain(self, text: str, k: int = 5) -> dict[str, list[tuple[str, float]]]:
        """For one text: per label, the n-grams present that pushed its score up the most."""
        text = as_text_list(text)[0]
        x = self.pipeline_.named_steps["features"].transform([text]).tocsr()
        names, coef = self._feature_names(), self._coefficients()
        out = {}
        for j, label in enumerate(LABELS):
            contrib = x.data * coef[j, x.indices]
            order = np.argsort(-contrib)[:k]
            out[label] = [
                (str(names[x.indices[i]]), float(contrib[i])) for i in order if contrib[i] > 0
            ]
        return out

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        import skops.io as sio

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{PIPELINE_FILE}.tmp"
        sio.dump(self.pipeline_, tmp, compression=zipfile.ZIP_DEFLATED)
        tmp.replace(directory / PIPELINE_FILE)
        from dataclasses import asdict

        write_json(
            directory / MANIFEST,
            self.manifest(
                calibration=self.calibration_.to_dict(),
                params=asdict(self.params),
                seed=self.seed,
                files={PIPELINE_FILE: sha256_file(directory / PIPELINE_FILE)},
            ),
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> BaselineModel:
        import skops.io as sio

        directory = Path(directory)
        manifest = read_manifest(directory)
        path = directory / PIPELINE_FILE
        if not path.exists():
            raise ModelLoadError(
                f"{directory}: missing {PIPELINE_FILE}; the model directory is incomplete"
            )
        check_checksum(path, manifest.get("files", {}).get(PIPELINE_FILE))
        from skops.io.exceptions import UntrustedTypesFoundException

        try:
            # One pass: skops refuses any type it does not trust by default and we did not audit.
            pipeline = sio.load(path, trusted=TRUSTED_TYPES)
        except UntrustedTypesFoundException as exc:
            raise ModelLoadError(
                f"{path}: refuses to load unaudited types ({first_line(exc)})"
            ) from None
        except Exception as exc:  # skops raises a variety of errors on a damaged archive
            raise ModelLoadError(f"{path}: cannot read the saved pipeline ({exc})") from None
        params = manifest.get("params", {})
        model = cls(
            BaselineParams(**{k: v for k, v in params.items()}), seed=manifest.get("seed", 13)
        )
        model.pipeline_ = pipeline
        model.thresholds_ = [float(t) for t in manifest["thresholds"]]
        try:
            model.calibration_ = PlattCalibrator.from_dict(manifest["calibration"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"{directory / MANIFEST}: bad calibration entry ({exc})") from None
        return model
