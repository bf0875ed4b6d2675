"""Prediction on Ray Data: ``stancelab predict --input PATH --output OUT --engine ray``.

The same inputs, rows and errors as the local path (``prediction.stream``): a Ray Data
datasource runs the project's one parser on each file, ``map_batches`` runs ``Predictor``
(one model per actor, restarted and retried after a crash, so every row is written once),
and the run directory and its ONNX export reach the actors through Ray's object store.
``OUT`` is a folder of ``.jsonl`` (or ``.parquet``) files, rows not in input order; with
``--documents`` the lines dropped as page furniture go to its ``_dropped/`` folder.
``predict_dataset`` takes a ``ray.data.Dataset`` with a ``text`` column. README, "Running on
a cluster"; Ray is the optional extra ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stancelab.corpus.readers import Record, check, read_records
from stancelab.errors import InputError, StancelabError, first_line
from stancelab.files import (
    followed,
    refuse_existing,
    refuse_input_as_output,
    written_whole,
)
from stancelab.labels import LABELS
from stancelab.prediction.api import FLAGS, default_model_dir
from stancelab.prediction.ray_address import check_ray_address
from stancelab.prediction.ray_files import (
    DROPPED,
    files_datasource,
    input_files,
    meta_column,
    refuse_foreign_folder,
    rows_sink,
)
from stancelab.prediction.rows import (
    ClusterSummary,
    meta_fields,
    refuse_repeated_input_ids,
    rows_for,
)

if TYPE_CHECKING:
    import ray.data

RAY_EXTRA = "the Ray engine needs Ray: pip install -e '.[ray]' (or pip install 'stancelab[ray]')"
RETRIES = 4  # actor restarts, and retries of the batch a dead actor held


def require_ray() -> None:
    """InputError with the extra to install when Ray Data cannot be imported."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(RAY_EXTRA) from None


# --- the model, through the object store -------------------------------------------------


def model_files(model, directory: Path) -> dict[str, bytes]:
    """The files a worker needs to load ``model`` (loaded from ``directory``) as the driver
    did: the run directory under ``run/``, and the ONNX export in use under ``home/onnx/``."""
    directory = Path(directory)
    files = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[f"run/{rel.as_posix()}"] = path.read_bytes()
    key = getattr(model, "weights_key_", None)
    if key is not None and getattr(model, "runner_", None) is not None:
        from stancelab.models.transformer.onnx import cache_dir

        for export in (f"{key}.onnx", f"{key}.int8.onnx"):  # each with its own checksum
            for name in (export, export + ".sha256"):
                if (cache_dir() / name).is_file():
                    files[f"home/onnx/{name}"] = (cache_dir() / name).read_bytes()
    return files


class Predictor:
    """One loaded model per Ray actor: ``map_batches(Predictor, ...)`` calls it per batch."""

    def __init__(
        self,
        package: list,
        precision: str | None,
        backend: str | None,
        documents: bool,
        dropped: bool = False,
    ):
        import ray

        from stancelab.prediction.api import resolve_model

        files = ray.get(package[0])  # wrapped in a list so that Ray does not resolve it early
        with tempfile.TemporaryDirectory(prefix="stancelab-model-") as tmp:
            root = Path(tmp)
            for name, data in files.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
            del files
            os.environ["STANCELAB_HOME"] = str(root / "home")  # this actor's process only
            if backend:
                os.environ["STANCELAB_BACKEND"] = backend
            self.model = resolve_model(root / "run", precision)
            self.model.predict_proba(["Warm-up."])  # reads the files it loads lazily, now
        # The copies are gone once loaded: an actor killed later leaves nothing on disk.
        self.documents, self.dropped = documents, documents and dropped

    def __call__(self, batch):
        columns = batch.to_pydict()
        if "text" not in columns:
            raise ValueError(f"predict needs a 'text' column; found {sorted(columns)}")
        n = batch.num_rows
        lines = columns.get("line", [None] * n)
        ids = columns.get("id", [None] * n)
        errors = columns.get("error", [None] * n)
        metas = columns.get("_meta", [None] * n)  # JSON text, from files_datasource
        paths = columns.get("path")  # a folder's files, or a user's column
        groups: dict[Any, list[Record]] = {}
        for i, text in enumerate(columns["text"]):
            raw_id, meta = ids[i], metas[i]
            record = Record(
                lines[i],
                None if raw_id is None else str(raw_id),
                text,
                errors[i],
                json.loads(meta) if isinstance(meta, str) else None,
            )
            groups.setdefault(paths[i] if paths is not None else None, []).append(check(record))
        rows = []
        for path, records in groups.items():
            found = rows_for(self.model, records, self.documents)
            side = found.dropped if self.dropped else []
            tally = (
                [{"no_sentence": found.no_sentence}] if self.dropped and found.no_sentence else []
            )
            for row in found.rows + side + tally:
                rows.append({"path": path, **row} if paths is not None else row)
        return rows_table(rows, self.documents, paths is not None, self.dropped)


