"""Streaming prediction over files: ``stancelab predict --input FILE --output OUT.jsonl``.

Inputs: ``.txt`` (one text per line; with ``documents=True`` the file is one article),
``.jsonl`` (``text``, optional ``id``) and ``.csv`` (``text`` column, optional ``id``).
Records are read lazily and predicted in chunks, so memory stays flat however large the
input. A record with bad text becomes an output row with an ``error`` field and the run
goes on.

Rows go to ``OUT.part``; after every chunk a checkpoint (records done, byte offset, the
SHA-256 of the bytes written so far and the counts of rows, error rows and flagged rows) is
written atomically beside it. ``resume=True`` checks the part file's first bytes against
that checksum, truncates it to the last checkpoint and continues, so no torn line survives
and an edited part is refused; on success the part file is renamed to ``OUT``. Output rows
carry ``labels``, ``scores`` and ``model_version`` and can be pushed to Label Studio as
pre-annotations (``stancelab label push --predictions OUT.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from stancelab.corpus.ingest import SPLITTING
from stancelab.corpus.readers import Record, read_records
from stancelab.errors import InputError
from stancelab.files import (
    check_output_path,
    exclusive_lock,
    followed,
    output_lock,
    read_json_object,
    refuse_existing,
    refuse_input_as_output,
    sha256_digest,
    write_json,
)
from stancelab.models.base import StanceModel
from stancelab.prediction.api import FLAGS
from stancelab.prediction.rows import Summary, count_rows, rows_for


def count_records(path: Path, documents: bool) -> int | None:
    """A fast upper bound on the number of records, for the progress bar."""
    if documents and path.suffix.lower() == ".txt":
        return 1
    newlines = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
    return max(newlines - (path.suffix.lower() == ".csv"), 1)


def predict_file(
    model: StanceModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    documents: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    chunk_size: int = 256,
    progress: bool = True,
) -> Summary:
    input_path, output_path = Path(input_path), followed(output_path)
    part = output_path.with_name(output_path.name + ".part")
    meta_path = output_path.with_name(output_path.name + ".part.json")
    refuse_input_as_output(output_path, [input_path])
    refuse_input_as_output(part, [input_path])
    refuse_model_as_output(model, output_path)
    check_output_path(output_path, "--output")
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{output_path.parent}: cannot create ({exc.strerror or exc})") from None
    records = read_records(input_path, documents)
    first = next(records, None)  # validates the input before anything is written
    records = _chain(first, records)
    created = not part.exists()
    busy = (
        f"{output_path}: another stancelab predict is writing this output (it holds {part.name}); "
        "wait for it to finish or choose another --output"
    )
    try:
        with output_lock(output_path), exclusive_lock(part, busy) as fd:
            try:
                return _predict_locked(
                    model,
                    input_path,
                    output_path,
                    part,
                    meta_path,
                    records,
                    fd,
                    documents=documents,
                    resume=resume,
                    overwrite=overwrite,
                    chunk_size=chunk_size,
                    progress=progress,
                )
            except InputError:
                # refused before writing: leave no empty part file behind (an error met
                # after rows were written keeps them, with their checkpoint, for --resume)
                if created and part.stat().st_size == 0:
                    part.unlink(missing_ok=True)
                raise
    except OSError as exc:  # a full disk, a folder that turned read-only, a vanished input
        where = exc.filename or output_path
        raise InputError(f"{where}: {exc.strerror or exc}; predict stopped") from None


def _predict_locked(
    model: StanceModel,
    input_path: Path,
    output_path: Path,
    part: Path,
    meta_path: Path,
    records: Iterator[Record],
    fd: int,
    *,
    documents: bool,
    resume: bool,
    overwrite: bool,
    chunk_size: int,
    progress: bool,
) -> Summary:
    stat = input_path.stat()
    identity = {
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "documents": documents,
        "splitting": SPLITTING if documents else None,  # documents into sentences
        "model_version": model.model_version,
        "text_form": model.text_form_,  # how the model reads text (None: as given)
        "engine": model.engine,  # int8 and fp32 scores must not be mixed in one output
    }
    skip, offset, written = 0, 0, hashlib.sha256()
    summary = Summary(output=str(output_path))
    if resume and output_path.exists() and not overwrite:
        raise InputError(f"{output_path}: already complete; nothing to resume")
    if not overwrite:
        refuse_existing(output_path, "--output")
    interrupted = meta_path.exists() or os.fstat(fd).st_size > 0
    if resume and interrupted:
        if not meta_path.exists():
            raise InputError(
                f"{part}: has no checkpoint {meta_path.name}; rerun with --overwrite to start over"
            )
        meta = read_json_object(meta_path)
        if {k: meta.get(k) for k in identity} != identity:
            raise InputError(
                f"{part}: was written for another input, model or precision"
                f"{_difference(meta, identity)}; resume with the same ones, or run with "
                "--overwrite to start over"
            )
        skip, offset, written = _check_kept(fd, part, meta, summary)
    elif interrupted and not overwrite:
        raise InputError(
            f"{part}: an interrupted run's partial output exists; pass --resume to continue it "
            "or --overwrite to start over"
        )
    summary.resumed_from = skip
    started = time.perf_counter()
    bar = _progress(count_records(input_path, documents), skip, progress)
    with open(fd, "r+b", closefd=False) as out:
        out.truncate(offset)
        out.seek(offset)
        done = 0
        chunk: list[Record] = []
        checkpoint = (meta_path, identity, written)
        for record in records:
            done += 1
            if done <= skip:
                continue
            chunk.append(record)
            if len(chunk) >= chunk_size:
                _flush(model, chunk, documents, out, summary, checkpoint, done, bar)
                chunk = []
        if chunk:
            _flush(model, chunk, documents, out, summary, checkpoint, done, bar)
    bar.close()
    refuse_input_as_output(output_path, [input_path])  # never replace an input, even now
    refuse_model_as_output(model, output_path)
    os.replace(part, output_path)  # still locked: the lock moves with the file
    meta_path.unlink(missing_ok=True)
    summary.seconds = time.perf_counter() - started
    return summary


def refuse_model_as_output(model: StanceModel, output: Path) -> None:
    """InputError when ``output`` is, holds or lies in the run directory ``model`` was
    loaded from (``load_model`` records it): writing there would destroy the model."""
    run_dir = getattr(model, "run_dir_", None)
    if run_dir is not None:
        refuse_input_as_output(output, [run_dir], "model")


COUNTS = ("rows", "errors", *FLAGS)  # the summary's counts a checkpoint records


def _check_kept(fd: int, part: Path, meta: dict, summary: Summary) -> tuple[int, int, object]:
    """(records done, bytes kept, SHA-256 of those bytes so far) of an interrupted run, and
    its counts put into ``summary``, so that these describe the whole output. The checkpoint
    must be sealed as written (``_seal``) and the kept bytes exactly those it recorded: an
    edited part file or checkpoint is refused, and both are left as they are."""
    try:
        skip, offset, expected = meta["records_done"], meta["bytes"], meta["sha256"]
        counts = {k: meta["counts"][k] for k in COUNTS}
        if meta["seal"] != _seal(skip, offset, expected, counts):
            raise ValueError("edited")
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"{part}: its checkpoint is not as stancelab wrote it (begun by an earlier "
            "stancelab, which recorded no checksum, or edited); rerun with --overwrite to "
            "start over"
        ) from None
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
    for key, value in counts.items():
        setattr(summary, key, value)
    return skip, offset, digest


def _seal(records_done: object, offset: object, sha256: object, counts: dict) -> str:
    """A checksum of a checkpoint's own figures: an edited ``records_done`` would resume at
    the wrong record and duplicate or drop rows in silence."""
    figures = json.dumps([records_done, offset, sha256, counts], sort_keys=True)
    return hashlib.sha256(figures.encode("utf-8")).hexdigest()


def _difference(meta: dict, identity: dict) -> str:
    if "engine" not in meta:
        return " (it was begun by an earlier stancelab, which did not record the engine)"
    changed = [k for k in identity if meta.get(k) != identity[k]]
    if changed == ["engine"]:
        return f" (it used {meta['engine']}, this run {identity['engine']})"
    if changed == ["splitting"]:
        return " (its documents were split into sentences by an earlier stancelab)"
    return f" (different: {', '.join(changed)})"


def _chain(first: Record | None, rest: Iterator[Record]) -> Iterator[Record]:
    if first is not None:
        yield first
        yield from rest


def _flush(model, chunk, documents, out, summary, checkpoint, done, bar) -> None:
    meta_path, identity, written = checkpoint
    rows = rows_for(model, chunk, documents)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    out.write(data)
    out.flush()
    os.fsync(out.fileno())
    written.update(data)
    summary.records += len(chunk)
    count_rows(summary, rows)
    offset, sha256 = out.tell(), written.hexdigest()
    counts = {k: getattr(summary, k) for k in COUNTS}
    figures = {"records_done": done, "bytes": offset, "sha256": sha256, "counts": counts}
    write_json(meta_path, {**identity, **figures, "seal": _seal(done, offset, sha256, counts)})
    bar.update(len(chunk))


def _progress(total: int | None, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="rec",
        disable=not enabled,
        dynamic_ncols=True,
        desc="predict",
        smoothing=0.1,
    )
