"""The transformer's fast CPU inference path: ONNX Runtime on the exported network.

The fine-tuned network (encoder, mean pooling, head) is exported once to ONNX with dynamic
batch and sequence axes, cached outside the run directory under ``$STANCELAB_HOME/onnx/``
keyed by the SHA-256 of the model's weights and checked against its own recorded
SHA-256 before every use (a bad export is rebuilt), and run by ONNX Runtime with full graph
optimisation, one intra-op thread per core, length-sorted batches and dynamic padding.

Precisions (``benchmarks/predict_speed.py`` measures throughput and label agreement):

* ``fp32`` (predict's default): logits match PyTorch to about 1e-5, so the labels are the same.
* ``int8``: weights quantised dynamically (per channel). Faster, but a logit can move by
  about one unit, and labels differ from fp32, far more often for the mpnet default
  than for the small MiniLM model (the shares: README, "Measured figures"): opt-in, for
  triage, and not for the mpnet default.
  Activations get one scale per batch, so a row's score also depends on its batch-mates.
  ``benchmarks/predict_ceiling.py`` measures where the labels are lost.

A cached export needs neither torch nor transformers to run, which keeps predict's start-up
short.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stancelab.errors import ModelLoadError, first_line
from stancelab.files import (
    checksum_path,
    remove_path,
    remove_stale_temporaries,
    shared_lock,
    temporary_folder,
)
from stancelab.paths import state_dir, usable_cores

PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
PRECISION_ENV = "STANCELAB_PRECISION"
QUANT_TAG = "quant"  # the work folder of a quantisation: .<name>.quant-XXXX
BACKENDS = ("onnx", "torch")
BACKEND_ENV = "STANCELAB_BACKEND"
BATCH = 16  # rows per ONNX Runtime call: small batches pad less (README, "Prediction")
_LOCK = threading.Lock()
WAIT_NOTE_SECONDS = 3  # waiting longer for another process's export is said


def check_precision(precision: str, name: str = "precision") -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def default_precision() -> str:
    """``$STANCELAB_PRECISION`` when set, else ``DEFAULT_PRECISION``; a value that is not a
    precision is an error (as for an explicit one), not a reason to fall back to PyTorch."""
    value = os.environ.get(PRECISION_ENV, "").strip()
    return check_precision(value, f"${PRECISION_ENV}") if value else DEFAULT_PRECISION


def default_backend() -> str:
    """``$STANCELAB_BACKEND`` ("onnx" or "torch") when set, else "onnx"."""
    value = os.environ.get(BACKEND_ENV, "").strip() or "onnx"
    if value not in BACKENDS:
        raise ValueError(f"${BACKEND_ENV} must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def cache_dir() -> Path:
    return state_dir() / "onnx"


def export(net, path: Path) -> Path:
    """Export the network's logits to ONNX (atomically: temp file, then rename)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {
        "input_ids": {0: "batch", 1: "tokens"},
        "attention_mask": {0: "batch", 1: "tokens"},
        "logits": {0: "batch"},
    }
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape-dependent branches
            torch.onnx.export(
                Logits(net).cpu(),
                example,
                str(tmp),
                opset_version=17,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes=axes,
                dynamo=False,
            )
        os.replace(tmp, path)
        seal(path)
    finally:
        net.train(was_training)
        tmp.unlink(missing_ok=True)
    return path


def quantize(source: Path, target: Path) -> Path:
    """Quantise the fp32 export ``source`` into ``target`` (int8 weights), atomically.

    ONNX Runtime writes two full-size copies of the model while it works: a shape-inferred
    one beside its input and another in a folder of its own under the temporary directory.
    It runs in a child process whose input is linked into one work folder beside ``target``
    and whose ``TMPDIR`` is that folder, so both copies land there, and no other thread of
    this process sees its temporary directory change. The folder is removed at the end;
    a quantisation killed with ``kill -9`` leaves only that folder, which ``runner_for``
    removes once stale. ONNX Runtime's own messages are shown only if it fails.
    """
    import subprocess
    import sys

    work = temporary_folder(target, QUANT_TAG)
    try:
        link = work / source.name
        _link_or_copy(source.resolve(), link)
        tmp = work / target.name
        ran = subprocess.run(
            [sys.executable, "-c", _QUANTIZE, str(link), str(tmp)],
            env={**os.environ, "TMPDIR": str(work)},
            capture_output=True,
            text=True,
        )
        if ran.returncode != 0 or not tmp.is_file():
            said = [line for line in ran.stderr.splitlines() if line.strip()]
            why = said[-1] if said else f"exit status {ran.returncode}"
            raise ModelLoadError(f"{target}: int8 quantisation failed ({why})")
        os.replace(tmp, target)
        seal(target)
    finally:
        remove_path(work)
    return target


_QUANTIZE = """
import sys
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8, per_channel=True)
"""


def _link_or_copy(source: Path, link: Path) -> None:
    """``link`` names ``source``: a symbolic link, else a hard link, else a copy (a file
    system without links)."""
    import shutil

    try:
        link.symlink_to(source)
    except OSError:
        try:
            os.link(source, link)
        except OSError:
            shutil.copyfile(source, link)


