"""The transformer's fast inference path (ONNX Runtime) and predict on a real transformer.

Real packaged weights, a tiny one-epoch fit; the ONNX export is cached in a temporary
STANCELAB_HOME. Throughput is measured by benchmarks/predict_speed.py, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402
from reliability_common import (  # noqa: E402
    BAD_CALIBRATIONS,
    edit_calibration,
    predict_interrupted_at_chunk,
)

from stancelab.config import TransformerParams  # noqa: E402
from stancelab.errors import TruncationWarning  # noqa: E402
from stancelab.models.registry import load_model  # noqa: E402
from stancelab.models.transformer.model import TransformerModel  # noqa: E402
from stancelab.prediction.api import predict, predict_document, resolve_model  # noqa: E402
from stancelab.prediction.stream import predict_file  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    params = TransformerParams(max_length=32, batch_size=8, epochs=1, progress=False)
    model = TransformerModel(params, seed=3).fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("fast") / "transformer")


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path_factory.getbasetemp() / "home"))


def test_onnx_backend_matches_torch(saved):
    texts = [t for t, _ in TINY] + ["Nous allons riposter.", "A short one."]
    model = load_model(saved).use_backend("torch")
    torch_proba = model.predict_proba(texts)
    model.use_backend("onnx")
    assert model.runner_ is not None
    np.testing.assert_allclose(model.predict_proba(texts), torch_proba, atol=1e-4)
    assert model.predict(texts) == load_model(saved).use_backend("torch").predict(texts)
    model.use_backend("torch")
    np.testing.assert_array_equal(model.predict_proba(texts), torch_proba)
    with pytest.raises(ValueError, match="backend"):
        model.use_backend("tensorrt")


def test_int8_backend_runs_and_differs_from_fp32(saved, monkeypatch):
    texts = ["We will strike back.", "Talks resumed."]
    model = load_model(saved).use_backend("onnx", precision="int8")
    proba = model.predict_proba(texts)
    assert proba.shape == (2, 4) and np.all((proba >= 0) & (proba <= 1))
    exact = load_model(saved).use_backend("onnx", precision="fp32").predict_proba(texts)
    assert not np.array_equal(proba, exact)  # really the quantised network
    monkeypatch.setenv("STANCELAB_PRECISION", "int8")  # the default follows the environment
    np.testing.assert_array_equal(load_model(saved).use_backend("onnx").predict_proba(texts), proba)
    with pytest.raises(ValueError, match="precision must be one of"):
        load_model(saved).use_backend("onnx", precision="fp16")


def test_predict_uses_the_fast_path_and_flags_truncation(saved, tmp_path):
    model = resolve_model(saved)
    assert model.runner_ is not None  # predict's default engine for the transformer
    long_text = "The army said it would respond to any attack on the border. " * 20
    named = r"1 of 2 text\(s\) are longer than the model's limit of 32 tokens"
    named += r".*the first is text 1 \(\d+ tokens\): 'The army said"
    with pytest.warns(TruncationWarning, match=named):
        short, result = predict(["Talks resumed.", long_text], model=saved)
    assert set(result.scores) == {"threat", "conditional_deescalation", "accusation", "denial"}
    assert result.truncated and not short.truncated
    assert result.to_dict()["truncated"] is True and "truncated" not in short.to_dict()
    assert "truncated" in str(result) and "truncated" not in str(short)
    assert model.truncated(["Talks resumed.", long_text]) == [False, True]
    assert load_model(saved).use_backend("torch").truncated([long_text]) == [True]

    source = tmp_path / "in.jsonl"
    texts = ["We will strike.", long_text, "Talks resumed on Monday."]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = predict_file(model, source, tmp_path / "out.jsonl", progress=False)
    assert not [w for w in caught if issubclass(w.category, TruncationWarning)]  # counted
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r.get("truncated") for r in rows] == [None, True, None]
    assert summary.truncated == 1 and "1 truncated row(s)" in str(summary)
    sentences = predict_document("We will strike. Talks resumed on Monday.", model=saved)
    assert [s.text for s in sentences] == ["We will strike.", "Talks resumed on Monday."]


@pytest.mark.parametrize("edit,what", BAD_CALIBRATIONS[:3])
def test_a_transformer_with_bad_calibration_does_not_load(saved, tmp_path, edit, what):
    from stancelab.errors import ModelLoadError

    run = edit_calibration(saved, tmp_path / "run", edit)
    with pytest.raises(ModelLoadError, match=f"stancelab.json: bad entry .*{what}"):
        load_model(run)


def test_torch_backend_can_be_forced(saved, monkeypatch):
    from stancelab.prediction import api

    monkeypatch.setenv("STANCELAB_BACKEND", "torch")
    monkeypatch.setattr(api, "_LOADED", {})
    assert getattr(resolve_model(saved), "runner_", None) is None


def test_inference_tokenizer_matches_transformers(saved):
    model = load_model(saved)
    texts = [t for t, _ in TINY] + [
        "Nous allons riposter si l'on nous attaque.",
        "وزير الدفاع حذر من العواقب",
        "Kabul’s “proxies” — again!",
        "The army said it would respond to any attack on the border. " * 20,
    ]
    expected = model.tokenizer_(texts, truncation=False)["input_ids"]
    # The transformers call above leaves truncation set on its backend; ours must not see it.
    model.tokenizer_(texts, truncation=True, max_length=8)
    assert load_model(saved)._token_ids(texts) == expected
    assert model._token_ids(texts) == expected


def test_cached_model_predicts_without_torch_or_the_training_stack(saved):
    import json
    import subprocess
    import sys

    resolve_model(saved)  # makes the ONNX export in this test's STANCELAB_HOME
    heavy = ("torch", "transformers", "accelerate", "datasets", "label_studio_sdk", "matplotlib")
    code = (
        "import json, sys; from stancelab import predict; "
        f"r = predict('We will strike back.', model={str(saved)!r}); "
        f"print(json.dumps([r.to_dict(), [m for m in {heavy!r} if m in sys.modules]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr
    result, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == []
    assert result["scores"] == predict("We will strike back.", model=saved).to_dict()["scores"]


def cli_predict(saved, *args: str):
    """``stancelab predict --model SAVED ARGS`` in a fresh process."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "stancelab.cli", "predict", "--model", str(saved), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())


