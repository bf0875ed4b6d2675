"""The user-facing error types: each carries a one-line message that says what to do.

Commands catch ``StancelabError`` and print its message; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


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


# How long a process other than the first of a launch holds back its error line (print_error).
LAUNCHED_ERROR_WAIT = 15.0


def print_error(exc: BaseException) -> int:
    """Print a script's one line for one of ``USER_ERRORS`` on stderr; returns its exit
    status, 1 (the ``training`` scripts' ``except USER_ERRORS`` clause).

    Under a launcher (``torchrun``, ``accelerate launch``: ``MASTER_ADDR`` and ``RANK`` set)
    every process reads the same config and data, so a bad one fails them all: only the
    first process (rank 0) prints at once. Another waits ``LAUNCHED_ERROR_WAIT`` seconds
    first, as the launcher stops it when the first one fails; one still running after that
    met an error of its own (the first did not fail), and prints it naming its rank
    (``error: rank 1: ...``). It does not just exit silently: the launcher would then stop
    the first process too, maybe before it printed, and nothing would be said."""
    line = error_line(exc)
    rank = hold_back_unless_first()
    if rank is not None:
        line = f"rank {rank}: {line}"
    print(f"error: {line}", file=sys.stderr)
    return 1


def hold_back_unless_first() -> str | None:
    """Under a launcher, in a process other than the first: wait ``LAUNCHED_ERROR_WAIT``
    seconds (the launcher stops this process meanwhile if the first one failed too) and
    return this process's rank; elsewhere return None at once (``print_error``)."""
    rank = os.environ.get("RANK", "0")
    if rank == "0" or not os.environ.get("MASTER_ADDR"):
        return None
    time.sleep(LAUNCHED_ERROR_WAIT)
    return rank


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors a launch prints once, as ``print_error`` does:
    every process parses the same command line, so they all fail together."""

    def error(self, message: str):
        rank = hold_back_unless_first()
        super().error(message if rank is None else f"rank {rank}: {message}")
