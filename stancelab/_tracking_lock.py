"""The lock ``stancelab.tracking`` records under: two processes recording the same file
into the same MLflow store and experiment at once would both find it unrecorded and record
it twice, so the second is refused."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from stancelab.errors import InputError, TrackingError, os_error_line


@contextlib.contextmanager
def recording(uri: str, experiment: str, source: str, what: str) -> Iterator[None]:
    """Refuse a second process recording the same source into the same store and experiment:
    the check for a finished run and the new run are one step, or both processes would find
    none and record it twice. The lock file is in the state directory, keyed by the store
    (a relative SQLite or file store resolved against the working directory), the experiment
    and the source; it guards the processes of this machine, not of several machines that
    share one tracking server."""
    import hashlib

    from stancelab.files import lock_file

    key = hashlib.sha256(f"{store_key(uri)}\0{experiment}\0{source}".encode()).hexdigest()
    busy = (
        f"another process is recording {what!r} in MLflow experiment {experiment!r} at {uri} "
        "now; wait for it to finish"
    )
    folder = lock_folder()  # a TrackingError saying what to do when it cannot be one
    with contextlib.ExitStack() as held:
        try:  # only taking the lock is reported here, not what the block raises
            held.enter_context(lock_file(folder / f"mlflow-{key[:32]}.lock", busy))
        except OSError as exc:
            raise TrackingError(f"{folder}: cannot hold a lock ({os_error_line(exc)})") from None
        except InputError as exc:
            raise TrackingError(str(exc)) from None
        yield


def lock_folder() -> Path:
    """The folder of the recording locks (``locks/`` in the state directory), created; a
    ``TrackingError`` when the state directory cannot be a folder, saying what to do: the
    command that records later would fail the same way until then. ``check_store`` calls
    it before the work, so that case is found before anything is run."""
    from stancelab.paths import state_dir, state_dir_problem

    if problem := state_dir_problem():
        raise TrackingError(problem)
    folder = state_dir() / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(f"{folder}: cannot hold a lock ({os_error_line(exc)})") from None
    return folder


def store_key(uri: str) -> str:
    """The store a URI names, with a relative SQLite or file path made absolute."""
    if uri.startswith("sqlite:"):
        path = sqlite_file(uri)
        return uri if path is None else f"sqlite:///{path.resolve()}"
    if "://" not in uri or uri.startswith("file:"):
        return f"file://{Path(uri.removeprefix('file://').removeprefix('file:')).resolve()}"
    return uri.rstrip("/")  # http://host:5000/ is http://host:5000


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` tracking URI (None for another store or
    an in-memory database)."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database) if database and database != ":memory:" else None
