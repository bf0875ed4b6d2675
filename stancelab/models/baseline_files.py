"""The baseline's saved form: plain arrays and JSON, read back without skops, pickle or
scikit-learn.

A fitted baseline is two TF-IDF vectorizers (word and character n-grams) and one logistic
regression per label. Predicting needs only their numbers, so a run directory holds:

* ``baseline.json``: for each feature block its name, its few transform settings
  (``_PARAM_CHECKS``) and its vocabulary, the terms in column order;
* ``baseline.npz``: per block its ``idf`` vector, then ``coef`` (labels x features) and
  ``intercept`` (labels), all float64, read with ``np.load(allow_pickle=False)``.

Loading audits every setting's name, type and value, every array's name, dtype, shape and
finiteness, and the vocabulary's terms. Predicting runs ``TfidfBlock`` (the vectorizer's
``transform``, step for step) and the sparse product that
``LogisticRegression.decision_function`` computes, so it imports numpy and scipy.sparse
only: importing scikit-learn costs about 1.3 s of CPU (scipy.stats, pandas), and
``skops.io`` walks scikit-learn's whole estimator registry (about 6 s, and torch). The
scores equal the fitted pipeline's bit for bit: every fit checks it on its own training
texts (``LinearTfidf.check_against``), and ``tests/test_baseline_arrays.py`` checks it on
the corpus and 2,000 other sentences.

Run directories saved before this format hold ``pipeline.skops``; they still load, through
skops, slowly (``stancelab.models.baseline``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from stancelab.errors import ModelLoadError, first_line
from stancelab.files import sha256_file, write_json
from stancelab.labels import LABELS

PARAMS_FILE = "baseline.json"
ARRAYS_FILE = "baseline.npz"
FORMAT = "stancelab-baseline-arrays/1"
ANALYZERS = ("word", "char", "char_wb")
NORMS = ("l2", None)
# Every parameter a saved block has, each with the check its JSON value must pass.
_PARAM_CHECKS = {
    "analyzer": lambda v: v in ANALYZERS,
    "ngram_range": lambda v: (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in v)
        and v[0] <= v[1]
    ),
    "lowercase": lambda v: isinstance(v, bool),
    "token_pattern": lambda v: isinstance(v, str),
    "sublinear_tf": lambda v: isinstance(v, bool),
    "norm": lambda v: v in NORMS,
}
# TfidfVectorizer settings the array format does not carry: a vectorizer must have these.
_REQUIRED = {
    "input": "content",
    "encoding": "utf-8",
    "decode_error": "strict",
    "strip_accents": None,
    "preprocessor": None,
    "tokenizer": None,
    "stop_words": None,
    "binary": False,
    "use_idf": True,
}
_WHITE_SPACES = re.compile(r"\s\s+")


class TfidfBlock:
    """A fitted ``TfidfVectorizer``'s ``transform`` for the settings in ``_PARAM_CHECKS``.

    Each step is scikit-learn 1.x's, in the same order and the same floating-point
    operations: n-grams (``_word_ngrams``, ``_char_ngrams``, ``_char_wb_ngrams``), counts of
    in-vocabulary n-grams with sorted columns (``_count_vocab``), then ``1 + log(tf)``,
    times idf, and each row divided by its L2 norm summed in column order
    (``inplace_csr_row_normalize_l2``). Fitting a baseline checks that this gives the fitted
    pipeline's scores bit for bit (``check_against``), so a scikit-learn that changed its
    analyzers would fail at training, not drift silently.
    """

    def __init__(self, name: str, params: dict, terms: list[str], idf: np.ndarray) -> None:
        self.name, self.params, self.terms, self.idf = name, params, terms, idf
        self.vocabulary = {term: i for i, term in enumerate(terms)}
        self.min_n, self.max_n = params["ngram_range"]
        self.tokenize = re.compile(params["token_pattern"]).findall
        if re.compile(params["token_pattern"]).groups > 1:
            raise ValueError("a token pattern may capture at most one group")

    @classmethod
    def from_vectorizer(cls, name: str, vec) -> TfidfBlock:
        settings = vec.get_params()
        for key, value in _REQUIRED.items():
            if settings.get(key) != value:
                raise ValueError(f"cannot save a vectorizer with {key}={settings.get(key)!r}")
        if np.dtype(settings["dtype"]) != np.float64:
            raise ValueError(f"cannot save a vectorizer with dtype={settings['dtype']!r}")
        params = {key: settings[key] for key in _PARAM_CHECKS}
        params["ngram_range"] = [int(n) for n in params["ngram_range"]]
        for key, value in params.items():
            if not _PARAM_CHECKS[key](value):
                raise ValueError(f"cannot save a vectorizer with {key}={value!r}")
        terms = [""] * len(vec.vocabulary_)
        for term, index in vec.vocabulary_.items():
            terms[int(index)] = term
        return cls(name, params, terms, np.asarray(vec.idf_, np.float64))

    def analyze(self, text: str) -> list[str]:
        if self.params["lowercase"]:
            text = text.lower()
        analyzer = self.params["analyzer"]
        if analyzer == "word":
            return self._word_ngrams(self.tokenize(text))
        text = _WHITE_SPACES.sub(" ", text)
        return self._char_wb_ngrams(text) if analyzer == "char_wb" else self._char_ngrams(text)

    def _word_ngrams(self, tokens: list[str]) -> list[str]:
        min_n, max_n = self.min_n, self.max_n
        if max_n == 1:
            return tokens
        grams = list(tokens) if min_n == 1 else []
        for n in range(max(min_n, 2), min(max_n + 1, len(tokens) + 1)):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def _char_ngrams(self, text: str) -> list[str]:
        grams = list(text) if self.min_n == 1 else []
        for n in range(max(self.min_n, 2), min(self.max_n + 1, len(text) + 1)):
            grams.extend(text[i : i + n] for i in range(len(text) - n + 1))
        return grams

    def _char_wb_ngrams(self, text: str) -> list[str]:
        grams = []
        for word in text.split():
            word = f" {word} "
            for n in range(self.min_n, self.max_n + 1):
                offset = 0
                grams.append(word[offset : offset + n])
                while offset + n < len(word):
                    offset += 1
                    grams.append(word[offset : offset + n])
                if offset == 0:  # a word shorter than n counts once
                    break
        return grams

    def transform(self, texts: list[str]):
        """TF-IDF rows, a float64 CSR matrix with sorted columns."""
        from scipy import sparse

        columns: list[int] = []
        counts: list[int] = []
        indptr = [0]
        vocabulary = self.vocabulary
        for text in texts:
            counter: dict[int, int] = {}
            for gram in self.analyze(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counter[index] = counter.get(index, 0) + 1
            columns.extend(counter)
            counts.extend(counter.values())
            indptr.append(len(columns))
        x = sparse.csr_matrix(
            (
                np.asarray(counts, dtype=np.intc),
                np.asarray(columns, dtype=np.int32),
                np.asarray(indptr, dtype=np.int32),
            ),
            shape=(len(texts), len(vocabulary)),
            dtype=np.float64,
        )
        x.sort_indices()
        if self.params["sublinear_tf"]:
            np.log(x.data, x.data)
            x.data += 1.0
        x.data *= self.idf[x.indices]
        if self.params["norm"] == "l2":
            squares = x.data * x.data
            for row in range(len(texts)):
                start, stop = x.indptr[row], x.indptr[row + 1]
                if start == stop:
                    continue
                total = np.cumsum(squares[start:stop])[-1]  # summed in order, as sklearn does
                if total != 0.0:
                    x.data[start:stop] /= np.sqrt(total)
        return x


class LinearTfidf:
    """TF-IDF blocks side by side, then one linear score per label: the baseline at predict time.

    ``coef`` has one row per label over the blocks' concatenated columns.
    """

    def __init__(self, blocks: list[TfidfBlock], coef: np.ndarray, intercept: np.ndarray):
        self.blocks = blocks
        self.coef = coef
        self.intercept = intercept

    # -- from a fitted scikit-learn pipeline ---------------------------------------------------
    @classmethod
    def from_pipeline(cls, pipeline) -> LinearTfidf:
        """The numbers of a fitted ``stancelab.models.baseline.build_pipeline`` pipeline."""
        union = pipeline.named_steps["features"]
        if union.transformer_weights:
            raise ValueError("feature blocks with transformer_weights cannot be saved as arrays")
        blocks = [
            TfidfBlock.from_vectorizer(name, vec)
            for name, vec in union.transformer_list
            if vec != "drop"
        ]
        classifier = pipeline.named_steps["classifier"]
        classes = np.asarray(classifier.classes_)
        if not np.array_equal(classes, np.arange(len(LABELS))):
            raise ValueError(f"classifier classes {classes.tolist()} are not the label columns")
        width = sum(len(block.terms) for block in blocks)
        rows, intercepts = [], []
        for est in classifier.estimators_:
            if hasattr(est, "coef_"):
                rows.append(np.asarray(est.coef_, np.float64).reshape(-1))
                intercepts.append(float(np.asarray(est.intercept_).reshape(-1)[0]))
            else:  # one-vs-rest's constant predictor, for a label on in every training row
                rows.append(np.zeros(width))
                intercepts.append(float(np.asarray(est.y_).reshape(-1)[0]))
        return cls(blocks, np.vstack(rows), np.asarray(intercepts, np.float64))

    def check_against(self, pipeline, texts: list[str]) -> None:
        """RuntimeError unless these numbers score ``texts`` exactly as ``pipeline`` does."""
        expected = np.asarray(pipeline.decision_function(texts), np.float64)
        got = self.decision_function(texts)
        if not np.array_equal(got, expected.reshape(got.shape)):
            worst = float(np.abs(got - expected.reshape(got.shape)).max())
            raise RuntimeError(
                "the baseline's array form does not reproduce scikit-learn's scores "
                f"(largest difference {worst:.3g}); this scikit-learn changed its TF-IDF steps"
            )

    # -- prediction ----------------------------------------------------------------------------
    def transform(self, texts: list[str]):
        """The blocks' TF-IDF features side by side (what ``FeatureUnion`` gives)."""
        from scipy import sparse

        return sparse.hstack([block.transform(texts) for block in self.blocks]).tocsr()

    def decision_function(self, texts: list[str]) -> np.ndarray:
        """Raw scores, shape (n, labels): per label ``X @ coef.T + intercept``, the same
        product and sum, in the same order, as ``LogisticRegression.decision_function``."""
        x = self.transform(texts)
        columns = [
            np.asarray(x @ self.coef[j : j + 1].T).reshape(-1) + self.intercept[j : j + 1]
            for j in range(len(self.coef))
        ]
        return np.array(columns).T.reshape(-1, len(self.coef))

    def feature_names(self) -> np.ndarray:
        return np.array([f"{block.name}:{term}" for block in self.blocks for term in block.terms])

    # -- files ---------------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, str]:
        """Write ``baseline.json`` and ``baseline.npz``; returns {file name: SHA-256}."""
        spec = {
            "format": FORMAT,
            "labels": list(LABELS),
            "blocks": [
                {"name": block.name, "params": block.params, "vocabulary": block.terms}
                for block in self.blocks
            ],
        }
        write_json(directory / PARAMS_FILE, spec)
        arrays = {f"idf_{block.name}": block.idf for block in self.blocks}
        arrays["coef"] = np.ascontiguousarray(self.coef, np.float64)
        arrays["intercept"] = np.asarray(self.intercept, np.float64)
        tmp = directory / f".{ARRAYS_FILE}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(directory / ARRAYS_FILE)
        return {name: sha256_file(directory / name) for name in (PARAMS_FILE, ARRAYS_FILE)}

    @classmethod
    def load(cls, directory: Path) -> LinearTfidf:
        """Read and audit the two files (their checksums are checked by the caller)."""
        spec = _read_spec(directory / PARAMS_FILE)
        arrays = _read_arrays(directory / ARRAYS_FILE, [b["name"] for b in spec["blocks"]])
        blocks = []
        for block in spec["blocks"]:
            name, terms = block["name"], block["vocabulary"]
            idf = arrays[f"idf_{name}"]
            if idf.shape != (len(terms),):
                raise ModelLoadError(
                    f"{directory / ARRAYS_FILE}: idf_{name} has shape {idf.shape}, "
                    f"the vocabulary {len(terms)} terms"
                )
            try:
                blocks.append(TfidfBlock(name, block["params"], terms, idf))
            except (re.error, ValueError) as exc:
                raise ModelLoadError(
                    f"{directory / PARAMS_FILE}: block {name!r}: {first_line(exc)}"
                ) from None
        width = sum(len(block.terms) for block in blocks)
        coef, intercept = arrays["coef"], arrays["intercept"]
        if coef.shape != (len(LABELS), width) or intercept.shape != (len(LABELS),):
            raise ModelLoadError(
                f"{directory / ARRAYS_FILE}: coef {coef.shape} / intercept {intercept.shape} "
                f"do not fit {len(LABELS)} labels x {width} features"
            )
        return cls(blocks, coef, intercept)


