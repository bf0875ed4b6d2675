"""stancelab: classifiers for the rhetoric of official statements in armed conflicts.

``from stancelab import predict, load_model`` is the public entry point for applying a model;
the names are resolved lazily so that importing stancelab stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

from stancelab.labels import LABELS  # noqa: E402

__all__ = ["LABELS", "__version__"]
