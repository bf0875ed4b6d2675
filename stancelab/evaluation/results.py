"""What an evaluation produces: out-of-fold predictions per run, and the whole result.

A ``Run`` holds one config's predictions under one training mix and one scheme (k-fold, leave
one article out, or held-out data), per repeat; an ``EvaluationResult`` holds every run with
the data they score. ``stancelab.evaluation.comparison`` turns them into figures,
``stancelab.evaluation.report``
into files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from stancelab.data.labelled import LabelledSet
from stancelab.evaluation.protocol import Fold, Protocol
from stancelab.labels import LABELS


@dataclass
class Run:
    """Out-of-fold predictions of one config, trained on one mix, under one scheme."""

    config: str
    variant: str
    scheme: str
    proba: np.ndarray  # (repeats, n, L); NaN where the sentence was not scored
    pred: np.ndarray  # (repeats, n, L); -1 where not scored
    fold: list[list[str]]  # fold name per repeat and sentence
    train_sizes: dict[str, int] = field(default_factory=dict)  # fold name -> training sentences
    seconds: dict[str, float] = field(default_factory=dict)  # fold name -> fit + scoring time

    def record(
        self, fold: Fold, proba: np.ndarray, pred: np.ndarray, size: int, seconds: float
    ) -> None:
        self.proba[fold.repeat, fold.test], self.pred[fold.repeat, fold.test] = proba, pred
        for i in fold.test:
            self.fold[fold.repeat][i] = fold.name
        self.train_sizes[fold.name] = size
        self.seconds[fold.name] = seconds

    @property
    def scored(self) -> np.ndarray:
        """Sentences scored in every repeat of this run."""
        return ~np.isnan(self.proba).any(axis=(0, 2))


@dataclass
class EvaluationResult:
    data: LabelledSet  # the sentences scored (the corpus gold set, or a user's file)
    protocol: Protocol | None
    models: dict[str, dict]  # name -> config path, kind, primary variant, fits
    runs: list[Run]
    folds_sha256: str = ""
    augmentation: LabelledSet | None = None
    explanations: dict[tuple[str, int], dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    data_path: str = ""
    dyads: EvaluationResult | None = None  # leave-dyads-out, scored on the augmentation set

    def run(self, config: str, variant: str, scheme: str) -> Run | None:
        return next(
            (r for r in self.runs if (r.config, r.variant, r.scheme) == (config, variant, scheme)),
            None,
        )

    def primary(self, config: str, scheme: str) -> Run | None:
        return self.run(config, self.models[config]["primary"], scheme)

    def prediction_rows(self) -> Iterator[dict]:
        """One row per run, repeat and scored sentence: what ``predictions.jsonl`` holds."""
        if self.dyads is not None:
            yield from self.dyads.prediction_rows()
        data = self.data
        for run in self.runs:
            for r in range(len(run.proba)):
                for i in np.flatnonzero(~np.isnan(run.proba[r]).any(axis=1)):
                    yield {
                        "model": run.config,
                        "variant": run.variant,
                        "scheme": run.scheme,
                        "repeat": r,
                        "fold": run.fold[r][i],
                        "id": data.ids[i],
                        "doc_id": data.doc_ids[i],
                        "text": data.texts[i],
                        "gold": list(data.labels[i]),
                        "predicted": [
                            n for n, on in zip(LABELS, run.pred[r, i], strict=True) if on == 1
                        ],
                        "proba": dict(
                            zip(LABELS, np.round(run.proba[r, i], 4).tolist(), strict=True)
                        ),
                    }
