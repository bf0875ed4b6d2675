"""The checkpoint of a streaming prediction (``stancelab.prediction.stream``): what it
records after every chunk, how it is sealed, and the checks that an interrupted run's part
files (the output's and, with ``documents``, the side file's) still hold exactly the bytes it
recorded before ``--resume`` continues them, and that it carried the same other fields
(``--meta``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from stancelab.errors import InputError
from stancelab.files import refuse_existing, sha256_digest, sha256_file
from stancelab.prediction.api import FLAGS
from stancelab.prediction.rows import Summary

COUNTS = ("rows", "errors", *FLAGS)  # the summary's counts a checkpoint records
DOCUMENT_COUNTS = ("no_sentence", "dropped")  # and with documents=True


@dataclass(frozen=True)
class SideFile:
    """With ``documents``: the side file of dropped lines, its part file and that part
    file's descriptor, locked for the run."""

    path: Path
    part: Path
    fd: int


def check_kept(
    fd: int, part: Path, meta: dict, summary: Summary, documents: bool
) -> tuple[int, int, object]:
    """(records done, bytes kept, SHA-256 of those bytes so far) of an interrupted run, and
    its counts put into ``summary``, so that these describe the whole output. The checkpoint
    must be sealed as written (``seal``) and the kept bytes exactly those it recorded: an
    edited part file or checkpoint is refused, and both are left as they are."""
    if documents and "side_file" not in meta and "seal" in meta:
        raise InputError(
            f"{part}: was begun by an earlier stancelab, which kept no side file of the lines "
            "--documents drops; rerun with --overwrite to start over"
        )
    try:
        skip, offset, expected = meta["records_done"], meta["bytes"], meta["sha256"]
        keys = COUNTS + (DOCUMENT_COUNTS if documents else ())
        counts = {k: meta["counts"][k] for k in keys}
        side = meta["side_file"] if documents else None
        seen = meta.get("error_rows")  # the first error row and the distinct messages
        if meta["seal"] != seal(skip, offset, expected, counts, side, seen):
            raise ValueError("edited")
        errors_seen = (seen["first"], list(seen["messages"])) if seen is not None else None
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"{part}: its checkpoint is not as this stancelab writes it (begun by another "
            "version of stancelab, or edited); rerun with --overwrite to start over"
        ) from None
    digest = kept_digest(fd, part, offset, expected)
    for key, value in counts.items():
        setattr(summary, key, value)
    if errors_seen is not None:
        summary.first_error, summary.error_messages = errors_seen
    return skip, offset, digest


def check_side_kept(side: SideFile, meta: dict, overwrite: bool):
    """(bytes kept, their SHA-256 so far) of an interrupted run's side file of dropped lines
    (its checkpoint already checked by ``check_kept``). A side file in place that holds
    exactly the bytes the checkpoint recorded is the run's own, renamed just before it was
    stopped (``stream._predict_locked``): it is taken back into the part file and replaced at the
    end. Any other one is refused unless ``overwrite``."""
    offset, expected = meta["side_file"]["bytes"], meta["side_file"]["sha256"]
    path, fd = side.path, side.fd
    if path.is_file() and path.stat().st_size == offset and sha256_file(path) == expected:
        if os.fstat(fd).st_size < offset:
            with open(path, "rb") as finished, open(fd, "r+b", closefd=False) as into:
                into.truncate(0)
                into.write(finished.read())
                into.flush()
                os.fsync(into.fileno())
    elif not overwrite:
        refuse_existing(path, "--output")
    return offset, kept_digest(fd, side.part, offset, expected)


def kept_digest(fd: int, part: Path, offset: int, expected: str):
    """The SHA-256 of a part file's first ``offset`` bytes, which must be ``expected``:
    a part file cut short or edited is refused."""
    size = os.fstat(fd).st_size
    if size < offset:
        raise InputError(
            f"{part}: holds {size} bytes, fewer than the {offset} its checkpoint recorded (was "
            "it cut or deleted?); rerun with --overwrite to start over"
        )
    with open(fd, "rb", closefd=False) as kept:
        kept.seek(0)
        digest = sha256_digest(kept, offset)
    if digest.hexdigest() != expected:
        raise InputError(
            f"{part}: its first {offset} bytes are not those its checkpoint recorded (was it "
            "edited?); rerun with --overwrite to start over"
        )
    return digest


def seal(
    records_done: object,
    offset: object,
    sha256: object,
    counts: dict,
    side: object = None,
    error_rows: object = None,
) -> str:
    """A checksum of a checkpoint's own figures: an edited ``records_done`` would resume at
    the wrong record and duplicate or drop rows in silence. ``side``: the side file's bytes
    and SHA-256 (``documents`` only); ``error_rows``: the first error row and the distinct
    messages (once there is an error row); without them a checkpoint's seal is as before."""
    figures = [records_done, offset, sha256, counts] + ([side] if side is not None else [])
    figures += [{"error_rows": error_rows}] if error_rows is not None else []
    return hashlib.sha256(json.dumps(figures, sort_keys=True).encode("utf-8")).hexdigest()


def other_fields(input_path: Path, meta: tuple[str, ...] | None) -> str | list[str] | None:
    """What the checkpoint records of the fields rows carry: None for a ``.txt`` input (it
    has none), "meta" for all of them, else the list of those ``--meta`` names (sorted by
    ``meta_fields``; empty with ``--no-meta``)."""
    if input_path.suffix.lower() == ".txt":
        return None
    return "meta" if meta is None else list(meta)


def _carried(fields: str | list[str]) -> str:
    """What rows carry as ``meta`` by ``fields`` (as ``other_fields`` gives), for a message."""
    if fields == "meta":
        return "every other field (no --meta)"
    if not fields:
        return "no other field (--no-meta)"
    return f"only {', '.join(fields)} (--meta {','.join(fields)})"


def refuse_other_run(part: Path, begun: dict, identity: dict) -> None:
    """InputError when the checkpoint ``begun`` of the interrupted run in ``part`` was not
    written for this run's ``identity`` (another input, model, precision or choice of other
    fields), saying what differs; ``--resume`` must not continue it."""
    changed = [k for k in identity if begun.get(k) != identity[k]]
    if not changed:
        return
    before = begun.get("other_fields")
    as_written = before == "meta" or (
        isinstance(before, list) and all(isinstance(name, str) for name in before)
    )
    if changed == ["other_fields"] and as_written:  # --meta, --no-meta: one output, one choice
        raise InputError(
            f"{part}: its rows carry {_carried(before)}, this run's would carry "
            f"{_carried(identity['other_fields'])}, and one output never mixes the two; resume "
            "with the same choice, or run with --overwrite to start over"
        )
    raise InputError(
        f"{part}: was written for another input, model or precision"
        f"{_difference(begun, identity, changed)}; resume with the same ones, or run with "
        "--overwrite to start over"
    )


def _difference(meta: dict, identity: dict, changed: list[str]) -> str:
    if "engine" not in meta:
        return " (it was begun by an earlier stancelab, which did not record the engine)"
    if changed == ["engine"]:
        return f" (it used {meta['engine']}, this run {identity['engine']})"
    if changed == ["splitting"]:
        return " (its documents were split into sentences by an earlier stancelab)"
    if changed == ["other_fields"]:
        return " (it was begun by an earlier stancelab, which dropped the input's other fields)"
    return f" (different: {', '.join(changed)})"
