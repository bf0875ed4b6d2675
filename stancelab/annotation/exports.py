"""The folder of raw Label Studio exports: immutable, timestamped, checksummed inputs.

``labels/exports/`` holds every export the project has taken in, as
``<name>-<UTC timestamp>.json`` with a ``.sha256`` beside it (``sha256sum`` format). A file
is created once with an exclusive link, never overwritten, never edited by code; the gold set
is derived from all of them (``stancelab.annotation.gold``). Reading the folder verifies every
checksum,
so a hand-edited or truncated export is an error, not a silent change of the gold labels.
Bringing in the same bytes twice is a no-op that names the existing file.

An export that ``stancelab label pull`` took also gets ``<name>.json.pull`` (a ``PullRecord``):
the server, the project and the server's own times of the snapshot, which held every task and
every annotation of the project. Only such a record lets a later pull show that an annotation
was deleted (``stancelab.annotation.votes.deleted_annotations``); an imported file has none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from stancelab.errors import InputError
from stancelab.files import checksum_path
from stancelab.paths import EXPORTS_DIR

_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.json$")
_PULL = "stancelab label pull"  # the record's "written_by": what vouches for its fields


@dataclass(frozen=True)
class PullRecord:
    """A pulled export's origin, as the server reported it (never the local clock)."""

    server: str  # the URL it was pulled from
    project_id: int
    project_created: str  # ISO; a project recreated under the same id and URL differs
    project_title: str
    snapshot_id: int  # the server's counter (never reused): orders a project's snapshots
    snapshot_created: str  # ISO, server clock: before the snapshot read any task
    snapshot_finished: str  # ISO, server clock: after it read the last one

    @property
    def project(self) -> tuple[str, int, str]:
        return (self.server, self.project_id, self.project_created)


def pull_path(path: Path) -> Path:
    """Where an export's ``PullRecord`` lives: beside it, ``<name>.pull``."""
    return path.with_name(path.name + ".pull")


def _pull_bytes(pull: PullRecord, digest: str) -> bytes:
    # whole_project: the snapshot was made without task or annotation filters.
    record = {"written_by": _PULL, "whole_project": True, **asdict(pull), "export_sha256": digest}
    return (json.dumps(record, indent=2) + "\n").encode()


def read_pull(path: Path, digest: str) -> PullRecord | None:
    """The ``PullRecord`` beside export ``path`` (whose SHA-256 is ``digest``), if any."""
    side = pull_path(path)
    if not side.exists():
        return None
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
        assert record.pop("written_by") == _PULL and record.pop("whole_project") is True
        assert record.pop("export_sha256") == digest, "it belongs to other bytes"
        pull = PullRecord(**record)
        assert isinstance(pull.project_id, int) and isinstance(pull.snapshot_id, int)
        for stamp in (pull.project_created, pull.snapshot_created, pull.snapshot_finished):
            datetime.fromisoformat(stamp)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, AssertionError) as exc:
        why = f" ({exc})" if str(exc) else ""
        raise InputError(
            f"{side}: not the pull record of {path.name}{why}; restore it, or remove it to "
            "count the export as an imported one"
        ) from None
    return pull


@dataclass(frozen=True)
class StoredExport:
    path: Path
    sha256: str
    taken_at: datetime  # when it entered the project; orders "newer" exports
    sequence: int  # tie-break for two exports within the same second
    pull: PullRecord | None = None  # None: imported, or pulled by an older stancelab


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "export"
    return stem[:60]


def parse_name(path: Path) -> tuple[datetime, int]:
    match = _NAME.match(path.name)
    if not match:
        raise InputError(
            f"{path}: not an export name (<name>-YYYYMMDDTHHMMSSZ.json); bring files in with "
            "`stancelab label import FILE`, never by copying them into the folder"
        )
    taken = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
    return taken, int(match["n"] or 0)


def list_exports(directory: str | Path = EXPORTS_DIR) -> list[StoredExport]:
    """Every export in the folder, oldest first, each checksum verified."""
    directory = Path(directory)
    if not directory.exists():
        return []
    out = []
    for path in directory.glob("*.json"):
        taken, seq = parse_name(path)
        side = checksum_path(path)
        expected = side.read_text(encoding="utf-8").split()[:1] if side.exists() else []
        if not expected:
            state = "is empty" if side.exists() else "is missing"
            raise InputError(
                f"{path}: its checksum file {side.name} {state} (an interrupted import?); if "
                f"the export is the file you imported, recreate it with `cd {directory} && "
                f"sha256sum {path.name} > {side.name}`, otherwise remove both files and import "
                "the original export again"
            )
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if expected != [actual]:
            raise InputError(
                f"{path}: checksum mismatch with {side.name}; exports are immutable "
                "(restore the original file)"
            )
        out.append(StoredExport(path, actual, taken, seq, read_pull(path, actual)))
    return sorted(out, key=lambda e: (e.taken_at, e.sequence, e.path.name))


