"""One predict path: ``load_model(run).predict`` and ``stancelab.predict(..., model=run)``.

Each entry point runs in a fresh process (warm caches: the transformer's ONNX export is
made first, in this test's STANCELAB_HOME) and reports its labels, its scores and which
heavy modules it imported. Both entry points must give the same labels and scores, and
neither may import torch, transformers, skops or the module holding scikit-learn's
estimator registry (``all_estimators``; in scikit-learn 1.x, ``import sklearn`` itself
loads that module, so predicting must not import scikit-learn at all). The baseline half is
fast; the transformer half trains a tiny model and is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stancelab.config import BaselineParams
from stancelab.models.baseline import BaselineModel
from stancelab.models.registry import load_model

TEXTS = [
    "We will strike their bases if they cross the border again.",
    "The ministry denied any involvement in the attack.",
    "Talks resumed in the capital on Monday.",
]
CHILD = """
import json, sys
import stancelab
entry, run, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if entry == "load_model":
    model = stancelab.load_model(run)
    labels = [list(p) for p in model.predict(texts)]
    scores = [[round(float(p), 6) for p in row] for row in model.predict_proba(texts)]
else:
    results = stancelab.predict(texts, model=run)
    labels = [list(r.labels) for r in results]
    scores = [list(r.scores.values()) for r in results]
watch = json.loads(sys.argv[4])
print(json.dumps({"labels": labels, "scores": scores,
                  "imported": [m for m in watch if m in sys.modules]}))
"""


def registry_module() -> str:
    """Where this scikit-learn keeps ``all_estimators`` (asked in this process, not the child)."""
    from sklearn.utils import all_estimators

    return all_estimators.__module__


def heavy_modules() -> list[str]:
    return ["torch", "transformers", "skops", "skops.io", "sklearn", registry_module()]


def fresh(entry: str, run: Path, env: dict | None = None) -> dict:
    cmd = [sys.executable, "-c", CHILD, entry, str(run), json.dumps(TEXTS)]
    cmd.append(json.dumps(heavy_modules()))
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_one_path(run: Path) -> None:
    via_load, via_predict = fresh("load_model", run), fresh("predict", run)
    assert via_load["imported"] == [] and via_predict["imported"] == []
    assert via_load["labels"] == via_predict["labels"]
    assert via_load["scores"] == via_predict["scores"]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    from conftest import TINY

    model = BaselineModel(BaselineParams(inner_folds=3), seed=1)
    model.fit([t for t, _ in TINY], [lab for _, lab in TINY])
    return model.save(tmp_path_factory.mktemp("run") / "baseline")


def test_registry_module_is_what_skops_imports():
    """The module checked for is the registry's own: importing skops.io loads it."""
    code = f"import sys, skops.io; print({registry_module()!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr


def test_baseline_one_fast_path(baseline_run):
    check_one_path(baseline_run)
    from stancelab.prediction.api import predict

    in_process = load_model(baseline_run)
    assert [r.labels for r in predict(TEXTS, model=baseline_run)] == in_process.predict(TEXTS)


# -- the transformer (a real tiny fine-tune: slow) ---------------------------------------------


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory) -> tuple[Path, dict]:
    from conftest import TINY

    from stancelab.config import TransformerParams
    from stancelab.models.transformer.model import TransformerModel

    params = TransformerParams(max_length=32, batch_size=8, epochs=1, progress=False)
    model = TransformerModel(params, seed=3).fit([t for t, _ in TINY], [lab for _, lab in TINY])
    run = model.save(tmp_path_factory.mktemp("onepath") / "transformer")
    env = {
        "STANCELAB_HOME": str(tmp_path_factory.mktemp("home")),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return run, env


@pytest.mark.slow
def test_transformer_one_fast_path(transformer_run, monkeypatch):
    run, env = transformer_run
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loaded = load_model(run)
    loaded.predict(TEXTS)  # makes the ONNX export: the caches are warm from here on
    assert loaded.runner_ is not None  # load_model's default is the ONNX route
    check_one_path(run)


@pytest.mark.slow
def test_transformer_torch_only_when_asked(transformer_run, monkeypatch):
    import numpy as np

    run, env = transformer_run
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("STANCELAB_BACKEND", "torch")
    model = load_model(run)
    torch_proba = model.predict_proba(TEXTS)
    assert model.runner_ is None and "net_" in model.__dict__
    child = fresh("load_model", run, {**env, "STANCELAB_BACKEND": "torch"})
    assert "torch" in child["imported"]
    monkeypatch.delenv("STANCELAB_BACKEND")
    onnx = load_model(run)
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), torch_proba, atol=1e-4)
    assert onnx.predict(TEXTS) == model.predict(TEXTS)
    assert "net_" not in onnx.__dict__  # the torch network was never read
    monkeypatch.setenv("STANCELAB_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match=r"\$STANCELAB_BACKEND must be one of onnx, torch"):
        load_model(run).predict(TEXTS)