def rows_table(rows: list[dict], documents: bool, with_path: bool, dropped: bool = False):
    """Output rows as an Arrow table with a fixed schema (keys a row lacks are null).
    ``dropped``: with the side rows of ``predict_dataset(..., dropped=True)``."""
    import pyarrow as pa

    fields = [("path", pa.string())] if with_path else []
    fields.append(("line", pa.int64()))
    if documents:
        fields += [("doc_id", pa.string()), ("id", pa.string())]
        fields += [(name, pa.int64()) for name in ("index", "start", "end")]
    else:
        fields.append(("id", pa.string()))
    fields += [
        ("text", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("scores", pa.struct([(name, pa.float64()) for name in LABELS])),
        *((flag, pa.bool_()) for flag in FLAGS),
        ("model_version", pa.string()),
        ("error", pa.string()),
        ("meta", pa.string()),  # JSON text (``ray_files.meta_column``)
    ]
    if dropped:
        fields += [("reason", pa.string()), ("no_sentence", pa.int64())]
    unflagged = dict.fromkeys(FLAGS, False)
    rows = [r if "error" in r else {**unflagged, **r} for r in rows]
    rows = [{**r, "meta": meta_column(r["meta"])} if "meta" in r else r for r in rows]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def predict_dataset(
    dataset: ray.data.Dataset,
    model: str | os.PathLike | None = None,
    *,
    precision: str | None = None,
    documents: bool = False,
    workers: int | None = None,
    batch_size: int = 256,
    cpus_per_worker: float = 1,
    dropped: bool = False,
) -> ray.data.Dataset:
    """Predictions for a Ray Dataset with a ``text`` column (optional ``id``, ``line``).

    Returns a lazy Dataset of the local path's rows: ``id``, ``text``, ``labels``,
    ``scores``, ``truncated`` (true when the text was longer than the model reads),
    ``foreign_script`` (true when it is mostly not in Latin letters),
    ``model_version``, ``error`` (null unless the text was bad; a bad text does not fail
    the job; its other columns are null), and with ``documents=True`` one row per sentence
    with its offsets. ``dropped=True`` (with ``documents``) adds the side rows: each line
    dropped as page furniture (a non-null ``reason``; ``line``, ``doc_id``, ``text``,
    ``start``, ``end``) and, per batch, a tally of the records left with no sentence (a
    non-null ``no_sentence``); ``ray_files.split_side_rows`` separates them.
    ``workers`` actors (default: the cluster's CPUs / ``cpus_per_worker``) each load the
    model once; a dead actor is restarted and its batch retried. Call inside ``ray.init()``.
    """
    import ray

    from stancelab.models.transformer.onnx import check_precision, default_precision
    from stancelab.prediction.api import default_model_dir, resolve_model

    directory = Path(model) if model is not None else default_model_dir()
    precision = check_precision(precision or default_precision())
    loaded = resolve_model(directory, precision)  # fails here, on the driver, if it cannot load
    package = [ray.put(model_files(loaded, directory))]
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
    with warnings.catch_warnings():
        # Ray 2.60 marks the actor options (max_restarts, ...) deprecated with no named
        # replacement; its default is to restart forever, a bounded count is kept here.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return dataset.map_batches(
            Predictor,
            fn_constructor_args=(
                package,
                precision,
                os.environ.get("STANCELAB_BACKEND"),
                documents,
                dropped,
            ),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus_per_worker,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )


# --- files in, files out -------------------------------------------------------------------