def new_export_path(directory: str | Path, name: str, now: datetime | None = None) -> Path:
    """The first free ``<name>-<UTC timestamp>[-n].json`` in the folder (nothing is created)."""
    directory = Path(directory)
    stamp = (now or datetime.now(UTC)).strftime(_STAMP)
    stem = _safe_stem(name)
    for n in range(1000):
        path = directory / (f"{stem}-{stamp}.json" if n == 0 else f"{stem}-{stamp}-{n}.json")
        if not any(p.exists() for p in (path, checksum_path(path), pull_path(path))):
            return path
    raise InputError(f"{directory}: too many exports named {stem}-{stamp}")


_TMP_PREFIX = ".export."


def _write_temp(directory: Path, data: bytes, suffix: str) -> Path:
    """``data`` in a new read-only temporary file of the folder, flushed to disk."""
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)  # read-only: a reminder that exports are never edited
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_new(tmp: Path, target: Path) -> None:
    try:
        os.link(tmp, target)  # atomic, and fails if the name exists: never an overwrite
    except FileExistsError:
        raise InputError(f"{target}: already exists; exports are never overwritten") from None


def store_export(path: str | Path, data: bytes, pull: PullRecord | None = None) -> Path:
    """Write ``data`` at ``path`` plus its checksum (and ``pull``); fails rather than replace
    any file.

    All are written whole to temporary files first and then linked into place, the export
    last: a kill at any step leaves either no export, or an export with its full checksum and
    pull record (plus temporary files and at most an orphan checksum or pull record, still
    linked to its temporary file, which ``recover`` removes).
    """
    path = Path(path)
    parse_name(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    files = [(f"{digest}  {path.name}\n".encode(), ".sha256.tmp", checksum_path(path))]
    if pull is not None:
        files.insert(0, (_pull_bytes(pull, digest), ".pull.tmp", pull_path(path)))
    files.append((data, ".tmp", path))
    temps: list[Path] = []
    linked: list[Path] = []
    try:
        for content, suffix, target in files:
            temps.append(_write_temp(path.parent, content, suffix))
            _link_new(temps[-1], target)
            linked.append(target)
        _sync_dir(path.parent)
        return path
    except BaseException:
        if path not in linked:  # no export: what this call linked for it goes too
            for target in linked:
                target.unlink(missing_ok=True)
        raise
    finally:
        for leftover in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def recover(directory: str | Path) -> list[str]:
    """Repair what an import killed mid-way left in the folder; call it under the folder's
    lock (``stancelab.annotation.gold.update_gold`` does). Returns what was done.

    - An export whose checksum file is missing or empty, and which is still hard-linked to
      its import's temporary file, was written whole before it was linked (the old import
      created the checksum afterwards): its checksum is computed and written.
    - A checksum file or pull record without its export, still hard-linked to its import's
      temporary file, is an import or pull killed before the export's link (``store_export``
      removes its temporary files only once the export is linked): removed.
    - One without its export and without such a link outlived an export deleted by hand: a
      pull record is the only account of that pull, so both are kept, and reported.
    - Temporary files of imports (``.export.*.tmp``) are removed: no import is running.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    done = []
    temps = sorted(directory.glob(f"{_TMP_PREFIX}*.tmp"))
    linked = {t.stat().st_ino for t in temps}
    inodes = {t.stat().st_ino for t in temps if not t.name.endswith(".sha256.tmp")}
    for path in sorted(directory.glob("*.json")):
        side = checksum_path(path)
        if side.exists() and side.read_text(encoding="utf-8").strip():
            continue
        if path.stat().st_ino in inodes:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            side_tmp = _write_temp(directory, f"{digest}  {path.name}\n".encode(), ".sha256.tmp")
            os.replace(side_tmp, side)
            done.append(f"recreated {side.name} for the interrupted import of {path.name}")
    for side in sorted([*directory.glob("*.json.sha256"), *directory.glob("*.json.pull")]):
        export = side.with_name(side.name[: side.name.rindex(".")])
        if export.exists():
            continue
        if side.stat().st_ino in linked:
            side.unlink()
            done.append(f"removed {side.name}, left by an import interrupted before its export")
        else:
            done.append(
                f"kept {side.name}: its export {export.name} was deleted, not by an "
                "interrupted import; remove it by hand if the export was meant to go"
            )
    for tmp in temps:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if temps:
        done.append(f"removed {len(temps)} temporary file(s) of interrupted imports")
    if done:
        _sync_dir(directory)
    return done
