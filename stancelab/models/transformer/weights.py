"""Finding a transformer's weights offline and loading them (``load_pretrained``): from
``packaged:<name>`` (weights installed as Python packages; ``packaged.py``), a local
directory, or a hub id from the local Hugging Face cache only, unless ``params.allow_download``
is true or ``STANCELAB_ALLOW_DOWNLOAD=1`` is set. Failures are one-line ``ModelLoadError``s.
``stancelab.models.transformer.network`` re-exports these names."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from stancelab.errors import ModelLoadError, first_line

ALLOW_DOWNLOAD_ENV = "STANCELAB_ALLOW_DOWNLOAD"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def downloads_allowed(param: bool = False) -> bool:
    return param or os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes"}


def resolve_source(spec: str) -> tuple[str, bool]:
    """(directory or hub id, is_local) for a ``params.model`` value."""
    if spec.startswith("packaged:"):
        from stancelab.models.transformer.packaged import packaged_path

        return str(packaged_path(spec.removeprefix("packaged:"))), True
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: not a transformer model directory (no config.json)")
        return str(path), True
    if spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise ModelLoadError(f"{spec}: no such model directory")
    return spec, False


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load/save bars and unused-weight notices (the pooler we skip)."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_pretrained(spec: str, allow_download: bool = False):
    """(tokenizer, encoder) for a ``params.model`` value; offline unless downloads are allowed."""
    from safetensors import SafetensorError
    from transformers import AutoModel, AutoTokenizer

    held = contextlib.nullcontext()
    if spec.startswith("packaged:"):  # an unpacked folder is not cleared while it is read
        from stancelab.models.transformer.packaged import loading

        held = loading(spec.removeprefix("packaged:"))
    with held:
        source, local = resolve_source(spec)
        offline = local or not downloads_allowed(allow_download)
        try:
            with quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
                backbone = AutoModel.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
            raise _load_error(spec, source, not local and offline, exc) from None
    if tokenizer.pad_token_id is None:
        raise ModelLoadError(f"{spec}: the tokenizer has no padding token")
    return tokenizer, backbone


def _load_error(spec: str, source: str, not_cached: bool, exc: Exception) -> ModelLoadError:
    """What to do about weights that would not load, in one line."""
    if not_cached:
        return ModelLoadError(
            f"{spec}: not a local directory and not in the Hugging Face cache; loading is "
            f"offline: download it once (hf download {spec}) or set {ALLOW_DOWNLOAD_ENV}=1 "
            "(or params.allow_download: true)"
        )
    message = f"{spec}: cannot load the transformer ({first_line(exc)})"
    if spec.startswith("packaged:"):
        from stancelab.models.transformer.packaged import REUNPACK, unpacked_folder

        folder = unpacked_folder(source)
        if folder is not None:  # unpacked by us: a damaged file there is repaired by deleting
            message += f"; if {folder.name} was changed, {REUNPACK.format(folder)}"
    return ModelLoadError(message)
