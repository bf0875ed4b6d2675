"""The ``stancelab`` command line: the app here, one module per command group
(``corpus``, ``predict``, ``label``, ``data``), shared helpers in ``_util``.

Each command is a thin shell over a library function; heavy imports happen inside the
command so that ``stancelab --help`` and ``stancelab predict`` start fast. A user error
(``InputError`` and friends) prints one line on stderr and exits with status 1.
"""

from __future__ import annotations

import sys

import typer

from stancelab.cli import corpus, data, label, predict

app = typer.Typer(
    help="Train, evaluate and apply classifiers for the rhetoric of official statements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(label.app, name="label")
app.add_typer(data.app, name="data")
app.command()(corpus.corpus)
app.command()(predict.predict)


@app.callback()
def _root() -> None:
    """stancelab: corpus -> Label Studio -> two models -> evaluation -> predict."""


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
