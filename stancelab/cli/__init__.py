"""The ``stancelab`` command line: the app here, one module per command group
(``corpus``, ``predict``, ``label``, ``data``, ``cache``), shared helpers in ``_util``.

Each command is a thin shell over a library function; heavy imports happen inside the
command so that ``stancelab --help`` and ``stancelab predict`` start fast. A user error
(``InputError`` and friends) prints one line on stderr and exits with status 1; a warning
that stancelab raises prints one line too, ``warning: ...``, without the library's source
line (other libraries' warnings keep Python's format).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer

from stancelab.cli import cache, corpus, data, label, predict

app = typer.Typer(
    help="Train, evaluate and apply classifiers for the rhetoric of official statements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(label.app, name="label")
app.add_typer(data.app, name="data")
app.add_typer(cache.app, name="cache")
app.command()(corpus.corpus)
app.command()(predict.predict)


@app.callback()
def _root() -> None:
    """stancelab: corpus -> Label Studio -> two models -> evaluation -> predict."""


PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep  # stancelab/


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    ours = issubclass(category, UserWarning)  # not numpy's RuntimeWarning, say
    if ours and os.path.realpath(filename).startswith(PACKAGE):
        typer.echo(f"warning: {message}", err=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main() -> None:
    warnings.showwarning = _show_warning
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
