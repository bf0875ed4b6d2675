"""The packaged MPNet encoder, the cached-layer recipe and group-held-out validation.

Real weights: the five installed all-mpnet-base-v2 packages, unpacked once per session into a
temporary STANCELAB_HOME; MiniLM for the cheap training checks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from conftest import TINY  # noqa: E402

from stancelab.errors import ModelLoadError  # noqa: E402
from stancelab.models.transformer.packaged import (  # noqa: E402
    MPNET_SHA256,
    PACKAGED,
    VERIFIED,
    check_sha256,
    split_parts,
    unpack,
)

pytestmark = pytest.mark.slow
MPNET = PACKAGED["all-mpnet-base-v2"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def state(home, monkeypatch):
    monkeypatch.setenv("STANCELAB_HOME", str(home))


@pytest.fixture(scope="module")
def mpnet_dir(home) -> Path:
    return unpack(MPNET, split_parts(MPNET), home / "encoders")


def test_unpacked_weights_carry_the_pinned_hash(mpnet_dir: Path) -> None:
    assert (mpnet_dir / VERIFIED).read_text().strip() == MPNET_SHA256
    check_sha256(mpnet_dir / "model.safetensors", MPNET_SHA256)  # no error
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= {
        p.name for p in mpnet_dir.iterdir()
    }
    assert not list(mpnet_dir.rglob("desktop.ini"))
    # The folder's mode follows the umask like any other (mkdtemp's 0700 would lock out
    # the other users of a shared STANCELAB_HOME).
    from stancelab.files import current_umask

    assert mpnet_dir.stat().st_mode & 0o777 == 0o777 & ~current_umask()
    # A second call finds the verified folder and does not unpack again.
    mtime = (mpnet_dir / "model.safetensors").stat().st_mtime_ns
    assert unpack(MPNET, split_parts(MPNET), mpnet_dir.parent) == mpnet_dir
    assert (mpnet_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_checksum_check_fails_on_a_flipped_byte(mpnet_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model.safetensors"
    data = bytearray((mpnet_dir / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(data)
    with pytest.raises(ModelLoadError, match="does not match the pinned"):
        check_sha256(copy, MPNET_SHA256)


def test_a_wrong_pinned_hash_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    from dataclasses import replace

    wrong = replace(MPNET, sha256="0" * 64)
    with pytest.raises(ModelLoadError, match="does not match the pinned"):
        unpack(wrong, split_parts(MPNET), tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_an_interrupted_unpack_is_recovered(tmp_path: Path) -> None:
    root = tmp_path / "encoders"
    code = (
        "from pathlib import Path; "
        "from stancelab.models.transformer.packaged import PACKAGED, split_parts, unpack; "
        f"s = PACKAGED['all-mpnet-base-v2']; unpack(s, split_parts(s), Path({str(root)!r}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    partial = None
    while time.monotonic() < deadline and proc.poll() is None:
        partial = next(root.glob(".*.tmp-*/model.safetensors"), None) if root.exists() else None
        if partial is not None and partial.stat().st_size > 1 << 20:
            break
        time.sleep(0.02)
    assert partial is not None and proc.poll() is None, "the unpack ended before it was killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    final = root / f"{MPNET.folder}-{MPNET.sha256[:12]}"
    assert not final.exists()  # nothing looks complete
    assert unpack(MPNET, split_parts(MPNET), root) == final
    assert (final / VERIFIED).read_text().strip() == MPNET_SHA256
    assert not list(root.glob(".*.tmp-*"))  # the stale temporary folder was cleaned


def test_unpacked_weights_damaged_later_are_refused_not_used(
    mpnet_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    from stancelab.models.transformer.network import load_pretrained
    from stancelab.models.transformer.packaged import packaged_path

    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / "home"))
    copy = tmp_path / "home" / "encoders" / mpnet_dir.name
    shutil.copytree(mpnet_dir, copy)
    assert packaged_path("all-mpnet-base-v2") == copy  # intact: used as it is
    weights = copy / "model.safetensors"
    with weights.open("r+b") as handle:  # one flipped bit, same size
        handle.seek(200_000_003)
        byte = handle.read(1)[0]
        handle.seek(200_000_003)
        handle.write(bytes([byte ^ 0x01]))
    changed = f"does not match the pinned.*changed after it was unpacked.*delete the folder {copy}"
    with pytest.raises(ModelLoadError, match=changed):
        packaged_path("all-mpnet-base-v2")
    # Damage the loader trips over: one line, naming what to delete, never a traceback.
    shutil.copy2(mpnet_dir / "model.safetensors", weights)
    (copy / "config.json").unlink()
    with pytest.raises(
        ModelLoadError, match=f"cannot load the transformer.*delete the folder {copy}"
    ):
        load_pretrained("packaged:all-mpnet-base-v2")
    local = tmp_path / "local"
    shutil.copytree(mpnet_dir, local)
    with (local / "model.safetensors").open("r+b") as handle:
        handle.truncate(300_000_000)
    with pytest.raises(ModelLoadError, match="cannot load the transformer"):
        load_pretrained(str(local))


@pytest.mark.parametrize("encoder_name", ["mpnet", "minilm"])
def test_cached_layers_give_the_logits_of_an_uncached_forward(
    mpnet_dir: Path, encoder_name: str
) -> None:
    from stancelab.models.transformer import network as encoder
    from stancelab.models.transformer.layers import LayerCache, cached_states

    spec = str(mpnet_dir) if encoder_name == "mpnet" else "packaged:all-MiniLM-L6-v2"
    tokenizer, backbone = encoder.load_pretrained(spec)
    k = len(backbone.encoder.layer) - 2
    net = encoder.EncoderClassifier(backbone, 4).eval()
    texts = [t for t, _ in TINY[:12]] + ["Talks resumed.", "We will strike back " * 10]
    ids = encoder.tokenize(tokenizer, texts, 64)
    full = encoder.infer(net, ids, tokenizer.pad_token_id, batch_size=5)
    states = cached_states(backbone, ids, tokenizer.pad_token_id, k, 64, False)
    part = encoder.infer(
        net, ids, tokenizer.pad_token_id, states=states, from_layer=k, batch_size=5
    )
    np.testing.assert_allclose(part, full, atol=1e-4)
    # A new process's view: the states come back from disk, identical.
    LayerCache._open.clear()
    again = cached_states(backbone, ids, tokenizer.pad_token_id, k, 64, False)
    assert all((a == b).all() for a, b in zip(again, states, strict=True))


def test_a_damaged_unwritable_or_abandoned_layer_cache_never_changes_the_states(
    tmp_path: Path,
) -> None:
    import warnings

    from stancelab.files import STALE_SECONDS
    from stancelab.models.transformer import network as encoder
    from stancelab.models.transformer.layers import LayerCache

    tokenizer, backbone = encoder.load_pretrained("packaged:all-MiniLM-L6-v2")
    rows = encoder.tokenize(tokenizer, [t for t, _ in TINY[:8]], 32)
    pad_id, k = tokenizer.pad_token_id, 3

    def states(root: Path) -> list:
        LayerCache._open.clear()  # a new process's view
        return LayerCache.for_model("w", 32, k, root=root).states(backbone, rows, pad_id, k)

    fresh = states(tmp_path / "a")
    folder = next((tmp_path / "a").iterdir())
    (shard,) = folder.glob("shard-*.safetensors")
    # Bits flipped in the stored floats (past the header): the shard still parses.
    data = bytearray(shard.read_bytes())
    for at in (len(data) // 2, len(data) // 2 + 4001, len(data) - 9):
        data[at] ^= 0x01
    shard.write_bytes(data)
    old = folder / ".shard-0.safetensors.x.tmp"  # left by a killed write, long ago
    new = folder / ".shard-1.safetensors.y.tmp"  # another process writing right now
    for debris in (old, new):
        debris.write_bytes(b"partial")
    os.utime(old, (time.time() - STALE_SECONDS - 60,) * 2)
    again = states(tmp_path / "a")
    assert all((a == b).all() for a, b in zip(again, fresh, strict=True))
    assert not shard.exists() and len(list(folder.glob("shard-*.safetensors"))) == 1
    assert not old.exists() and new.exists()
    # A damaged header that keeps the byte count (float32 read as int32): still refused.
    (shard,) = folder.glob("shard-*.safetensors")
    data = shard.read_bytes()
    assert data.count(b'"dtype":"F32"') == 1
    shard.write_bytes(data.replace(b'"dtype":"F32"', b'"dtype":"I32"'))
    again = states(tmp_path / "a")
    assert all(a.dtype == b.dtype and (a == b).all() for a, b in zip(again, fresh, strict=True))
    assert not shard.exists()
    # A cache that cannot be written: a warning, and the same states from memory.
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unwritten = states(blocked)
    assert any("cannot write the layer cache" in str(w.message) for w in caught)
    assert all((a == b).all() for a, b in zip(unwritten, fresh, strict=True))


def test_group_held_out_validation_never_puts_a_group_on_both_sides() -> None:
    from stancelab.data.labelled import label_matrix, load_augmentation, load_labelled
    from stancelab.models.transformer.model import holdout_split

    gold = load_labelled("labels/gold.jsonl")
    aug = load_augmentation("labels/augment")
    data = gold.concat(aug)
    groups = data.groups
    assert all(groups) and len(set(groups)) > 50
    for seed in range(5):
        train, val, grouped = holdout_split(label_matrix(data.labels), 0.15, seed, groups)
        assert grouped
        assert len(train) + len(val) == len(data) and not set(train) & set(val)
        assert not {groups[i] for i in train} & {groups[i] for i in val}
        assert 0.08 < len(val) / len(data) < 0.25
        assert (data.y[val].sum(axis=0) > 0).all()


def test_when_no_group_fold_holds_every_label_rows_are_held_out_and_said_so(
    tmp_path: Path,
) -> None:
    from stancelab.config import TransformerParams
    from stancelab.data.labelled import label_matrix
    from stancelab.models.fit import oof_metrics
    from stancelab.models.transformer.model import TransformerModel, holdout_split

    texts, labels = [t for t, _ in TINY], [lab for _, lab in TINY]
    # Every sentence with a threat in one article: no fold of whole articles has a threat
    # on both sides.
    groups = ["a" if "threat" in lab else f"b{i % 4}" for i, lab in enumerate(labels)]
    train, val, grouped = holdout_split(label_matrix(labels), 0.15, 0, groups)
    assert not grouped and len(train) + len(val) == len(texts)
    params = TransformerParams(
        model="packaged:all-MiniLM-L6-v2", max_length=16, batch_size=8, epochs=1, progress=False
    )
    with pytest.warns(UserWarning, match="holding out random rows instead"):
        model = TransformerModel(params, seed=0).fit(texts, labels, groups)
    assert model.split_["held_out"] == "rows"
    # The model card and run.json say so beside the figures: rows of articles and dyads the
    # model trained on flatter them more than unseen sources would.
    assert "random rows, not whole articles or dyads" in model.oof_["source"]
    assert "random rows" in oof_metrics(model)["source"]
    grouped_groups = [f"g{i % 6}" for i in range(len(texts))]
    model = TransformerModel(params, seed=0).fit(texts, labels, grouped_groups)
    assert model.split_["held_out"] == "whole groups"
    assert "whole articles or dyads" in model.oof_["source"]
    assert "random rows" not in model.oof_["source"]


def test_cached_recipe_trains_saves_and_reloads(tmp_path: Path) -> None:
    from stancelab.config import TransformerParams
    from stancelab.models.registry import load_model
    from stancelab.models.transformer.model import TransformerModel

    params = TransformerParams(
        max_length=32, batch_size=8, epochs=1, cache_layers=4, progress=False
    )
    texts, labels = [t for t, _ in TINY], [lab for _, lab in TINY]
    groups = [f"g{i % 6}" for i in range(len(texts))]
    model = TransformerModel(params, seed=3).fit(texts, labels, groups)
    assert model.split_["held_out"] == "whole groups"
    saved = model.save(tmp_path / "run")
    np.testing.assert_allclose(
        load_model(saved).predict_proba(texts), model.predict_proba(texts), atol=1e-5
    )


def test_onnx_path_gives_pytorchs_labels_for_the_default_encoder(tmp_path: Path) -> None:
    from stancelab.config import load_config
    from stancelab.models.registry import load_model
    from stancelab.models.transformer.model import TransformerModel

    params = load_config("configs/transformer.yaml").params  # the shipped default
    params.epochs, params.progress = 1, False
    texts, labels = [t for t, _ in TINY], [lab for _, lab in TINY]
    model = TransformerModel(params, seed=5).fit(texts, labels, [f"g{i % 6}" for i in range(24)])
    saved = model.save(tmp_path / "mpnet")
    probe = texts + ["Nous allons riposter.", "The weather is nice today.", "A short one."]
    torch_model = load_model(saved).use_backend("torch")
    onnx_model = load_model(saved).use_backend("onnx", precision="fp32")
    np.testing.assert_allclose(
        onnx_model.predict_proba(probe), torch_model.predict_proba(probe), atol=1e-4
    )
    assert onnx_model.predict(probe) == torch_model.predict(probe)


def test_a_damaged_cache_shard_is_recomputed(tmp_path: Path) -> None:
    from stancelab.models.transformer import network as encoder
    from stancelab.models.transformer.layers import LayerCache, cached_states, frozen_digest

    tokenizer, backbone = encoder.load_pretrained("packaged:all-MiniLM-L6-v2")
    ids = encoder.tokenize(tokenizer, [t for t, _ in TINY[:4]], 32)
    first = cached_states(backbone, ids, tokenizer.pad_token_id, 3, 32, False)
    folder = LayerCache.for_model(frozen_digest(backbone, 3), 32, 3).folder
    (shard,) = folder.glob("shard-*.safetensors")
    shard.write_bytes(shard.read_bytes()[:100])  # truncated, as by a full disk
    LayerCache._open.clear()
    again = cached_states(backbone, ids, tokenizer.pad_token_id, 3, 32, False)
    assert all(torch_equal(a, b) for a, b in zip(again, first, strict=True))
    assert not shard.exists() and len(list(folder.glob("shard-*.safetensors"))) == 1


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def clear_encoders(home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stancelab.cli", "cache", "clear", "--encoders"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "STANCELAB_HOME": str(home)},
        timeout=120,
    )


def test_cache_clear_encoders_waits_for_no_unpack_and_the_next_use_unpacks_again(
    mpnet_dir: Path, home: Path, tmp_path: Path
) -> None:
    from filelock import FileLock

    from stancelab.models.transformer.packaged import packaged_path

    # An unpack under way holds this lock: the folder is left alone.
    with FileLock(str(mpnet_dir.with_name(f".{mpnet_dir.name}.lock"))):
        busy = clear_encoders(home, tmp_path)
    assert busy.returncode == 0, busy.stderr
    assert "kept: encoders" in busy.stdout and "another process is making it now" in busy.stdout
    assert (mpnet_dir / VERIFIED).exists()
    done = clear_encoders(home, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{mpnet_dir.name}" in done.stdout and "removed 1 item(s)" in done.stdout
    assert not mpnet_dir.exists()
    # The next use unpacks it again from the installed packages, checked against the pin.
    assert packaged_path("all-mpnet-base-v2") == mpnet_dir
    assert (mpnet_dir / VERIFIED).read_text().strip() == MPNET_SHA256


# Loads the packaged encoder, pausing once its tokenizer is read, before the config and the
# weights, until the file argv[2] exists (argv[1] says it got there).
LOAD_PAUSED = """
import sys, time
from pathlib import Path
import transformers
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
real = transformers.AutoModel.from_pretrained
def paused(*args, **kwargs):
    ready.write_text("ready")
    while not go.exists():
        time.sleep(0.02)
    return real(*args, **kwargs)
