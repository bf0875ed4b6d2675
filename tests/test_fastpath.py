"""The transformer's fast inference path (ONNX Runtime) and predict on a real transformer.

Real packaged weights, a tiny one-epoch fit; the ONNX export is cached in a temporary
STANCELAB_HOME. Throughput is measured by benchmarks/predict_speed.py, never here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402

from stancelab.config import TransformerParams  # noqa: E402
from stancelab.inference import predict, predict_document, resolve_model  # noqa: E402
from stancelab.model import load_model  # noqa: E402
from stancelab.transformer import TransformerModel  # noqa: E402

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
    model = load_model(saved)
    torch_proba = model.predict_proba(texts)
    model.use_backend("onnx")
    assert model.runner_ is not None
    np.testing.assert_allclose(model.predict_proba(texts), torch_proba, atol=1e-4)
    assert model.predict(texts) == load_model(saved).predict(texts)
    model.use_backend("torch")
    np.testing.assert_array_equal(model.predict_proba(texts), torch_proba)
    with pytest.raises(ValueError, match="backend"):
        model.use_backend("tensorrt")


def test_int8_backend_runs(saved):
    model = load_model(saved).use_backend("onnx", precision="int8")
    proba = model.predict_proba(["We will strike back.", "Talks resumed."])
    assert proba.shape == (2, 4) and np.all((proba >= 0) & (proba <= 1))


def test_predict_uses_the_fast_path_and_warns_on_truncation(saved):
    model = resolve_model(saved)
    assert model.runner_ is not None  # predict's default engine for the transformer
    long_text = "The army said it would respond to any attack on the border. " * 20
    with pytest.warns(UserWarning, match="truncated"):
        result = predict(long_text, model=saved)
    assert set(result.scores) == {"threat", "conditional_deescalation", "accusation", "denial"}
    sentences = predict_document("We will strike. Talks resumed on Monday.", model=saved)
    assert [s.text for s in sentences] == ["We will strike.", "Talks resumed on Monday."]


def test_torch_backend_can_be_forced(saved, monkeypatch):
    from stancelab import inference

    monkeypatch.setenv("STANCELAB_BACKEND", "torch")
    monkeypatch.setattr(inference, "_LOADED", {})
    assert getattr(resolve_model(saved), "runner_", None) is None