def predict_files(
    model: str | os.PathLike | None,
    input_path: str | Path,
    output_path: str | Path,
    *,
    documents: bool = False,
    overwrite: bool = False,
    batch_size: int = 256,
    workers: int | None = None,
    ray_address: str | None = None,
    precision: str | None = None,
    meta: str | Iterable[str] | None = None,
) -> ClusterSummary:
    """``stancelab predict --engine ray``: files in, a folder of prediction files out.

    Joins the cluster at ``ray_address`` (or ``$RAY_ADDRESS``; one that is not a Ray head,
    ``check_ray_address``, is an ``InputError``), else starts a local Ray sized to the
    machine (and stops it at the end); inside ``ray.init()`` it uses that one; ``meta`` as
    locally (``stream.predict_file``).
    """
    require_ray()
    meta = meta_fields(meta)
    input_path, output_path = Path(input_path), followed(output_path)
    files, folder = input_files(input_path)
    # a folder's files may lie in folders it links to: an OUT there would be read as input
    held = {folder / up for p in files for up in p.relative_to(folder).parents} if folder else ()
    refuse_input_as_output(output_path, [input_path, *held])
    run_dir = Path(model) if model is not None else default_model_dir()
    refuse_input_as_output(output_path, [run_dir], "model")  # OUT would replace the model
    if not overwrite:
        refuse_existing(output_path, "--output")
    refuse_foreign_folder(output_path)
    if folder is None:  # a bad header (CSV without 'text') fails here, before Ray starts
        next(iter(read_records(input_path, documents)), None)
    # ids repeated, or a --meta field no record has: refused before any work, as locally
    refuse_repeated_input_ids(files, folder, documents=documents, meta=meta)
    import ray

    if not ray.is_initialized():  # a cluster that is not there: before the work, at once
        check_ray_address(ray_address)
    try:
        summary = _predict_locked(
            model,
            files,
            folder,
            output_path,
            documents=documents,
            batch_size=batch_size,
            workers=workers,
            ray_address=ray_address,
            precision=precision,
            meta=meta,
        )
    except OSError as exc:  # a parent that is a file, an unwritable or full folder
        where = exc.filename or output_path
        raise InputError(f"{where}: {exc.strerror or exc}; predict stopped") from None
    summary.output = str(output_path)
    if documents:
        summary.dropped_output = f"{output_path / DROPPED}/"
    return summary


def _predict_locked(model, files, folder, output_path: Path, **options) -> ClusterSummary:
    """Write OUT under its lock: into a temporary folder beside it, moved into place only
    when complete, so a failed or killed run leaves the old OUT (and the inputs) as they
    were."""
    with written_whole(output_path) as part:
        parquet = output_path.suffix.lower() == ".parquet"
        summary = _predict_into(model, files, folder, part, parquet, **options)
    return summary


def _predict_into(
    model,
    files: list[Path],
    folder: Path | None,
    part: Path,
    parquet: bool,
    *,
    documents,
    batch_size,
    workers,
    ray_address,
    precision,
    meta,
) -> ClusterSummary:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:  # "auto" with no local instance, a cluster gone
            raise InputError(f"Ray: {first_line(exc)}") from None
    try:
        started = time.perf_counter()
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        # The workers may run elsewhere: absolute paths, a folder's files within it.
        within = folder.resolve() if folder is not None else None
        files = [within / p.relative_to(folder) if within else p.resolve() for p in files]
        datasource = files_datasource([str(p) for p in files], documents, within, meta)
        # Reading and writing take no CPU slot: the predicting actors hold them all, and a
        # read task waiting for a free CPU would never start.
        source = ray.data.read_datasource(datasource, num_cpus=0)
        rows = predict_dataset(
            source,
            model,
            precision=precision,
            documents=documents,
            workers=workers,
            batch_size=batch_size,
            dropped=documents,
        )
        if documents:  # the side rows' folder, empty when nothing is dropped
            (part / DROPPED).mkdir()
        sink = rows_sink(str(part), parquet, dropped=documents)
        try:
            rows.write_datasink(sink, ray_remote_args={"num_cpus": 0})
        except Exception as exc:  # a user error raised in a worker: its own one-line message
            cause = getattr(exc, "cause", None)
            if isinstance(cause, StancelabError):
                raise cause from None
            raise
        written = len([p for p in part.iterdir() if p.is_file() and not p.name.startswith(".")])
        seconds = time.perf_counter() - started
        return ClusterSummary(
            records=sink.rows,
            rows=sink.rows,
            errors=sink.errors,
            **sink.flagged,
            dropped=sink.reasons,
            no_sentence=sink.no_sentence,
            first_error=sink.first_error,
            error_messages=sink.error_messages,
            seconds=seconds,
            output=str(part),
            files=written,
            workers=workers,
        )
    finally:
        if started_here:
            ray.shutdown()