def test_cli_precision_option(saved):
    import json

    text = "We will strike back if they attack again."
    exact = cli_predict(saved, "--precision", "fp32", "--json", text)
    assert exact.returncode == 0, exact.stderr
    expected = predict(text, model=load_model(saved).use_backend("onnx", precision="fp32"))
    assert json.loads(exact.stdout)[0]["scores"] == expected.to_dict()["scores"]
    bad = cli_predict(saved, "--precision", "fp16", text)
    assert bad.returncode == 1 and "precision must be one of" in bad.stderr


def test_mistyped_precision_in_the_environment_fails_clearly(saved, monkeypatch):
    from stancelab.prediction import api

    monkeypatch.setattr(api, "_LOADED", {})
    monkeypatch.setenv("STANCELAB_PRECISION", "int-8")
    with pytest.raises(ValueError, match=r"\$STANCELAB_PRECISION must be one of fp32, int8"):
        resolve_model(saved)  # not a silent fall-back to PyTorch
    done = cli_predict(saved, "Talks resumed.")
    assert done.returncode == 1 and "$STANCELAB_PRECISION must be one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_resume_refuses_another_precision_and_continues_with_the_same(saved, tmp_path):
    """An output begun in fp32 is never finished in int8 (or PyTorch): the rows would mix
    two engines' scores under one model_version."""
    from stancelab.errors import InputError
    from stancelab.prediction import stream

    source = tmp_path / "many.txt"
    source.write_text("".join(f"{t} ({i})\n" for i in range(6) for t, _ in TINY), encoding="utf-8")
    reference = tmp_path / "reference.jsonl"
    fp32 = load_model(saved).use_backend("onnx", precision="fp32")
    stream.predict_file(fp32, source, reference, chunk_size=5, progress=False)
    out = tmp_path / "out.jsonl"
    with predict_interrupted_at_chunk(3), pytest.raises(KeyboardInterrupt):
        stream.predict_file(fp32, source, out, chunk_size=5, progress=False)
    part = out.with_name(out.name + ".part")
    written = part.read_bytes()
    for other in (
        load_model(saved).use_backend("onnx", precision="int8"),
        load_model(saved).use_backend("torch"),
    ):
        with pytest.raises(InputError, match=f"it used onnx-fp32, this run {other.engine}"):
            stream.predict_file(other, source, out, chunk_size=5, resume=True, progress=False)
        assert part.read_bytes() == written and not out.exists()
    stream.predict_file(fp32, source, out, chunk_size=5, resume=True, progress=False)
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("through", ["installed", "symbolic link"])
def test_the_cli_marks_a_truncated_text_and_warns_in_one_line(saved, tmp_path, through):
    import stancelab

    env = dict(os.environ)
    if through == "symbolic link":  # stancelab imported through a linked path
        (tmp_path / "link").symlink_to(Path(stancelab.__file__).resolve().parents[1])
        env["PYTHONPATH"] = str(tmp_path / "link")
    long_text = "The army said it would respond to any attack on the border. " * 5
    ran = subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "predict", "--model", str(saved)]
        + ["Talks resumed.", long_text],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    rows = ran.stdout.splitlines()[2:]
    assert rows[0].endswith("  Talks resumed.") and "(truncated) The army said" in rows[1]
    warned = [line for line in ran.stderr.splitlines() if "longer than the model" in line]
    assert warned == [ran.stderr.strip()]  # one line, without the library's source line
    assert warned[0].startswith("warning: 1 of 2 text(s) are longer than the model's limit")


def test_rows_quiet_the_truncation_warning_in_their_own_thread_only(saved):
    """predict_file's rows flag truncated texts and do not warn; threads that write rows
    leave the process's warning filters, and other callers' warnings, as they were."""
    import threading

    from stancelab.corpus.readers import Record
    from stancelab.prediction.rows import rows_for

    model = resolve_model(saved)
    long_text = "The army said it would respond to any attack on the border. " * 5
    records = [Record(1, None, "Talks resumed."), Record(2, None, long_text)]
    filters = list(warnings.filters)

    def write_rows() -> None:
        for _ in range(50):
            assert [r.get("truncated") for r in rows_for(model, records, False).rows] == [
                None,
                True,
            ]

    threads = [threading.Thread(target=write_rows) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters == filters
    with pytest.warns(TruncationWarning):
        model.predict([long_text])
