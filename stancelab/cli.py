"""The ``stancelab`` command line.

Each command is a thin shell over a library function; heavy imports happen inside the
command so that ``stancelab --help`` and ``stancelab predict`` start fast. A user error
(``InputError`` and friends) prints one line on stderr and exits with status 1.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from stancelab.errors import StancelabError

app = typer.Typer(
    help="Train, evaluate and apply classifiers for the rhetoric of official statements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """stancelab: corpus -> Label Studio -> two models -> evaluation -> predict."""


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def corpus(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders of .txt files, .txt, .jsonl or .csv files (default: seeds/)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output JSONL of sentences.")] = Path("data/sentences.jsonl"),
) -> None:
    """Split documents into sentences, dropping page furniture (reported, never silent)."""
    from stancelab.corpus import DEFAULT_SOURCES, dropped_path, ingest

    sources = paths or [Path(p) for p in DEFAULT_SOURCES]
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
