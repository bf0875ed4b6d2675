"""Issue #17, item 5: the cached ONNX export is verified before use and rebuilt when bad.

Real packaged weights, a tiny one-epoch fit, the cache in a temporary STANCELAB_HOME.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402

from stancelab.config import TransformerParams  # noqa: E402
from stancelab.errors import ModelLoadError  # noqa: E402
from stancelab.files import STALE_SECONDS  # noqa: E402
from stancelab.models.registry import load_model  # noqa: E402
from stancelab.models.transformer import onnx as fastpath  # noqa: E402
from stancelab.models.transformer.model import TransformerModel  # noqa: E402
from stancelab.prediction.api import fast  # noqa: E402

pytestmark = pytest.mark.slow
TEXTS = ["The weather is nice today.", "We will strike back.", "Talks resumed."]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    params = TransformerParams(max_length=32, batch_size=8, epochs=1, progress=False)
    model = TransformerModel(params, seed=3).fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("onnx") / "transformer")


@pytest.fixture
def cached(saved, tmp_path, monkeypatch) -> Path:
    """A fresh cache holding the run's fp32 export; returns the export's path."""
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / "home"))
    model = load_model(saved).use_backend("onnx", precision="fp32")
    (path,) = fastpath.cache_dir().glob("*.onnx")
    assert model.weights_key_ in path.name
    return path


def torch_labels(saved) -> list:
    return load_model(saved).use_backend("torch").predict(TEXTS)


def edit_head_bias(path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    (bias,) = [t for t in graph.graph.initializer if list(t.dims) == [4]]
    edited = numpy_helper.to_array(bias) + 100.0  # every label fires
    bias.CopyFrom(numpy_helper.from_array(edited.astype(np.float32), bias.name))
    onnx.save(graph, str(path))


def test_an_edited_export_is_rebuilt_not_trusted(saved, cached):
    edit_head_bias(cached)
    with pytest.warns(UserWarning, match="does not match its checksum; rebuilding"):
        model = fast(load_model(saved), "fp32")
    assert model.runner_ is not None
    assert model.predict(TEXTS) == torch_labels(saved)
    assert fastpath.verified(cached)


def test_a_truncated_export_is_rebuilt_instead_of_falling_back_to_torch(saved, cached):
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rebuild note, not a fallback
        model = load_model(saved).use_backend("onnx", precision="fp32")
    assert model.runner_ is not None
    assert model.predict(TEXTS) == torch_labels(saved)
    assert cached.read_bytes() != data[: len(data) // 2] and fastpath.verified(cached)
    # the next load trusts the rebuilt export: no second rebuild
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(saved).use_backend("onnx", precision="fp32")


def test_a_sealed_export_this_onnx_runtime_cannot_load_is_rebuilt(saved, cached):
    """As when a cache is shared with another ONNX Runtime version: the checksum matches,
    the file does not load. It is rebuilt once, not worked around with PyTorch forever."""
    cached.write_bytes(b"an export this ONNX Runtime cannot read")
    fastpath.seal(cached)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(saved).use_backend("onnx", precision="fp32")
    notes = [str(w.message) for w in caught]
    assert len(notes) == 1 and "cannot load the ONNX model" in notes[0], notes
    assert notes[0].endswith("; rebuilding it")
    assert model.runner_ is not None and model.predict(TEXTS) == torch_labels(saved)
    assert fastpath.verified(cached) and cached.stat().st_size > 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt export loads: no second rebuild
        load_model(saved).use_backend("onnx", precision="fp32")


def test_an_edited_int8_export_is_rebuilt(saved, cached, capfd):
    load_model(saved).use_backend("onnx", precision="int8")
    said = capfd.readouterr()
    assert "pre-processing" not in said.err + said.out  # ONNX Runtime's advice: not for users
    int8 = cached.with_name(cached.name.replace(".onnx", ".int8.onnx"))
    int8.write_bytes(int8.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="rebuilding"):
        model = load_model(saved).use_backend("onnx", precision="int8")
    assert model.predict_proba(TEXTS).shape == (3, 4) and fastpath.verified(int8)


# Put on the path of a child (as sitecustomize), this makes ONNX Runtime's quantisation
# worker kill its parent and itself with SIGKILL (no clean-up runs in either: as when both
# are killed with kill -9) right after its Nth shape inference. The first writes a full copy
# of the model beside its input, the second one in a folder of its own under TMPDIR. The
# worker is known by its TMPDIR (the work folder, not the child's): a quantisation run in the
# child's own process is left alone, and the test fails on its exit status.
DIE_AFTER_SHAPE_INFERENCE = """
import os, signal
import onnx.shape_inference as si

