"""Files in and out of Ray Data for ``prediction.cluster``: the files an input gives
(``input_files``), a datasource that reads the ``.txt``, ``.jsonl`` and ``.csv`` inputs with
the project's one parser (``corpus.readers``), and a datasink that writes the local path's
rows and, with ``--documents``, the side rows of the lines dropped as page furniture (in
``DROPPED``); also ``refuse_foreign_folder``: what ``--overwrite`` may replace is a folder of
its files only."""

from __future__ import annotations

import io
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from stancelab.corpus.readers import (
    SUFFIXES,
    Record,
    check,
    parse_records,
    refuse_unless_file,
    skipped_warning,
)
from stancelab.corpus.text import first_names
from stancelab.errors import InputError
from stancelab.files import dumps_jsonl_row, walk_folder
from stancelab.prediction.api import FLAGS
from stancelab.prediction.error_rows import WHERE_KEYS, distinct_messages, first_error, input_order
from stancelab.prediction.rows import document_id, txt_document_id

READ_ROWS = 1024  # records per block read from a file
# What the datasink's folder holds: Ray Data's files, named <dataset uuid>_<index>.
OUTPUT_FILE = re.compile(r"[0-9a-f]{32}_\d{6}\.(jsonl|parquet)")
# With --documents, the lines dropped as page furniture: a folder of such files (JSONL) in
# OUT, moved into place with it. Its "_" keeps it out of what readers of OUT read (Ray Data,
# Arrow and Spark skip such names, and `cat OUT/*.jsonl` matches no folder), and out of an
# input folder's files (``input_files``).
DROPPED = "_dropped"
SIDE_KEYS = ("line", "doc_id", "reason", "text", "start", "end")  # the local side file's


def input_files(input_path: Path) -> tuple[list[Path], Path | None]:
    """The files to read (checked on the driver, and named to Ray one by one, so that the
    driver's checks see exactly what is read) and the input folder, if it is one. A folder's
    files are listed as Ray Data lists one: through links to folders too, and a path in it
    with a name beginning with "." or "_" (a hidden file or folder; a "_" folder, which Ray
    Data and Arrow take for not data) is skipped. Its other files that are not inputs (an
    .md article) are named in a warning, as ``corpus FOLDER`` does."""
    if input_path.is_dir():
        found, skipped, hidden = walk_folder(input_path, SUFFIXES, hidden=(".", "_"))
        if not found:
            named = [p.relative_to(input_path).as_posix() for p in hidden]
            inputs = [n for n in named if n.lower().endswith(SUFFIXES)]
            raise InputError(_no_files_message(input_path, inputs))
        if skipped:
            others = [p.relative_to(input_path).as_posix() for p in skipped]
            warnings.warn(skipped_warning(input_path, others, SUFFIXES), stacklevel=2)
        return found, input_path
    refuse_unless_file(input_path)  # missing, or a FIFO: said so whatever its name
    if input_path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{input_path}: unsupported input type; expected .txt, .jsonl or .csv")
    return [input_path], None


def _no_files_message(folder: Path, skipped: list[str]) -> str:
    """Why ``folder`` gives no input; it names the files skipped as hidden (``skipped``,
    relative paths), so that a folder of them is not taken for an empty one."""
    message = f"{folder}: no .txt, .jsonl or .csv files in this folder"
    if skipped:
        shown = first_names(skipped, 3)
        message += (
            f"; skipped {len(skipped)} hidden file(s), whose path there has a name beginning "
            f"with '.' or '_' ({shown}), as Ray Data skips them: rename them to have them read"
        )
    return message


def files_datasource(
    paths: list[str], documents: bool, folder: Path | None, meta: tuple[str, ...] | None = None
):
    """A Ray Data datasource that reads input files with ``readers.parse_records``; those of
    a ``folder`` give their rows a ``path`` column. ``meta``: the other fields kept (None:
    all), dropped here, so that a field left out never travels through Ray."""
    import pyarrow as pa
    from ray.data.datasource import FileBasedDatasource

    schema = pa.schema(
        [
            ("line", pa.int64()),
            ("id", pa.string()),
            ("text", pa.string()),
            ("error", pa.string()),
            # the record's other fields, as JSON text (``meta_column``); private, as a
            # user's Dataset may have a column "meta" of its own
            ("_meta", pa.string()),
        ]
    )

    class FilesDatasource(FileBasedDatasource):
        def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
            chunk: list[Record] = []
            for record in _records(f, path, documents, folder, meta):
                chunk.append(record)
                if len(chunk) >= READ_ROWS:
                    yield _table(chunk, schema)
                    chunk = []
            if chunk:
                yield _table(chunk, schema)

    return FilesDatasource(
        paths,
        include_paths=folder is not None,
        file_extensions=[s.lstrip(".") for s in SUFFIXES],
    )


