"""Run configurations: one YAML per run in ``configs/``, loaded into typed dataclasses.

Unknown keys, wrong types and bad values are rejected with a message that names the key.
A config has ``model`` (baseline or transformer), ``name``, ``seed``, ``data`` and
``params`` (the model's own hyperparameters, ``BaselineParams`` or ``TransformerParams``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stancelab._yaml import load_yaml  # noqa: F401 - training.train and tests import it here
from stancelab.errors import ConfigError, InputError, first_line
from stancelab.paths import AUGMENT_DIR, GOLD_PATH


@dataclass
class DataConfig:
    gold: str = str(GOLD_PATH)
    augment: bool = True  # add the authored augmentation set to the training data
    augment_dir: str = str(AUGMENT_DIR)
    # Each corpus (news) sentence joins training this many times, the authored ones once
    # (README, "Choosing the transformer"); the copies stay in their article's group.
    corpus_repeat: int = 1

    def __post_init__(self) -> None:
        check_ranges(self, DATA_RANGES)


@dataclass
class BaselineParams:
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 1
    max_features: int = 200_000
    sublinear_tf: bool = True
    C: float = 4.0
    class_weight: str | None = "balanced"
    inner_folds: int = 5  # inner CV for thresholds and calibration
    grid: dict[str, list] = field(default_factory=dict)  # e.g. {"C": [1, 4, 16]}: inner-CV search

    def __post_init__(self) -> None:
        check_ranges(self, BASELINE_RANGES)
        for key, values in self.grid.items():
            if key not in BASELINE_RANGES or key == "grid":
                raise ConfigError(
                    f"grid.{key}: not a parameter to search; allowed: "
                    f"{', '.join(k for k in BASELINE_RANGES)}"
                )
            if not isinstance(values, list) or not values:
                raise ConfigError(f"grid.{key}: allowed: a non-empty list of values")
            for value in values:
                ok, allowed = BASELINE_RANGES[key]
                if not _safe(ok, value):
                    raise ConfigError(f"grid.{key}: {value!r} is out of range; allowed: {allowed}")


def _ngram_range(value) -> bool:
    return len(value) == 2 and all(isinstance(v, int) for v in value) and 1 <= value[0] <= value[1]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _safe(ok, value) -> bool:
    try:
        return bool(ok(value))
    except (TypeError, ValueError):
        return False


def check_ranges(obj, ranges: dict) -> None:
    """ConfigError naming the first field whose value is outside its allowed range."""
    for name, (ok, allowed) in ranges.items():
        value = getattr(obj, name)
        if not _safe(ok, value):
            raise ConfigError(f"{name}: {value!r} is out of range; allowed: {allowed}")


# Baseline parameter -> (check, the allowed range in words); grid values are checked too.
DATA_RANGES = {
    "corpus_repeat": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 20,
        "an integer from 1 to 20",
    ),
}

BASELINE_RANGES = {
    "word_ngrams": (_ngram_range, "[low, high] with 1 <= low <= high, e.g. [1, 2]"),
    "char_ngrams": (_ngram_range, "[low, high] with 1 <= low <= high, e.g. [2, 5]"),
    "min_df": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "max_features": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "sublinear_tf": (lambda v: isinstance(v, bool), "true or false"),
    "C": (lambda v: _number(v) and 0 < v < float("inf"), "a number > 0"),
    "class_weight": (lambda v: v in (None, "balanced"), "balanced or null"),
    "inner_folds": (lambda v: isinstance(v, int) and 2 <= v <= 50, "an integer from 2 to 50"),
}


RECIPES = ("finetune", "setfit")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class TransformerParams:
    """Hyperparameters of the fine-tuned transformer (``stancelab.models.transformer.model``)."""

    # "packaged:all-MiniLM-L6-v2" (installed weights), a local directory or a hub id.
    model: str = "packaged:all-MiniLM-L6-v2"
    # Hub ids load from the local Hugging Face cache only, unless this is true (or
    # STANCELAB_ALLOW_DOWNLOAD=1 is set in the environment).
    allow_download: bool = False
    recipe: str = "finetune"  # "finetune" (encoder + head) or "setfit" (contrastive, then head)
    max_length: int = 64  # tokens; longer sentences are truncated
    batch_size: int = 16
    epochs: int = 2  # finetune: most passes over the data (early stopping may end sooner)
    learning_rate: float = 5e-5  # encoder
    head_learning_rate: float = 1e-3  # finetune: the freshly initialised head
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    class_weighting: bool = True  # finetune: weighted BCE; setfit: balanced head
    freeze_embeddings: bool = True  # keep the word-embedding matrix fixed (speed, tiny data)
    freeze_layers: int = 0  # also keep the bottom N encoder layers fixed (speed)
    # finetune: keep the bottom N layers fixed and compute their outputs once, cached on disk
    # (stancelab.models.transformer.layers); only the layers above and the head are trained.
    cache_layers: int = 0
    # finetune: the arithmetic of the training steps. "bf16" runs them under bfloat16 autocast
    # (weights, optimiser, validation, calibration and predictions stay fp32); "auto" is bf16
    # where the hardware has it (a CPU oneDNN runs bf16 on, or a bf16 GPU), else fp32.
    mixed_precision: str = "fp32"
    early_stopping_patience: int = 1  # epochs without validation gain before stopping
    # Held out of training for early stopping, calibration and thresholds (see transformer.py).
    validation_fraction: float = 0.15
    contrastive_epochs: int = 2  # setfit: passes of contrastive encoder training (0 = none)
    head_C: float = 1.0  # setfit: inverse regularisation of the logistic-regression head
    progress: bool = True  # progress bars while training

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if not self.model.strip():
            raise ConfigError("model must name packaged weights, a directory or a hub id")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(
                f"mixed_precision must be one of {', '.join(PRECISIONS)}, "
                f"got {self.mixed_precision!r}"
            )
        if self.mixed_precision != "fp32" and self.recipe != "finetune":
            raise ConfigError("mixed_precision: only with recipe finetune (setfit trains in fp32)")
        if self.cache_layers and (self.freeze_layers or self.recipe != "finetune"):
            raise ConfigError(
                "cache_layers: only with recipe finetune, and instead of freeze_layers"
            )
        check_ranges(self, TRANSFORMER_RANGES)


def _at_least(low, kind=(int, float)):
    return lambda v: isinstance(v, kind) and not isinstance(v, bool) and low <= v < float("inf")


TRANSFORMER_RANGES = {
    "max_length": (lambda v: isinstance(v, int) and 8 <= v <= 512, "an integer from 8 to 512"),
    "batch_size": (_at_least(2, int), "an integer >= 2"),
    "epochs": (_at_least(1, int), "an integer >= 1"),
    "learning_rate": (lambda v: _number(v) and 0 < v < float("inf"), "a number > 0, e.g. 5e-5"),
    "head_learning_rate": (lambda v: _number(v) and 0 < v < float("inf"), "a number > 0"),
    "weight_decay": (_at_least(0), "a number >= 0"),
    "warmup_ratio": (lambda v: _number(v) and 0 <= v < 1, "a number >= 0 and < 1"),
    "freeze_layers": (_at_least(0, int), "an integer >= 0"),
    "cache_layers": (_at_least(0, int), "an integer >= 0"),
    "early_stopping_patience": (_at_least(1, int), "an integer >= 1"),
    "validation_fraction": (lambda v: _number(v) and 0.05 <= v <= 0.5, "a number from 0.05 to 0.5"),
    "contrastive_epochs": (_at_least(0, int), "an integer >= 0"),
    "head_C": (lambda v: _number(v) and 0 < v < float("inf"), "a number > 0"),
}


PARAMS = {"baseline": BaselineParams, "transformer": TransformerParams}


@dataclass
class RunConfig:
    model: str
    name: str = ""
    seed: int = 13
    data: DataConfig = field(default_factory=DataConfig)
    params: BaselineParams | TransformerParams | None = None

    def __post_init__(self) -> None:
        if self.model not in PARAMS:
            raise ConfigError(f"model must be one of {', '.join(PARAMS)}, got {self.model!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed: {self.seed!r} is not an integer; allowed: 0 to 2**32 - 1")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed: {self.seed!r} is out of range; allowed: 0 to 2**32 - 1")
        if self.params is None:
            self.params = PARAMS[self.model]()
        self.name = self.name or self.model
        if self.model == "baseline" and self.data.corpus_repeat != 1:
            raise ConfigError(
                "data.corpus_repeat: the baseline takes only 1 (its inner cross-validation "
                "would put copies of one sentence on both sides of a fold)"
            )
        parts = self.name.split("/") if isinstance(self.name, str) else [""]
        if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
            raise ConfigError(
                f"name: {self.name!r} is not a run name (it names runs/<name>/): a folder "
                "name, or folders joined by '/', none of them '.' or '..'"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a YAML run config; ``overrides`` (dotted keys) are applied after the file."""
    import yaml

    from stancelab.files import read_text

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = load_yaml(read_text(path)) or {}
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"{path}: invalid YAML{where} ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for depth, key in enumerate(parents):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                section = ".".join(parents[: depth + 1])
                raise ConfigError(f"--set {dotted}: {section} is a value, not a section")
        node[leaf] = value
    return config_from_dict(raw, where=str(path))