_real, _calls = si.infer_shapes_path, []
def _infer_then_die(*args, **kwargs):
    _real(*args, **kwargs)
    _calls.append(1)
    if len(_calls) == int(os.environ["DIE_AT"]) and os.environ["TMPDIR"] != os.environ["SCRATCH"]:
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(9)
si.infer_shapes_path = _infer_then_die
"""
QUANTIZE = """
import sys
from pathlib import Path
from stancelab.models.transformer import onnx as fastpath
fastpath.quantize(Path(sys.argv[1]), Path(sys.argv[2]))
"""


@pytest.mark.parametrize("die_at", [1, 2])
def test_a_killed_quantisation_leaves_nothing_for_good(saved, cached, tmp_path, die_at):
    from reliability_common import env

    before = set(cached.parent.iterdir())
    int8 = cached.with_name(cached.name.replace(".onnx", ".int8.onnx"))
    scratch, hook = tmp_path / "tmpdir", tmp_path / "hook"
    scratch.mkdir()
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DIE_AFTER_SHAPE_INFERENCE)
    path = os.pathsep.join(filter(None, [str(hook), env().get("PYTHONPATH")]))
    child = subprocess.run(
        [sys.executable, "-c", QUANTIZE, str(cached), str(int8)],
        env={**env(), "TMPDIR": str(scratch), "SCRATCH": str(scratch), "PYTHONPATH": path}
        | {"DIE_AT": str(die_at)},
        capture_output=True,
        text=True,
    )
    assert child.returncode == -9, child.stderr
    assert not list(scratch.iterdir())  # nothing under the user's TMPDIR
    (debris,) = set(cached.parent.iterdir()) - before  # one work folder, nothing beside it
    assert debris.name.startswith(f".{int8.name}.{fastpath.QUANT_TAG}-") and debris.is_dir()
    assert sum(f.stat().st_size for f in debris.rglob("*")) > cached.stat().st_size / 2

    load_model(saved).use_backend("onnx", precision="int8")
    assert debris.exists()  # young: it may belong to a quantisation still under way
    old = time.time() - 2 * STALE_SECONDS
    os.utime(debris, (old, old))
    load_model(saved).use_backend("onnx", precision="int8")
    assert not debris.exists() and fastpath.verified(int8)
    assert sorted(p.name for p in cached.parent.glob("*.onnx")) == sorted([cached.name, int8.name])


def test_quantisation_leaves_the_temporary_files_of_other_threads_alone(saved, cached):
    """The process's temporary directory never moves while int8 is made (it once pointed
    into the work folder, which is removed at the end, with other threads' files in it)."""
    import tempfile
    import threading

    made, stop = [], threading.Event()

    def keep_making_temporary_files() -> None:
        while not stop.is_set():
            with tempfile.NamedTemporaryFile(delete=False) as handle:
                made.append(Path(handle.name))
            time.sleep(0.002)

    worker = threading.Thread(target=keep_making_temporary_files)
    worker.start()
    try:
        model = load_model(saved).use_backend("onnx", precision="int8")
    finally:
        stop.set()
        worker.join()
    try:
        assert model.predict_proba(TEXTS).shape == (3, 4)
        assert made and all(f.exists() for f in made)
        assert all(f.parent == Path(tempfile.gettempdir()) for f in made)
    finally:
        for f in made:
            f.unlink(missing_ok=True)


def test_a_failed_quantisation_says_why_and_leaves_no_work_folder(saved, cached, monkeypatch):
    """ONNX Runtime's own words, in one line, and PyTorch for this run."""
    monkeypatch.setattr(fastpath, "_QUANTIZE", "import no_such_module_here")  # it fails
    int8 = cached.with_name(cached.name.replace(".onnx", ".int8.onnx"))
    with pytest.raises(ModelLoadError, match="int8 quantisation failed .*no_such_module_here"):
        load_model(saved).use_backend("onnx", precision="int8")
    assert not int8.exists() and not list(cached.parent.glob(f".*{fastpath.QUANT_TAG}-*"))