def _records(
    f, path: str, documents: bool, folder: Path | None, meta: tuple[str, ...] | None
) -> Iterator[Record]:
    suffix = Path(path).suffix.lower()
    if suffix == ".txt" and documents:
        from stancelab.files import decode_text

        doc_id = txt_document_id(Path(path), folder)
        try:
            yield check(Record(1, doc_id, decode_text(f.readall(), path)))
        except InputError as exc:  # one bad article in a folder is an error row, not a failure
            yield Record(1, doc_id, None, str(exc))
        return
    binary = io.BufferedReader(f) if not isinstance(f, io.BufferedIOBase) else f
    # as readers.read_records opens a file: a byte order mark is not part of the data
    handle = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    records = parse_records(handle, suffix, path, meta)
    if not (documents and folder is not None):
        yield from records
        return
    for r in records:  # named here, as refuse_repeated_input_ids named them
        yield (
            r if r.id or r.error is not None else replace(r, id=document_id(r, Path(path), folder))
        )


def _table(records: list[Record], schema):
    import pyarrow as pa

    return pa.Table.from_pylist(
        [
            {
                "line": r.line,
                "id": r.id,
                "text": r.text,
                "error": r.error,
                # escaped to ASCII: a field that cannot be written (a lone surrogate) must
                # reach rows.rows_for, which makes its record an error row, not break Arrow
                "_meta": None if r.meta is None else json.dumps(r.meta),
            }
            for r in records
        ],
        schema=schema,
    )


def meta_column(meta: dict | None) -> str | None:
    """A record's other fields as the text of one Arrow column: JSON, so that records with
    other keys, or values of other types, share one schema (as in a Parquet output)."""
    return None if meta is None else json.dumps(meta, ensure_ascii=False)


