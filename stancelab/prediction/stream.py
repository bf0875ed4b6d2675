"""Streaming prediction over files: ``stancelab predict --input FILE --output OUT.jsonl``.

Inputs: ``.txt`` (one text per line; with ``documents=True`` the file is one article),
``.jsonl`` (``text``, optional ``id``) and ``.csv`` (``text`` column, optional ``id``).
Records are read lazily and predicted in chunks, so memory stays flat however large the
input. A record with bad text becomes an output row with an ``error`` field and the run
goes on.

Rows go to ``OUT.part``; after every chunk a checkpoint (records done, byte offset, the
SHA-256 of the bytes written so far, the counts of rows, error rows and flagged rows, and the
first error row with the distinct error messages, for the summary) is written atomically
beside it. ``resume=True`` checks the part file's first bytes against
that checksum, truncates it to the last checkpoint and continues, so no torn line survives
and an edited part is refused; on success the part file is renamed to ``OUT``. Output rows
carry ``labels``, ``scores`` and ``model_version`` and can be pushed to Label Studio as
pre-annotations (``stancelab label push --predictions OUT.jsonl``).

With ``documents=True`` the lines dropped as page furniture go to a side file named as
``stancelab corpus`` names its own (``corpus.ingest.dropped_path``), written the
same way: its own part file, covered by the same checkpoint, lock, refusals and
``--overwrite``, and renamed into place just before ``OUT``, so that an ``OUT`` on disk
always has its own side file beside it. A line-mode ``--overwrite`` of such an ``OUT``
removes its side file just before replacing it (only one proven to be that).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from stancelab.corpus.ingest import SPLITTING, dropped_path, holds_own_side_file
from stancelab.corpus.readers import Record, read_records
from stancelab.errors import InputError
from stancelab.files import (
    check_output_path,
    dumps_jsonl_row,
    exclusive_lock,
    followed,
    kept_mode,
    output_lock,
    read_json_object,
    refuse_existing,
    refuse_input_as_output,
    write_json,
)
from stancelab.models.base import StanceModel
from stancelab.prediction.checkpoint import (
    COUNTS,
    DOCUMENT_COUNTS,
    SideFile,
    check_kept,
    check_side_kept,
    other_fields,
    refuse_other_run,
    seal,
)
from stancelab.prediction.rows import (
    ChunkRows,
    Summary,
    count_rows,
    meta_fields,
    refuse_repeated_input_ids,
    rows_for,
)


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
    meta: str | Iterable[str] | None = None,
) -> Summary:
    """``meta``: the other fields rows carry (None: all, empty: none; ``rows.meta_fields``)."""
    meta = meta_fields(meta)
    input_path, output_path = Path(input_path), followed(output_path)
    part = output_path.with_name(output_path.name + ".part")
    meta_path = output_path.with_name(output_path.name + ".part.json")
    side = dropped_path(output_path) if documents else None  # furniture lines dropped
    side_part = side.with_name(side.name + ".part") if side else None
    for target in (output_path, part, side, side_part):
        if target is not None:
            refuse_input_as_output(target, [input_path])
    for target in (output_path, side):
        if target is not None:
            refuse_model_as_output(model, target)
            check_output_path(target, "--output", jsonl=True)
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{output_path.parent}: cannot create ({exc.strerror or exc})") from None
    records = read_records(input_path, documents, meta)
    first = next(records, None)  # validates the input before anything is written
    total = refuse_repeated_input_ids([input_path], documents=documents, meta=meta)
    records = _chain(first, records)
    busy = (
        f"{output_path}: another stancelab predict is writing this output (it holds {part.name}); "
        "wait for it to finish or choose another --output"
    )
    made: list[Path] = []  # part files this run created (and locked)
    try:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(output_lock(output_path))
                fd = _locked_part(held, part, busy, made)
                side_file = None
                if side is not None:
                    held.enter_context(output_lock(side))  # it may be another run's output
                    side_file = SideFile(side, side_part, _locked_part(held, side_part, busy, made))
                return _predict_locked(
                    model,
                    input_path,
                    output_path,
                    part,
                    meta_path,
                    records,
                    fd,
                    side_file,
                    documents=documents,
                    resume=resume,
                    overwrite=overwrite,
                    chunk_size=chunk_size,
                    progress=progress,
                    total=total,
                    meta=meta,
                )
            except InputError:
                # refused before writing: leave no empty part file behind (an error met
                # after rows were written keeps them, with their checkpoint, for --resume)
                for path in made:
                    if path.stat().st_size == 0:
                        path.unlink(missing_ok=True)
                raise
    except OSError as exc:  # a full disk, a folder that turned read-only, a vanished input
        where = exc.filename or output_path
        raise InputError(f"{where}: {exc.strerror or exc}; predict stopped") from None


def _locked_part(held: contextlib.ExitStack, path: Path, busy: str, made: list[Path]) -> int:
    """The descriptor of the part file ``path``, locked for the rest of ``held`` (created
    if missing, and then added to ``made``)."""
    existed = path.exists()
    fd = held.enter_context(exclusive_lock(path, busy))
    if not existed:
        made.append(path)
    return fd


def _predict_locked(
    model: StanceModel,
    input_path: Path,
    output_path: Path,
    part: Path,
    meta_path: Path,
    records: Iterator[Record],
    fd: int,
    side: SideFile | None,
    *,
    documents: bool,
    resume: bool,
    overwrite: bool,
    chunk_size: int,
    progress: bool,
    total: int,
    meta: tuple[str, ...] | None,
) -> Summary:
    """``total``: the number of records; with ``documents``, ``side``: the side file of
    dropped lines; ``meta``: the other fields carried (None: all)."""
    stat = input_path.stat()
    identity = {
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "documents": documents,
        "splitting": SPLITTING if documents else None,  # documents into sentences
        # the other fields each row carries as "meta": all, or those --meta names (an earlier
        # stancelab dropped them); rows of two choices must never share one output
        "other_fields": other_fields(input_path, meta),
        "model_version": model.model_version,
        "text_form": model.text_form_,  # how the model reads text (None: as given)
        "engine": model.engine,  # int8 and fp32 scores must not be mixed in one output
    }
    skip, offset, written = 0, 0, hashlib.sha256()
    side_offset, side_written = 0, hashlib.sha256()
    summary = Summary(output=str(output_path), dropped_output=str(side.path) if side else "")
    parts = (fd, *((side.fd,) if side else ()))
    if resume and output_path.exists() and not overwrite:
        if meta_path.exists() and any(os.fstat(f).st_size for f in parts):
            # OUT is the output that run was replacing, not its own (renamed from its part)
            raise InputError(
                f"{output_path}: the run stopped while replacing it (its checkpoint "
                f"{meta_path.name}) was given --overwrite; continue it with --resume --overwrite"
            )
        raise InputError(f"{output_path}: already complete; nothing to resume")
    if not overwrite:
        refuse_existing(output_path, "--output")
    interrupted = meta_path.exists() or any(os.fstat(f).st_size > 0 for f in parts)
    stray = not meta_path.exists() and os.fstat(fd).st_size == 0
    theirs = side.part.with_name(side.part.name + ".json") if side else None
    if side is not None and stray and (os.fstat(side.fd).st_size > 0 or theirs.exists()):
        # no checkpoint and no rows of this run, but rows in the side file's part file, or
        # the checkpoint of a run of --output OUT.dropped.jsonl (its part may be empty: a
        # --documents run that has dropped every line so far): that run's, in the way
        if not overwrite:
            raise InputError(
                f"{side.part}: partial output exists without this run's checkpoint "
                f"{meta_path.name} (an interrupted run of --output {side.path.name}?); "
                "finish or remove it, choose another --output, or pass --overwrite to "
                "replace it"
            )
        interrupted = False
    owner = _stopped_run_of_side_file(output_path)
    if owner is not None and not meta_path.exists() and not overwrite:
        # no checkpoint of this run: its part file is the side part of that stopped
        # --documents run, which --resume finishes (and --overwrite would spoil), even when
        # empty (no line dropped yet): an OUT written here would block that --resume
        held = os.fstat(fd).st_size > 0
        raise InputError(
            (f"{part}: holds the dropped lines" if held else f"{output_path}: is the side file")
            + f" of an interrupted --documents run of --output {owner.name} (its checkpoint "
            f"{owner.name}.part.json is there); finish that run first (its command with "
            "--resume), choose another --output, or pass --overwrite to replace "
            + ("them" if held else "it")
        )
    if resume and interrupted:
        if not meta_path.exists():
            raise InputError(
                f"{part}: has no checkpoint {meta_path.name}; rerun with --overwrite to start over"
            )
        begun = read_json_object(meta_path)
        refuse_other_run(part, begun, identity)
        skip, offset, written = check_kept(fd, part, begun, summary, documents)
        if side is not None:
            side_offset, side_written = check_side_kept(side, begun, overwrite)
    elif interrupted and not overwrite:
        raise InputError(
            f"{part}: an interrupted run's partial output exists; pass --resume to continue it "
            "or --overwrite to start over"
        )
    elif side is not None and not overwrite:
        refuse_existing(side.path, "--output")
    summary.resumed_from = skip
    started = time.perf_counter()
    bar = _progress(total, skip, progress)
    with contextlib.ExitStack() as opened:
        out = opened.enter_context(_reopened(fd, offset))
        side_out = opened.enter_context(_reopened(side.fd, side_offset)) if side else None
        done = 0
        chunk: list[Record] = []
        checkpoint = (meta_path, identity, written, side_written)
        for record in records:
            done += 1
            if done <= skip:
                continue
            chunk.append(record)
            if len(chunk) >= chunk_size:
                _flush(model, chunk, documents, (out, side_out), summary, checkpoint, done, bar)
                chunk = []
        if chunk:
            _flush(model, chunk, documents, (out, side_out), summary, checkpoint, done, bar)
    bar.close()
    for target, descriptor in ((output_path, fd), *(((side.path, side.fd),) if side else ())):
        refuse_input_as_output(target, [input_path])  # never replace an input, even now
        refuse_model_as_output(model, target)
        mode = kept_mode(target, None)
        if mode is not None:  # a replaced output keeps the mode its user gave it
            os.fchmod(descriptor, mode)
    if side is not None:
        # The side file first: an OUT on disk always has its own beside it. An OUT being
        # replaced goes first of all, so that it is never seen beside the new side file; a
        # run stopped between these renames is finished by --resume (``check_side_kept``).
        if overwrite:
            output_path.unlink(missing_ok=True)
        os.replace(side.part, side.path)
    elif overwrite:
        summary.side_removed = _remove_side_file_of(output_path, input_path)
    os.replace(part, output_path)  # still locked: the lock moves with the file
    meta_path.unlink(missing_ok=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _stopped_run_of_side_file(output_path: Path) -> Path | None:
    """The output whose side file of dropped lines is named ``output_path``
    (``dropped_path``), if a stopped ``--documents`` run of it left its checkpoint; else
    None."""
    name = output_path.name
    if output_path.suffix.lower() == ".jsonl":
        name = output_path.stem.removesuffix(".dropped") + output_path.suffix
    owner = output_path.with_name(name.removesuffix(".dropped"))
    checkpoint = owner.with_name(owner.name + ".part.json")
    if owner == output_path or dropped_path(owner) != output_path or not checkpoint.is_file():
        return None
    try:
        return owner if read_json_object(checkpoint).get("documents") is True else None
    except InputError:  # not a checkpoint as stancelab writes it
        return None


def _remove_side_file_of(output_path: Path, input_path: Path) -> str:
    """In line mode, the side file of dropped lines of the ``OUT`` being replaced, removed
    just before it, as it would no longer describe ``OUT``: only one proven to be that
    (``ingest.holds_own_side_file``), not an input, and not while another run writes it as
    its output. Its name if removed, else ""."""
    side = dropped_path(output_path)
    try:
        refuse_input_as_output(side, [input_path])
        with output_lock(side):
            if not holds_own_side_file(output_path):
                return ""
            side.unlink()
    except InputError:  # an input, or another run's output under way
        return ""
    return str(side)


def refuse_model_as_output(model: StanceModel, output: Path) -> None:
    """InputError when ``output`` is, holds or lies in the run directory ``model`` was
    loaded from (``load_model`` records it): writing there would destroy the model."""
    run_dir = getattr(model, "run_dir_", None)
    if run_dir is not None:
        refuse_input_as_output(output, [run_dir], "model")


def _chain(first: Record | None, rest: Iterator[Record]) -> Iterator[Record]:
    if first is not None:
        yield first
        yield from rest


@contextlib.contextmanager
def _reopened(fd: int, offset: int):
    """A locked part file open for writing, cut back to its last checkpoint's ``offset``."""
    with open(fd, "r+b", closefd=False) as out:
        out.truncate(offset)
        out.seek(offset)
        yield out


