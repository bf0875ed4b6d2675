"""Token ids for inference through the Rust ``tokenizers`` library alone.

A loaded transformer reads ``tokenizer.json`` from its model directory, so labelling text on
the ONNX path needs neither transformers nor torch. The tokenizer is a fresh copy with no
truncation and no padding (the transformers wrapper leaves its last call's settings on the
backend it shares), so the caller sees every text's full length and truncates it itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def untruncated(directory: Path | None, hf_tokenizer: Callable[[], Any]):
    """A ``tokenizers.Tokenizer`` (or, for a tokenizer with no Rust backend, the wrapper)."""
    from tokenizers import Tokenizer

    if directory is not None and (directory / "tokenizer.json").is_file():
        fast = Tokenizer.from_file(str(directory / "tokenizer.json"))
    else:
        wrapper = hf_tokenizer()
        if not getattr(wrapper, "is_fast", False):
            return wrapper
        fast = Tokenizer.from_str(wrapper.backend_tokenizer.to_str())
    fast.no_truncation()
    fast.no_padding()
    return fast


def token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Ids with the model's special tokens, untruncated."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=True)]
    return tokenizer(texts, truncation=False)["input_ids"]
