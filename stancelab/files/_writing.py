"""Writing: atomic writes, output checks, moves into place (the locks they take are in
``_locks``)."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from stancelab.errors import InputError
from stancelab.files._locks import output_lock, process_alive


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "\n")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, kept_mode(path, 0o666 & ~current_umask()))  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if (named := _named(exc, path, tmp)) is exc:
            raise
        raise named from exc


# A temporary file this old in a cache folder belongs to a write that was killed (SIGKILL,
# power loss): no write of a cache file takes an hour.
STALE_SECONDS = 3600


def remove_stale_temporaries(folder: Path, pattern: str = ".*.tmp") -> None:
    """Delete the temporary files and folders of killed writes in ``folder`` (those older
    than ``STALE_SECONDS``; younger ones may belong to a write still under way)."""
    import time

    now = time.time()
    for debris in folder.glob(pattern):
        with contextlib.suppress(OSError):  # gone already, or a read-only folder
            if now - debris.lstat().st_mtime > STALE_SECONDS:
                remove_path(debris)


@contextlib.contextmanager
def written_whole(
    output: Path, command: str = "stancelab predict", option: str = "--output"
) -> Iterator[Path]:
    """Under ``output_lock``: a new temporary folder beside ``output`` for the block to write
    into, moved into place (replacing ``output``) when the block ends, removed if it fails.
    So a failed or killed writer leaves the old ``output`` as it was; what a killed one left
    (the old output moved aside, its temporary folder) is put back or removed first."""
    with parents_made(output), output_lock(output, command, option):
        restore_replaced(output, locked=True)
        for debris in output.parent.glob(f".{glob.escape(output.name)}.part-*"):
            remove_path(debris)  # left by a killed run: none is writing (we hold the lock)
        part = temporary_folder(output, "part").resolve()  # workers may run elsewhere
        try:
            yield part
            move_into_place(part, output)
        except BaseException as exc:
            remove_path(part)
            if (named := _named(exc, output, part)) is exc:
                raise
            raise named from exc


@contextlib.contextmanager
def parents_made(output: Path) -> Iterator[None]:
    """Create the missing folders above ``output`` for the block; if it fails, remove those
    still empty, so a refused or failed run leaves no folder it created. Enter it before
    ``output_lock``, whose lock file in that folder is gone by then."""
    above = []
    parent = output.parent
    while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
        above.append(parent)
        parent = parent.parent
    made = []  # only the folders this call made: another run may make one of them meanwhile
    for folder in reversed(above):
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            made.append(folder)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in reversed(made):  # the deepest first; one that holds something stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise


# A write that fails for want of room: the error names no file (``write``, a library's close).
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _named(exc: BaseException, output: Path, temporary: str | os.PathLike) -> BaseException:
    """``exc``, or for a full disk (or quota, or file size limit) met while writing
    ``output`` through ``temporary`` (its temporary file or folder), the same error naming
    ``output``: the one line a command prints says which output did not fit, not a
    temporary name that is gone, nor nothing at all."""
    if not (isinstance(exc, OSError) and exc.errno in _NO_ROOM):
        return exc
    inside = exc.filename is not None and str(exc.filename).startswith(str(temporary))
    if exc.filename is not None and not inside:
        return exc  # another file, named already
    return OSError(exc.errno, exc.strerror, str(output))


# Names of a process's open files (``/dev/stdout`` links to ``/proc/self/fd/1``).
_DESCRIPTORS = re.compile(r"/dev/(stdin|stdout|stderr|fd/\d+)|/proc/(self|thread-self|\d+)/fd/\d+")


def followed(path: str | os.PathLike) -> Path:
    """The output ``path``, or where it points when it is a symbolic link: an output written
    through a link (to a bigger disk, say) lands where the link points, and the link stays.

    An output is written beside its name, then renamed into place, so these are refused
    before any work: ``.`` or ``..``; standard output and other open descriptors
    (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``); and a name that is, or points
    to, something other than a regular file or a folder (a device such as ``/dev/null``, a
    FIFO, a socket), which the rename would replace with a file."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise InputError(f"{path}: an output needs a name of its own (a file, or a new folder)")
    descriptor = InputError(
        f"{path}: cannot write to an open descriptor such as standard output (the output is "
        "written beside its name and renamed into place); give a file name"
    )
    hop = os.path.abspath(path)
    for _ in range(40):  # the name, and each link it leads through (to /dev/stdout, say)
        if _DESCRIPTORS.fullmatch(hop):
            raise descriptor
        if not os.path.islink(hop):
            break
        hop = os.path.normpath(os.path.join(os.path.dirname(hop), os.readlink(hop)))
    target = path
    if path.is_symlink():
        try:
            target = path.resolve()
        except (OSError, RuntimeError) as exc:  # a loop of links
            raise InputError(f"{path}: cannot follow this symbolic link ({exc})") from None
    try:
        mode = os.stat(target).st_mode
    except OSError:  # not there yet (or not reachable): the write says why
        return target
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(
            f"{path}: is not a regular file (a device, FIFO or socket), which the output "
            "would replace; give a file name"
        )
    return target


