"""``stancelab corpus``: split documents into sentences."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from stancelab.cli._util import one_line_errors
from stancelab.paths import SEEDS_DIR, SENTENCES_PATH


def corpus(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders of .txt files, .txt, .jsonl or .csv files (default: seeds/)."),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Output JSONL of sentences (and beside it NAME.dropped.jsonl).")
    ] = SENTENCES_PATH,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing --out file and its .dropped.jsonl.")
    ] = False,
) -> None:
    """Split documents into sentences, dropping page furniture (reported, never silent)."""
    from stancelab.corpus.ingest import dropped_path, ingest
    from stancelab.files import followed

    sources = paths or [SEEDS_DIR]
    with one_line_errors():
        sentences, dropped = ingest(sources, out, overwrite=overwrite)
    docs = len({s.doc_id for s in sentences})
    by_reason = Counter(d.reason for d in dropped)
    for reason, count in sorted(by_reason.items()):
        typer.echo(f"dropped {count:3d} line(s): {reason}", err=True)
    typer.echo(
        f"{len(sentences)} sentences from {docs} document(s) -> {out} "
        f"({len(dropped)} furniture line(s) -> {dropped_path(followed(out))})"
    )
