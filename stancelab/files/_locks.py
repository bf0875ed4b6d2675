"""Locks: one writer of an output, readers against a removal, and the process checks
they rest on. ``flock`` throughout, so a crash never leaves a stale lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from stancelab.errors import InputError


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, busy: str) -> Iterator[int]:
    """Hold an exclusive lock on ``path`` for the block; yields the open descriptor.

    ``path`` is a folder or a file (created if missing, never truncated). The lock is
    ``flock``: the kernel drops it when the process ends, however it ends, so a crash never
    leaves a stale lock. A second process is refused at once with ``InputError(busy)``
    instead of waiting. If the file was renamed or removed while we opened it (the holder
    finished), the new file at ``path`` is locked instead.
    """
    path = Path(path)
    for _ in range(100):
        try:
            if path.is_dir():
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InputError(f"{path}: cannot open for writing ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(busy) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - a path replaced a hundred times in a row
        raise InputError(busy)
    try:
        yield fd
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@contextlib.contextmanager
def shared_lock(path: Path) -> Iterator[None]:
    """Hold a shared ``flock`` on the file ``path`` for the block: any number of readers
    hold it at once, and ``exclusive_lock`` on it (a ``cache clear`` about to remove what
    they read) is refused meanwhile. A reader waits while that exclusive holder works (a
    removal, which never waits itself). The file is created if missing and never removed
    (a removed lock file would let two processes lock two files). Where it can be neither
    created nor opened (a state directory shared read-only), the block runs unguarded
    rather than fail a read that needs no writing."""
    fd = None
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW, 0o666)
            break
        except OSError:
            continue
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@contextlib.contextmanager
def output_lock(
    output: Path, command: str = "stancelab predict", option: str = "--output"
) -> Iterator[None]:
    """Refuse a second writer of the output ``output`` (for predict, whichever route writes
    it: the local one, a file, or Ray, a folder): one lock file ``.<name>.lock`` beside it,
    removed when released (``exclusive_lock`` copes with a lock file removed meanwhile).
    ``command`` and ``option`` name the writer and its option in the refusal."""
    busy = (
        f"{output}: another {command} is writing this output; wait for it to finish "
        f"or choose another {option}"
    )
    with lock_file(output.with_name(f".{output.name}.lock"), busy):
        yield


@contextlib.contextmanager
def lock_file(lock: Path, busy: str) -> Iterator[None]:
    """``exclusive_lock`` on the file ``lock``, which is removed when released."""
    with exclusive_lock(lock, busy):
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def process_alive(pid: str) -> bool:
    """Whether process ``pid`` (a number from a file name) is running, other than this one."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True