def refuse_input_as_output(
    output: str | os.PathLike, inputs: Iterable[str | os.PathLike], what: str = "input"
) -> None:
    """InputError when ``output`` is, or resolves to, one of ``inputs`` (through a symbolic
    or a hard link too), is a folder that holds one, or lies inside an input folder:
    writing there would destroy the input (or read the output as input). ``what`` the
    inputs are, for the message: "input", or "model" for predict's run directory."""
    out = Path(output)
    target = out.resolve()
    for source in map(Path, inputs):
        if not source.exists():
            continue
        same = target == source.resolve()
        if not same and out.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, source)  # a hard link or bind mount
        if same:
            raise InputError(f"{output}: is the {what} {source}; choose another output file")
        if target in source.resolve().parents:
            raise InputError(f"{output}: holds the {what} {source}; choose another output")
        if source.is_dir() and source.resolve() in target.parents:
            raise InputError(
                f"{output}: is inside the {what} folder {source}; choose an output outside it"
            )


# Tables: a spreadsheet's or a data frame's formats, which no JSON Lines file is named as.
TABULAR = {".csv", ".tsv", ".parquet", ".xlsx", ".xls", ".ods"}
# Names of other formats than the JSON Lines a ``jsonl`` output is written as.
NOT_JSONL = TABULAR | {".json", ".txt"}


def check_output_path(
    output: Path, option: str, *, folder: bool = False, jsonl: bool = False
) -> None:
    """InputError, before any work, unless an output can be written at ``output``: a file
    (with ``folder``, a folder) where no folder (file) is, under a folder that is a folder,
    not a file, and writable. Folders still missing are created later, by the writer. With
    ``jsonl``, a name ending in another format's suffix (``out.csv``) is refused too: the
    file would hold JSON Lines all the same, and a spreadsheet would misread it."""
    if jsonl and output.suffix.lower() in NOT_JSONL:
        raise InputError(
            f"{output}: {option} is written as JSON Lines (one JSON object per line), not "
            f"{output.suffix}; name it .jsonl"
        )
    kind = "a folder" if folder else "a file name"
    if not folder and output.is_dir():
        raise InputError(f"{output}: is a folder; {option} needs {kind}")
    if folder and output.exists() and not output.is_dir():
        raise InputError(f"{output}: is a file; {option} needs {kind}")
    parent = output if folder and output.is_dir() else output.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the nearest folder that exists: the rest is created
    if not parent.is_dir():
        raise InputError(f"{parent}: is a file, not a folder; choose another {option}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{parent}: cannot write in this folder; choose another {option}")


def refuse_existing(output: Path, option: str) -> None:
    """InputError when ``output`` exists: only ``--overwrite`` replaces an output."""
    if output.exists() or output.is_symlink():
        raise InputError(
            f"{output}: exists; pass --overwrite to replace it or choose another {option}"
        )


def temporary_folder(beside: Path, tag: str = "tmp") -> Path:
    """A new, empty folder ``.<name>.<tag>-XXXX`` next to ``beside`` (same file system, so
    it can be renamed into place), with the usual mode: ``mkdtemp`` makes 0700, which other
    users of a shared folder could not read."""
    folder = Path(tempfile.mkdtemp(prefix=f".{beside.name}.{tag}-", dir=beside.parent))
    folder.chmod(0o777 & ~current_umask())
    return folder


def move_into_place(new: Path, target: Path) -> None:
    """Rename ``new`` (a file or folder) to ``target``, replacing what is there; whatever
    was there is removed only once ``new`` is in place, and put back if that fails.
    A kill between the two renames leaves it at ``.<target>.part-old-<pid>``, which
    ``restore_replaced`` puts back."""
    old = None
    if target.is_dir() == new.is_dir():
        os.chmod(new, kept_mode(target, stat.S_IMODE(new.stat().st_mode)))
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.part-old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        remove_path(old)


def copy_linked(source: Path, target: Path) -> None:
    """Copy the file, symbolic link or folder tree ``source`` to the new name ``target`` as
    hard links where it can (the same file system: nothing copied, nothing lost if the
    original goes), else as copies. Keeps what a folder replaced whole should carry over."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:  # another file system, or one without hard links
            shutil.copy2(src, dst, follow_symlinks=False)

    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=link_or_copy)
    else:
        link_or_copy(str(source), str(target))


def restore_replaced(target: Path, *, locked: bool = False) -> None:
    """Put back what ``move_into_place`` moved aside, if a kill left ``target`` missing.
    What a live process moved aside is left alone: it is between its two renames. With
    ``locked`` (the caller holds the lock every mover of ``target`` holds), none is: a live
    process of that id is another one, which reused the id of a killed writer."""
    import glob

    for old in target.parent.glob(f".{glob.escape(target.name)}.part-old-*"):
        if not locked and process_alive(old.name.rsplit("-", 1)[1]):
            continue
        if target.exists() or target.is_symlink():
            remove_path(old)
        else:
            os.replace(old, target)


def remove_path(path: Path) -> None:
    """Remove a file, a symbolic link or a folder tree, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def kept_mode(path: Path, usual: int | None) -> int | None:
    """The permission bits of ``path`` if it exists, else ``usual``: an output written anew
    and renamed over the old one keeps the mode its user gave it (a report folder made
    private with ``chmod 700`` stays private, a group-writable one stays so)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # not there yet
        return usual


def current_umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def dumps_jsonl_row(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n"


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Atomically write rows as JSON Lines; returns the number of rows."""
    count = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(dumps_jsonl_row(row))
            count += 1
    return count


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2, sort_keys=False)
        handle.write("\n")