def _read_spec(path: Path) -> dict:
    where = str(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{where}: unreadable ({first_line(exc)})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ModelLoadError(f"{where}: not a {FORMAT} file")
    if spec.get("labels") != list(LABELS):
        raise ModelLoadError(f"{where}: labels {spec.get('labels')} differ from the scheme")
    blocks = spec.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise ModelLoadError(f"{where}: no feature blocks")
    names = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or set(block) != {"name", "params", "vocabulary"}:
            raise ModelLoadError(f"{where}: block {i} must have exactly name, params, vocabulary")
        name, params, terms = block["name"], block["params"], block["vocabulary"]
        if not (isinstance(name, str) and name.isidentifier()) or name in names:
            raise ModelLoadError(f"{where}: block {i} has a bad or repeated name {name!r}")
        names.add(name)
        if not isinstance(params, dict) or set(params) != set(_PARAM_CHECKS):
            raise ModelLoadError(
                f"{where}: block {name!r} parameters must be exactly {sorted(_PARAM_CHECKS)}"
            )
        for key, value in params.items():
            if not _PARAM_CHECKS[key](value):
                raise ModelLoadError(f"{where}: block {name!r} has a bad {key}: {value!r}")
        if not (isinstance(terms, list) and terms and all(isinstance(t, str) for t in terms)):
            raise ModelLoadError(f"{where}: block {name!r} vocabulary must be a list of strings")
        if len(set(terms)) != len(terms):
            raise ModelLoadError(f"{where}: block {name!r} vocabulary repeats a term")
    return spec


def _read_arrays(path: Path, block_names: list[str]) -> dict[str, np.ndarray]:
    expected = {f"idf_{name}" for name in block_names} | {"coef", "intercept"}
    try:
        with np.load(path, allow_pickle=False) as archive:
            if set(archive.files) != expected:
                raise ModelLoadError(
                    f"{path}: holds {sorted(archive.files)}, expected {sorted(expected)}"
                )
            arrays = {key: archive[key] for key in sorted(expected)}
    except ModelLoadError:
        raise
    except (OSError, ValueError, EOFError) as exc:  # not an npz, truncated, or object arrays
        raise ModelLoadError(f"{path}: cannot read the arrays ({first_line(exc)})") from None
    for key, array in arrays.items():
        ndim = 2 if key == "coef" else 1
        if array.dtype != np.float64 or array.ndim != ndim:
            raise ModelLoadError(
                f"{path}: {key} must be a {ndim}-d float64 array, not {array.ndim}-d {array.dtype}"
            )
        if not np.isfinite(array).all():
            raise ModelLoadError(f"{path}: {key} holds values that are not finite")
    return arrays