class OnnxRunner:
    """An ONNX Runtime session over the exported network."""

    def __init__(self, path: Path, threads: int | None = None, precision: str = "fp32") -> None:
        import onnxruntime as ort

        self.precision = precision

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or _cores()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own error types for a bad file
            raise ModelLoadError(f"{path}: cannot load the ONNX model ({exc})") from None

    def logits(
        self, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = BATCH
    ) -> np.ndarray:
        """Logits in input order; batches of similar length, padded to their longest row."""
        out = np.zeros((len(ids), 0), dtype=np.float64)
        order = np.argsort([len(s) for s in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            result = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            if out.shape[1] == 0:
                out = np.zeros((len(ids), result.shape[1]), dtype=np.float64)
            out[rows] = result
        return out


def seal(path: Path) -> None:
    """Record the export's own SHA-256 beside it (``sha256sum`` format, written atomically)."""
    from stancelab.files import atomic_open, sha256_file

    with atomic_open(checksum_path(path)) as handle:
        handle.write(f"{sha256_file(path)}  {path.name}\n")


def verified(path: Path) -> bool:
    """True when the cached file exists and matches the checksum recorded when it was made."""
    from stancelab.files import sha256_file

    side = checksum_path(path)
    if not (path.is_file() and side.is_file()):
        return False
    try:
        expected = side.read_text(encoding="utf-8").split()[:1]
    except (OSError, UnicodeDecodeError):
        return False
    return expected == [sha256_file(path)]


def runner_for(network: Callable[[], Any], weights_key: str, precision: str = "fp32"):
    """The cached ONNX export of the network (made on first use), loaded in ONNX Runtime.

    The cache is keyed by the run's weight checksums (``weights_key``), and every cached
    file is checked against its own checksum before use: a truncated, edited or unsealed
    export is rebuilt from the network, with a warning, never trusted. ``network()`` gives
    the torch network; it is called only when the export must be (re)built, so a cached
    model predicts without importing torch. Processes sharing the cache make an export once
    (a file lock); temporary files of exports that were killed are removed once stale.
    From the check to the loaded session the export's reader lock is held, so ``stancelab
    cache clear`` does not remove it in between (it would be rebuilt, minutes for mpnet,
    under a warning that it would not load); the session keeps no hold on the file.
    """
    check_precision(precision)
    base = cache_dir() / f"{weights_key}.onnx"
    path = base if precision == "fp32" else base.with_name(f"{weights_key}.int8.onnx")
    remove_stale_temporaries(base.parent)  # left by exports that were killed
    remove_stale_temporaries(base.parent, f".*.{QUANT_TAG}-*")  # and by quantisations
    with contextlib.suppress(OSError):  # unwritable: shared_lock runs unguarded
        base.parent.mkdir(parents=True, exist_ok=True)
    with shared_lock(export_reader_lock_path(base)):
        if not verified(path):
            _make(network, base, path)
        made = _identity(path)
        try:
            return OnnxRunner(path, precision=precision)
        except ModelLoadError as exc:
            # A sealed export that this ONNX Runtime cannot load: made by another version
            # that shares the cache, say. Rebuilt once; if the new one fails too, the error
            # stands.
            warnings.warn(f"{first_line(exc)}; rebuilding it", stacklevel=3)
            _make(network, base, path, stale=made)
            return OnnxRunner(path, precision=precision)


def _make(network: Callable[[], Any], base: Path, path: Path, stale=None) -> None:
    """Export (and for int8, quantise) into ``path`` unless it is verified, or, when
    ``stale`` is the identity of a file that would not load, unless it has been replaced
    since. One process makes the export (435 MB for the default); another that needs it
    meanwhile waits, then uses it, rather than write and rename in a second copy."""
    base.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, _export_lock(base):
        current = _identity(path)
        if verified(path) and (stale is None or current != stale):
            return  # made (or remade) by another process while this one waited
        if path == base or not verified(base):
            if stale is None:
                _note_rebuild(base)
            export(network(), base)
        if path != base:
            if stale is None:
                _note_rebuild(path)
            quantize(base, path)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def export_lock_path(base: Path) -> Path:
    """The lock file an export (``<key>.onnx``) and its int8 copy are made under."""
    return base.with_name(f".{base.stem}.lock")


def export_reader_lock_path(base: Path) -> Path:
    """The lock file processes loading an export (or its int8 copy) hold shared, and
    ``stancelab cache clear`` takes exclusively before removing it."""
    return base.with_name(f".{base.stem}.readers.lock")


@contextlib.contextmanager
def _export_lock(base: Path) -> Iterator[None]:
    """Hold the lock on one export; say so when another process holds it for a while (one
    that was stopped, with Ctrl-Z say, would otherwise make this one wait in silence)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(export_lock_path(base)))
    try:
        lock.acquire(timeout=WAIT_NOTE_SECONDS)
    except Timeout:
        warnings.warn(
            f"waiting for another process to finish the ONNX export {base} (it holds "
            f"{lock.lock_file})",
            stacklevel=4,
        )
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _note_rebuild(path: Path) -> None:
    if path.exists():
        warnings.warn(
            f"{path}: the cached ONNX export does not match its checksum; rebuilding it",
            stacklevel=3,
        )


def _cores() -> int:
    if "OMP_NUM_THREADS" in os.environ:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return usable_cores()
