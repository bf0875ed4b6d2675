"""The model kinds: ``kind -> class``, resolved once, and ``load_model`` for any saved directory.

A kind's module is imported only when a model of that kind is built or loaded, so loading a
baseline never imports torch.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import import_module
from pathlib import Path

from stancelab.errors import ModelLoadError
from stancelab.models.base import MANIFEST, StanceModel, read_manifest

MODEL_KINDS = {
    "baseline": "stancelab.models.baseline:BaselineModel",
    "transformer": "stancelab.models.transformer.model:TransformerModel",
}


@cache
def model_class(kind: str) -> type[StanceModel]:
    """The class of a model kind (``KeyError`` for an unknown kind)."""
    module_name, class_name = MODEL_KINDS[kind].split(":")
    return getattr(import_module(module_name), class_name)


def load_model(directory: str | Path) -> StanceModel:
    """Load any saved stancelab model directory (the kind is read from its manifest)."""
    digest = manifest_digest(directory)
    manifest = read_manifest(directory)
    kind = manifest.get("kind")
    if kind not in MODEL_KINDS:
        raise ModelLoadError(f"{directory}: unknown model kind {kind!r}")
    model = model_class(kind).load(directory)
    # A stable identifier of exactly this saved model, for pre-annotations and output rows.
    model.version_ = f"{kind}-{digest[:10]}"
    model.manifest_sha256_ = digest
    model.run_dir_ = Path(directory)  # predict never writes its output in here
    return model


def manifest_digest(directory: str | Path) -> str | None:
    """The SHA-256 of a run directory's manifest, which records the checksum of every model
    file: it names exactly the saved model (a retrained run has another), or None when
    there is no manifest to read (``load_model`` then says why)."""
    try:
        return hashlib.sha256((Path(directory) / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return None
