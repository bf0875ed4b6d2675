"""``stancelab corpus``: split documents into sentences."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from stancelab.cli._util import fail
from stancelab.errors import StancelabError
from stancelab.paths import SEEDS_DIR, SENTENCES_PATH


def corpus(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders of .txt files, .txt, .jsonl or .csv files (default: seeds/)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output JSONL of sentences.")] = SENTENCES_PATH,
) -> None:
    """Split documents into sentences, dropping page furniture (reported, never silent)."""
    from stancelab.corpus.ingest import dropped_path, ingest

    sources = paths or [SEEDS_DIR]
    try:
        sentences, dropped = ingest(sources, out)
    except StancelabError as exc:
        fail(str(exc))
    docs = len({s.doc_id for s in sentences})
    by_reason = Counter(d.reason for d in dropped)
    for reason, count in sorted(by_reason.items()):
        typer.echo(f"dropped {count:3d} line(s): {reason}", err=True)
    typer.echo(
        f"{len(sentences)} sentences from {docs} document(s) -> {out} "
        f"({len(dropped)} furniture line(s) -> {dropped_path(out)})"
    )