def _write_rows(out, written, rows: list[dict]) -> None:
    data = "".join(map(dumps_jsonl_row, rows)).encode("utf-8")
    out.write(data)
    out.flush()
    os.fsync(out.fileno())
    written.update(data)


def _flush(model, chunk, documents, outs, summary, checkpoint, done, bar) -> None:
    (out, side_out), (meta_path, identity, written, side_written) = outs, checkpoint
    result: ChunkRows = rows_for(model, chunk, documents)
    _write_rows(out, written, result.rows)
    side = None
    if side_out is not None:  # documents: the dropped lines, checkpointed with the rows
        _write_rows(side_out, side_written, result.dropped)
        side = {"bytes": side_out.tell(), "sha256": side_written.hexdigest()}
    summary.records += len(chunk)
    count_rows(summary, result)
    offset, sha256 = out.tell(), written.hexdigest()
    keys = COUNTS + (DOCUMENT_COUNTS if documents else ())
    counts = {k: getattr(summary, k) for k in keys}
    figures = {"records_done": done, "bytes": offset, "sha256": sha256, "counts": counts}
    if side is not None:
        figures["side_file"] = side
    seen = None  # the first error row and the distinct messages, for the resumed summary
    if summary.first_error is not None:
        seen = {"first": summary.first_error, "messages": summary.error_messages}
        figures["error_rows"] = seen
    sealed = seal(done, offset, sha256, counts, side, seen)
    write_json(meta_path, {**identity, **figures, "seal": sealed})
    bar.update(len(chunk))


def _progress(total: int, initial: int, enabled: bool):
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