def rows_sink(path: str, parquet: bool, dropped: bool = False):
    """A Ray Data datasink writing one ``.jsonl`` (or ``.parquet``) file per write task;
    it counts rows, error rows and flagged rows (``flagged``: truncated, foreign script),
    and keeps the first error row and the distinct error messages (``error_rows``).
    ``dropped``: the rows also hold ``--documents``' side rows (``split_side_rows``), written to
    ``DROPPED`` within ``path`` (JSONL, the local side file's rows) and counted per reason
    (``reasons``), with the records left with no sentence (``no_sentence``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ray.data._internal.planner.plan_write_op import WRITE_UUID_KWARG_NAME
    from ray.data.block import BlockAccessor
    from ray.data.datasource import BlockBasedFileDatasink

    class RowsSink(BlockBasedFileDatasink):
        def __init__(self) -> None:
            super().__init__(path, file_format="parquet" if parquet else "jsonl")
            self.rows = self.errors = self.no_sentence = 0
            self.flagged = dict.fromkeys(FLAGS, 0)
            self.reasons: dict[str, int] = {}
            self.first_error: dict | None = None  # in input order (error_rows)
            self.error_messages: list[str] = []

        def write(self, blocks, ctx):
            tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
            table = pa.concat_tables(tables) if tables else None
            side, no_sentence = None, 0
            if dropped and table is not None:
                table, side, no_sentence = split_side_rows(table)
                if side.num_rows:  # named as the task's output file (Ray's own key for
                    # its name): a retried task writes the same file again, rows not doubled
                    name = self.filename_provider.get_filename_for_task(
                        ctx.kwargs[WRITE_UUID_KWARG_NAME], ctx.task_idx
                    )
                    side_path = f"{self.path}/{DROPPED}/{Path(name).stem}.jsonl"
                    with self.open_output_stream(side_path) as file:
                        write_jsonl_rows(side.to_pylist(), file)
            super().write([table] if table is not None else [], ctx)
            rows = table.num_rows if table is not None else 0
            errors = rows - table.column("error").null_count if rows else 0
            flagged = {
                flag: (pc.sum(table.column(flag)).as_py() or 0) if rows else 0 for flag in FLAGS
            }
            reasons = Counter(side.column("reason").to_pylist()) if side is not None else {}
            first, messages = None, []
            if errors:  # only the error rows' place and message are read here
                failed = table.filter(pc.is_valid(table.column("error")))
                keys = [k for k in (*WHERE_KEYS, "error") if k in failed.column_names]
                found = failed.select(keys).to_pylist()
                first = min((first_error([r]) for r in found), key=input_order)
                messages = distinct_messages([], (r["error"] for r in found))
            return rows, errors, flagged, dict(reasons), no_sentence, first, messages

        def write_block_to_file(self, block, file) -> None:
            table = block.to_arrow()
            if parquet:
                pq.write_table(table, file)
                return
            write_jsonl_rows((local_row(row) for row in table.to_pylist()), file)

        def on_write_complete(self, write_result) -> None:
            super().on_write_complete(write_result)
            done = [r for r in write_result.write_returns if r]
            self.rows = sum(r[0] for r in done)
            self.errors = sum(r[1] for r in done)
            self.flagged = {flag: sum(r[2][flag] for r in done) for flag in FLAGS}
            self.reasons = dict(sum((Counter(r[3]) for r in done), Counter()))
            self.no_sentence = sum(r[4] for r in done)
            firsts = [r[5] for r in done if r[5] is not None]
            self.first_error = min(firsts, key=input_order) if firsts else None
            for r in done:
                self.error_messages = distinct_messages(self.error_messages, r[6])

    return RowsSink()


def split_side_rows(table):
    """(output rows, side rows, records with no sentence) of a table of ``Predictor`` rows
    with side rows among them (``cluster.rows_table``): a dropped line has a ``reason``, a
    tally of records left with no sentence a ``no_sentence``. The side rows keep the local
    side file's keys (with ``path`` for a folder's)."""
    import pyarrow.compute as pc

    is_dropped = pc.is_valid(table.column("reason"))
    is_tally = pc.is_valid(table.column("no_sentence"))
    no_sentence = pc.sum(table.column("no_sentence")).as_py() or 0
    keys = [k for k in ("path", *SIDE_KEYS) if k in table.column_names]
    side = table.filter(is_dropped).select(keys)
    rows = table.filter(pc.invert(pc.or_(is_dropped, is_tally)))
    return rows.drop_columns(["reason", "no_sentence"]), side, no_sentence


def write_jsonl_rows(rows, file) -> None:
    """Rows as JSON lines, as the local engine writes them, to an open binary ``file``."""
    file.write("".join(map(dumps_jsonl_row, rows)).encode("utf-8"))


def local_row(row: dict) -> dict:
    """A table row with the keys of the local path's row (``rows.rows_for``): an error row
    keeps only where it came from and its error, a good row has no ``error`` key and its
    flags (``truncated``, ``foreign_script``) only when true."""
    meta = {"meta": json.loads(row["meta"])} if row.get("meta") is not None else {}
    if row.get("error") is None:
        kept = (k for k in row if k not in ("error", "meta") and (k not in FLAGS or row[k]))
        return {**{k: row[k] for k in kept}, **meta}
    where = "doc_id" if "doc_id" in row else "id"
    return {**{k: v for k, v in row.items() if k in ("path", "line", where, "error")}, **meta}


def refuse_foreign_folder(output_path: Path) -> None:
    """InputError when ``output_path`` is a folder holding anything but an earlier run's
    files (and its ``DROPPED`` folder of them): ``--overwrite`` replaces predict's own
    output, never a folder of other files (a project, labels/, the augmentation set)."""
    if not output_path.is_dir():
        return
    for entry in output_path.iterdir():
        if entry.name == DROPPED and entry.is_dir() and not entry.is_symlink():
            held = [(p, p.suffix == ".jsonl") for p in entry.iterdir()]
        else:
            held = [(entry, True)]
        for path, named in held:
            if not (
                named
                and path.is_file()
                and not path.is_symlink()
                and OUTPUT_FILE.fullmatch(path.name)
            ):
                raise InputError(
                    f"{output_path}: holds {path.relative_to(output_path)}, which this engine did "
                    "not write, so it is not replaced, even with --overwrite; choose a new --output"
                )