def test_predict_of_an_empty_list_is_an_empty_list(saved, cached):
    from stancelab.prediction.api import predict

    assert predict([], model=load_model(saved)) == []
    assert predict([], model=fast(load_model(saved), "fp32")) == []


WAITER = """
import os, sys
from pathlib import Path
from stancelab.models.registry import load_model
from stancelab.models.transformer import onnx

model = load_model(sys.argv[1])
Path(sys.argv[2]).touch()  # about to ask for the export
model.use_backend("onnx", precision="fp32")
print((onnx.cache_dir() / f"{model.weights_key_}.onnx").stat().st_ino)
print(model.predict(TEXTS))
"""


def test_a_second_process_waits_for_the_export_under_way_and_uses_it(saved, tmp_path):
    """Two processes that need one export make it once: while one exports (here, this test,
    holding the export's lock), another waits and then uses that export, never making and
    renaming in a second copy (a 435 MB write for the default)."""
    import subprocess
    import sys
    import time

    from filelock import FileLock

    home = tmp_path / "home"
    env = dict(os.environ, STANCELAB_HOME=str(home))
    model = load_model(saved)
    base = home / "onnx" / f"{model.weights_key_}.onnx"
    base.parent.mkdir(parents=True)
    asking, stderr = tmp_path / "asking", tmp_path / "stderr.txt"
    with FileLock(str(base.with_name(f".{model.weights_key_}.lock"))), stderr.open("w") as err:
        waiter = subprocess.Popen(
            [sys.executable, "-c", WAITER.replace("TEXTS", repr(TEXTS)), str(saved), str(asking)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not asking.exists() and waiter.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert asking.exists(), stderr.read_text()
        # it waits, and says so after WAIT_NOTE_SECONDS (a silent wait looks like a hang);
        # once it has said so, it is surely blocked on the lock, before its own export
        while "waiting for another process" not in stderr.read_text() and time.monotonic() < (
            deadline
        ):
            assert waiter.poll() is None, stderr.read_text()
            time.sleep(0.1)
        assert f"finish the ONNX export {base}" in stderr.read_text()
        fastpath.export(model.net_, base)  # the export under way while the other waits
        ours = base.stat().st_ino
        assert waiter.poll() is None  # still waiting for the lock
    out = waiter.communicate(timeout=300)[0]
    assert waiter.returncode == 0, stderr.read_text()
    inode, labels = out.splitlines()
    assert int(inode) == ours == base.stat().st_ino  # it used ours, and wrote none of its own
    assert labels == repr(torch_labels(saved))
    assert [p.name for p in base.parent.glob("*.onnx")] == [base.name]


def test_temporary_files_of_killed_exports_are_removed_once_stale(saved, cached):
    from stancelab.files import STALE_SECONDS

    old = cached.with_name(f".{cached.name}.4242.tmp")  # left by an export killed with -9
    young = cached.with_name(f".{cached.name}.4343.tmp")  # perhaps an export under way
    for path in (old, young):
        path.write_bytes(b"\0" * 1000)
    os.utime(old, (old.stat().st_mtime - STALE_SECONDS - 60,) * 2)
    load_model(saved).use_backend("onnx", precision="fp32")  # the export is cached already
    assert not old.exists() and young.exists()


def test_the_onnx_cache_follows_stancelab_home_with_a_tilde(monkeypatch):
    monkeypatch.setenv("STANCELAB_HOME", "~/stancelab-state")
    assert fastpath.cache_dir() == Path.home() / "stancelab-state" / "onnx"


def test_an_unusable_onnx_cache_falls_back_to_torch_naming_the_cache(saved, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "onnx").write_text("not a folder")  # as a full or read-only disk would, it fails
    monkeypatch.setenv("STANCELAB_HOME", str(home))
    with pytest.warns(UserWarning, match=f"using PyTorch .*cached in {home / 'onnx'}"):
        model = fast(load_model(saved), "fp32")
    assert model.runner_ is None and model.engine == "torch"
    assert model.predict(TEXTS) == torch_labels(saved)