def config_from_dict(raw: dict, where: str = "config") -> RunConfig:
    model = raw.get("model")
    if model not in PARAMS:
        raise ConfigError(f"{where}: 'model' must be one of {', '.join(PARAMS)}, got {model!r}")
    hints = {"params": PARAMS[model]}
    return _build(RunConfig, raw, where, hints)


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _build(cls: type, raw: Any, where: str, hints: dict | None = None) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # str(): YAML reads a key such as ``1:`` or ``on:`` as a number or a boolean.
    unknown = sorted(str(key) for key in set(raw) - set(fields))
    if unknown:
        read_as = [k for k in set(raw) - set(fields) if not isinstance(k, str)]
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} in {cls.__name__}; "
            f"valid keys: {', '.join(fields)}"
            + (
                " (YAML reads a key such as on, yes, no or 1 as a boolean or a number: quote "
                "it if it is meant as a name)"
                if read_as
                else ""
            )
        )
    types_ = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in raw.items():
        target = (hints or {}).get(name, types_[name])
        kwargs[name] = _coerce(value, target, f"{where}: {name}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, target: Any, where: str) -> Any:
    if dataclasses.is_dataclass(target):
        return _build(target, value, where)
    origin = typing.get_origin(target)
    args = typing.get_args(target)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if target is Any:
        return value
    if target in (list, dict):  # a bare list or mapping: checked by its owner
        if not isinstance(value, target):
            raise ConfigError(f"{where}: expected a {target.__name__}, got {value!r}")
        return value
    if target is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if target is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if target is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 8e-5 (no dot) as a string; a user means 8e-5
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if target is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {target!r}")
