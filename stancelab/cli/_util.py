"""Helpers shared by the command modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import typer

from stancelab.errors import USER_ERRORS, error_line


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a user error in the block into one line and status 1: a ``StancelabError``, or
    an ``OSError`` that no check before could foresee (a folder that turned read-only, a full
    disk, a name too long), which names the file."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(error_line(exc))