transformers.AutoModel.from_pretrained = paused
from stancelab.models.transformer.network import load_pretrained
tokenizer, backbone = load_pretrained("packaged:all-mpnet-base-v2")
print(backbone.config.hidden_size)
"""


def test_cache_clear_encoders_keeps_an_encoder_a_process_is_loading(
    mpnet_dir: Path, home: Path, tmp_path: Path
) -> None:
    # Removed between its tokenizer and its weights, the load failed ("cannot load the
    # transformer", with a remedy that did not apply).
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOAD_PAUSED, str(ready), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "STANCELAB_HOME": str(home)},
    )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), "the loader did not reach its weights"
        busy = clear_encoders(home, tmp_path)
    finally:
        go.touch()
        out, err = proc.communicate(timeout=300)
    assert busy.returncode == 0, busy.stderr
    assert "kept: encoders" in busy.stdout, err
    assert f"{mpnet_dir.name} (in use by another process)" in busy.stdout
    assert proc.returncode == 0, err
    assert out.strip() == "768"
    assert (mpnet_dir / VERIFIED).read_text().strip() == MPNET_SHA256


def test_repeated_corpus_sentences_stay_with_their_article_and_reach_every_fit(
    tiny_gold: Path, tmp_path: Path
) -> None:
    from collections import Counter

    import yaml

    from stancelab.config import load_config
    from stancelab.data.labelled import load_augmentation, load_labelled
    from stancelab.evaluation.crossval import fit_model
    from stancelab.models.fit import train_run
    from stancelab.models.transformer.model import holdout_split

    gold = load_labelled("labels/gold.jsonl", default_source="corpus")
    aug = load_augmentation("labels/augment")
    rows = gold.concat(aug).with_corpus_repeated(3)
    counts = Counter(rows.ids)
    assert len(rows) == 3 * len(gold) + len(aug)
    assert {counts[i] for i in gold.ids} == {3} and {counts[i] for i in aug.ids} == {1}
    for seed in range(5):  # a sentence's copies are never on both sides of the held-out cut
        train, val, grouped = holdout_split(rows.y, 0.15, seed, rows.groups)
        assert grouped and not {rows.ids[i] for i in train} & {rows.ids[i] for i in val}

    # Training runs and the harness's fits both train on the copies: the manifest's split
    # and the fitted model's count twice the sentences.
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": "transformer",
                "data": {"gold": str(tiny_gold), "augment": False, "corpus_repeat": 2},
                "params": {
                    "model": "packaged:all-MiniLM-L6-v2",
                    "max_length": 16,
                    "batch_size": 8,
                    "epochs": 1,
                    "progress": False,
                },
            }
        )
    )
    data = load_labelled(tiny_gold, default_source="corpus")
    # Three articles cannot make a held-out part holding every label, so rows are held
    # out: still never one sentence's copies on both sides.
    twice = data.with_corpus_repeated(2)
    train, val, grouped = holdout_split(twice.y, 0.15, 13, twice.groups, twice.texts)
    assert not grouped and len(train) + len(val) == len(twice)
    assert not {twice.texts[i] for i in train} & {twice.texts[i] for i in val}
    result = train_run(config, tmp_path / "run")
    assert sum(result.model.split_[k] for k in ("train", "validation")) == 2 * len(data)
    assert result.metrics and len(data) == len(TINY)  # run.json describes the sentences once
    # The held-out figures count each held-out sentence once, not each copy of it.
    assert result.model.split_["validation"] == 2 * result.metrics["sentences"]
    assert f"of {len(TINY)} sentences" in result.metrics["source"]
    assert result.model.calibration_report_["n"] == result.metrics["sentences"]
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert f"{len(TINY)} sentences" in card
    assert "Each corpus sentence joined training 2 times (`data.corpus_repeat`)." in card
    model = fit_model(load_config(config), data, 0)
    assert model.split_["train"] + model.split_["validation"] == 2 * len(data)


def test_corpus_repeat_is_checked_and_refused_for_the_baseline() -> None:
    from stancelab.config import config_from_dict
    from stancelab.errors import ConfigError

    for bad in (0, 21, 1.5, True):
        with pytest.raises(ConfigError, match="corpus_repeat: .*integer"):
            config_from_dict({"model": "transformer", "data": {"corpus_repeat": bad}})
    with pytest.raises(ConfigError, match="the baseline takes only 1"):
        config_from_dict({"model": "baseline", "data": {"corpus_repeat": 3}})


def test_copies_of_a_sentence_do_not_change_how_its_cached_states_are_computed(
    tmp_path: Path, monkeypatch
) -> None:
    """A cold cache filled from rows with appended copies (data.corpus_repeat) holds the
    same states, bit for bit, as one filled from the rows alone: the batches are the same."""
    from stancelab.data.labelled import load_augmentation, load_labelled
    from stancelab.models.transformer import network as encoder
    from stancelab.models.transformer.layers import LayerCache, cached_states

    gold = load_labelled("labels/gold.jsonl", default_source="corpus")
    both = gold.concat(load_augmentation("labels/augment"))  # as training.train reads them
    tokenizer, backbone = encoder.load_pretrained("packaged:all-MiniLM-L6-v2")
    states = []
    for name, data in (("alone", both), ("copies", both.with_corpus_repeated(3))):
        monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / name))
        LayerCache._open.clear()
        ids = encoder.tokenize(tokenizer, data.texts, 64)
        states.append(cached_states(backbone, ids, tokenizer.pad_token_id, 2, 64, False))
    LayerCache._open.clear()
    alone, copies = states
    assert all(torch_equal(a, b) for a, b in zip(alone, copies[: len(alone)], strict=True))
