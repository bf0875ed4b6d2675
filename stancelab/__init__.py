"""stancelab: classifiers for the rhetoric of official statements in armed conflicts.

``from stancelab import predict, predict_document, load_model`` is the entry point for
applying a model. The names resolve lazily, so ``import stancelab`` stays cheap and loads
nothing a prediction does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from stancelab.labels import LABELS

__version__ = "0.1.0"

_LAZY = {
    "predict": "stancelab.prediction.api",
    "predict_document": "stancelab.prediction.api",
    "Prediction": "stancelab.prediction.api",
    "load_model": "stancelab.models.registry",
}

__all__ = ["LABELS", "Prediction", "__version__", "load_model", "predict", "predict_document"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stancelab' has no attribute {name!r}")
