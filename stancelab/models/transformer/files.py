"""A transformer run directory: writing it, checking it and reading it back.

The directory holds the encoder (``model.safetensors``, ``config.json`` with
``id2label``/``label2id`` and ``problem_type: multi_label_classification``), the tokenizer,
the head (``head.safetensors``) and ``stancelab.json`` with thresholds, calibration, pooling,
parameters and the SHA-256 of every file. Loading checks every checksum and the weights'
headers (no torch), and reads the torch network only when ``load_network`` is called.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from stancelab.config import TransformerParams
from stancelab.errors import ConfigError, ModelLoadError, first_line
from stancelab.files import sha256_file, write_json
from stancelab.labels import LABELS
from stancelab.models.base import MANIFEST, check_checksum, is_main_process, read_manifest
from stancelab.models.calibration import PlattCalibrator

HEAD_FILE = "head.safetensors"
REQUIRED_FILES = ("config.json", "model.safetensors", HEAD_FILE)


def save(model, directory: str | Path) -> Path:
    """Write a fitted model's run directory (see ``stancelab.models.transformer.model``)."""
    from stancelab.models.transformer.network import quiet_transformers

    directory = Path(directory)
    if not is_main_process():  # several GPUs: every process holds the same weights
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    backbone = model.net_.backbone
    backbone.config.id2label = dict(enumerate(LABELS))
    backbone.config.label2id = {name: i for i, name in enumerate(LABELS)}
    backbone.config.problem_type = "multi_label_classification"
    # Write into a sibling temp folder, then move file by file; the manifest goes last,
    # so an interrupted save fails its checksums on load instead of mixing two models.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".saving-") as tmp:
        from safetensors.torch import save_file

        with quiet_transformers():
            backbone.save_pretrained(tmp)
            model.tokenizer_.save_pretrained(tmp)
        head = model.net_.head
        save_file(
            {
                "weight": head.weight.detach().cpu().contiguous(),
                "bias": head.bias.detach().cpu().contiguous(),
            },
            os.path.join(tmp, HEAD_FILE),
            metadata={"labels": ",".join(LABELS)},
        )
        files = {f.name: sha256_file(f) for f in sorted(Path(tmp).iterdir()) if f.is_file()}
        for name in files:
            os.replace(os.path.join(tmp, name), directory / name)
    model.version_ = f"transformer-{model.params.recipe}-{files['model.safetensors'][:10]}"
    model.weights_key_ = weights_key(files)
    write_json(
        directory / MANIFEST,
        model.manifest(
            version=model.version_,
            calibration=model.calibration_.to_dict(),
            calibration_report=getattr(model, "calibration_report_", None),
            architecture={
                "pooling": "mean",
                "normalize": bool(model.net_.normalize),
                "head": HEAD_FILE,
                "max_length": model.params.max_length,
            },
            params=asdict(model.params),
            seed=model.seed,
            history=getattr(model, "history_", []),
            split=getattr(model, "split_", {}),
            files=files,
        ),
    )
    return directory


def load(cls, directory: str | Path):
    """A model of class ``cls`` from a checked run directory; its network loads lazily."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    files = manifest.get("files")
    if not isinstance(files, dict) or not set(REQUIRED_FILES) <= set(files):
        raise ModelLoadError(f"{directory / MANIFEST}: the file list is missing or incomplete")
    tokenizer_files = sorted(set(files) - set(REQUIRED_FILES))
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            what = "the tokenizer file" if name in tokenizer_files else "the model file"
            raise ModelLoadError(
                f"{directory}: missing {what} {name}; the model directory is incomplete"
            )
        check_checksum(path, digest)
    try:
        params = TransformerParams(**manifest.get("params", {}))
        arch = manifest["architecture"]
        calibration = PlattCalibrator.from_dict(manifest["calibration"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelLoadError(f"{directory / MANIFEST}: bad entry ({exc})") from None
    model = cls(params, seed=int(manifest.get("seed", 13)))
    model.directory_, model.architecture_ = directory, arch
    model.pad_id_ = config_pad_id(directory)
    check_weights(directory)
    model.calibration_ = calibration
    model.thresholds_ = [float(t) for t in manifest["thresholds"]]
    model.text_form_ = manifest.get("text_form")
    model.version_ = manifest.get("version", "")
    model.weights_key_ = weights_key(files)
    model.history_ = manifest.get("history", [])
    model.calibration_report_ = manifest.get("calibration_report")
    return model


def weights_key(files: dict[str, str]) -> str:
    """The ONNX cache key of a run directory's weights (from the manifest's checksums)."""
    return files["model.safetensors"][:16] + files[HEAD_FILE][:16]


def check_weights(directory: Path) -> None:
    """Read the weight files' headers (no torch): a file that passes its checksum but is
    truncated or not safetensors at all fails here, at load, not at the first prediction."""
    from safetensors import SafetensorError, safe_open

    for name in ("model.safetensors", HEAD_FILE):
        try:
            with safe_open(str(directory / name), framework="numpy") as handle:
                if not list(handle.keys()):
                    raise SafetensorError("no tensors")
        except (OSError, SafetensorError) as exc:
            raise ModelLoadError(
                f"{directory}: cannot load the transformer ({name}: {first_line(exc)})"
            ) from None


def config_pad_id(directory: Path) -> int:
    """The encoder config's ``pad_token_id`` (0 when it names none: padding is masked)."""
    import json

    try:
        value = json.loads((directory / "config.json").read_text(encoding="utf-8")).get(
            "pad_token_id"
        )
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{directory / 'config.json'}: unreadable ({exc})") from None
    return value if isinstance(value, int) else 0


def load_network(directory: Path, normalize: bool):
    """(network on the inference device, tokenizer) from a checked model directory."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from stancelab.models.transformer import network

    try:
        with network.quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            backbone = AutoModel.from_pretrained(directory, local_files_only=True)
        head = load_file(directory / HEAD_FILE)
        net = network.EncoderClassifier(backbone, len(LABELS), normalize=normalize)
        net.head.load_state_dict(head)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ModelLoadError(
            f"{directory}: cannot load the transformer ({first_line(exc)})"
        ) from None
    network.use_all_cores()
    net.to(network.inference_device()).eval()
    return net, tokenizer
