"""Labelled sentence sets (gold and augmentation), the folds drawn from them, and their export
as a Hugging Face dataset (``hub``; ``datasets`` is imported only when those functions run)."""

from stancelab.data.hub import columns_checksum, export, load_export, to_labelled

__all__ = ["columns_checksum", "export", "load_export", "to_labelled"]
