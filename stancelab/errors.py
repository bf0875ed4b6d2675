"""The user-facing error types: each carries a one-line message that says what to do.

Commands catch ``StancelabError`` and print its message; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import sys


class StancelabError(Exception):
    """Base class for errors caused by input, configuration or environment, not by a bug."""


class InputError(StancelabError, ValueError):
    """Bad input data: the message names the file (and line) and what is wrong."""


class ConfigError(StancelabError, ValueError):
    """A configuration file with unknown keys, wrong types or bad values."""


class ModelLoadError(StancelabError):
    """A model directory that is missing, partial, corrupt or of an unknown kind."""


class TrackingError(StancelabError):
    """MLflow is missing, or its store could not be written."""


class TruncationWarning(UserWarning):
    """Some texts were longer than the model reads; it labelled their beginning only.
    ``Prediction.truncated`` and the ``"truncated"`` key of predict's rows say which."""


class ForeignScriptWarning(UserWarning):
    """Some texts are mostly not in Latin letters; the models learned from English only, so
    their labels are unreliable. ``Prediction.foreign_script`` and the
    ``"foreign_script"`` key of predict's rows say which."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for the
    one-line messages above."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def os_error_line(exc: OSError) -> str:
    """An operating-system error as one line naming the path: a full disk, a folder that
    cannot be written, a file where a folder was expected. Commands print it like a
    ``StancelabError``: it is the environment's, not a bug."""
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    what = exc.strerror or first_line(exc)
    return f"{where}: {what}" if where else what


USER_ERRORS = (StancelabError, OSError)  # what a command prints as one line (anything else: a bug)


def error_line(exc: BaseException) -> str:
    """The one line (after ``error: ``) that a command prints for one of ``USER_ERRORS``."""
    return os_error_line(exc) if isinstance(exc, OSError) else str(exc)


def print_error(exc: BaseException) -> int:
    """Print a script's one line for one of ``USER_ERRORS`` on stderr; returns its exit
    status, 1 (the ``training`` scripts' ``except USER_ERRORS`` clause)."""
    print(f"error: {error_line(exc)}", file=sys.stderr)
    return 1
