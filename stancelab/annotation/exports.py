"""The folder of raw Label Studio exports: immutable, timestamped, checksummed inputs.

``labels/exports/`` holds every export the project has taken in, as
``<name>-<UTC timestamp>.json`` with a ``.sha256`` beside it (``sha256sum`` format). A file
is created once with an exclusive link, never overwritten, never edited by code; the gold set
is derived from all of them (``stancelab.annotation.gold``). Reading the folder verifies every
checksum,
so a hand-edited or truncated export is an error, not a silent change of the gold labels.
Bringing in the same bytes twice is a no-op that names the existing file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stancelab.errors import InputError
from stancelab.paths import EXPORTS_DIR

_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.json$")


@dataclass(frozen=True)
class StoredExport:
    path: Path
    sha256: str
    taken_at: datetime  # when it entered the project; orders "newer" exports
    sequence: int  # tie-break for two exports within the same second


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


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def list_exports(directory: str | Path = EXPORTS_DIR) -> list[StoredExport]:
    """Every export in the folder, oldest first, each checksum verified."""
    directory = Path(directory)
    if not directory.exists():
        return []
    out = []
    for path in directory.glob("*.json"):
        taken, seq = parse_name(path)
        side = checksum_path(path)
        if not side.exists():
            raise InputError(f"{path}: missing its checksum file {side.name}")
        expected = side.read_text(encoding="utf-8").split()[:1]
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if expected != [actual]:
            raise InputError(
                f"{path}: checksum mismatch with {side.name}; exports are immutable "
                "(restore the original file)"
            )
        out.append(StoredExport(path, actual, taken, seq))
    return sorted(out, key=lambda e: (e.taken_at, e.sequence, e.path.name))


def new_export_path(directory: str | Path, name: str, now: datetime | None = None) -> Path:
    """The first free ``<name>-<UTC timestamp>[-n].json`` in the folder (nothing is created)."""
    directory = Path(directory)
    stamp = (now or datetime.now(UTC)).strftime(_STAMP)
    stem = _safe_stem(name)
    for n in range(1000):
        path = directory / (f"{stem}-{stamp}.json" if n == 0 else f"{stem}-{stamp}-{n}.json")
        if not path.exists() and not checksum_path(path).exists():
            return path
    raise InputError(f"{directory}: too many exports named {stem}-{stamp}")


def store_export(path: str | Path, data: bytes) -> Path:
    """Write ``data`` at ``path`` plus its checksum; fails rather than replace any file."""
    path = Path(path)
    parse_name(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = checksum_path(path)
    fd, tmp = tempfile.mkstemp(prefix=".export.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)  # read-only: a reminder that exports are never edited
        try:
            os.link(tmp, path)  # atomic, and fails if the name exists: never an overwrite
        except FileExistsError:
            raise InputError(f"{path}: already exists; exports are never overwritten") from None
        try:
            with open(side, "x", encoding="utf-8") as handle:
                handle.write(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
        except BaseException:
            os.unlink(path)
            raise
        return path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
