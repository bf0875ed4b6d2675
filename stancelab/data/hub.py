"""The labelled data as a Hugging Face ``DatasetDict``: ``stancelab data export`` and back.

``export(out)`` writes the gold set and the augmentation set as two splits, ``gold`` and
``augmentation``, with typed features:

* ``labels``: a list of ``ClassLabel(names=LABELS)`` (empty = none), in scheme order;
* ``id``, ``text``, ``doc_id`` (gold: the article), ``source`` (``corpus`` or ``authored``);
* ``dyad``, ``setting``, ``style``: what each augmentation sentence was written for;
* ``provenance``: for gold rows, the Label Studio export, annotators, adjudication and how
  the label set was resolved (``None`` for authored rows).

The folder holds ``arrow/`` (``DatasetDict.save_to_disk``), ``data/<split>-*.parquet`` and a
dataset card (``README.md``: counts, sources, licence notes, checksums) whose YAML header
points ``datasets.load_dataset(out)`` and the Hub at the Parquet files. ``load_export(out)``
reads it back as a ``DatasetDict``; ``to_labelled(split)`` turns a split into the
``LabelledSet`` that training and evaluation use, every field as the JSONL source loads.
The card gives two checksums per split: the data checksum of a run (id, text and labels
only) and ``columns_checksum``, over every column, which tells a lost or changed dyad,
source or provenance too. ``export``, ``load_export``, ``to_labelled`` and
``columns_checksum`` are re-exported by ``stancelab.data``.

``datasets`` is imported only here, and only when these functions run.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from stancelab.data.labelled import (
    LabelledSet,
    augmentation_files,
    load_augmentation,
    load_labelled,
)
from stancelab.errors import InputError
from stancelab.files import (
    atomic_open,
    check_output_path,
    followed,
    iter_jsonl,
    refuse_input_as_output,
    written_whole,
)
from stancelab.labels import LABELS, SCHEME, normalize
from stancelab.paths import AUGMENT_DIR, GOLD_PATH, HF_EXPORT_DIR

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, Features

SPLITS = ("gold", "augmentation")
EXTRA = ("dyad", "setting", "style")  # per-row metadata of the augmentation set


def features() -> Features:
    from datasets import ClassLabel, Features, List, Value

    return Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "labels": List(ClassLabel(names=list(LABELS))),
            "doc_id": Value("string"),
            "source": Value("string"),
            **{name: Value("string") for name in EXTRA},
            "provenance": {
                "export": Value("string"),
                "annotators": List(Value("string")),
                "adjudicated": Value("bool"),
                "resolution": Value("string"),
            },
        }
    )


def _rows(data: LabelledSet, raw: list[dict]) -> list[dict]:
    """Validated fields from ``data``; metadata (dyad, provenance, ...) from the raw rows."""
    rows = []
    for i, extra in enumerate(raw):
        provenance = extra.get("provenance")
        rows.append(
            {
                "id": data.ids[i],
                "text": data.texts[i],
                "labels": [LABELS.index(name) for name in data.labels[i]],
                "doc_id": data.doc_ids[i],
                "source": data.sources[i],
                **{name: str(extra.get(name) or "") for name in EXTRA},
                "provenance": {
                    "export": str(provenance.get("export", "")),
                    "annotators": [str(a) for a in provenance.get("annotators", [])],
                    "adjudicated": bool(provenance.get("adjudicated", False)),
                    "resolution": str(provenance.get("resolution", "")),
                }
                if isinstance(provenance, dict)
                else None,
            }
        )
    return rows


def build(gold: str | Path = GOLD_PATH, augment_dir: str | Path = AUGMENT_DIR) -> DatasetDict:
    """The gold and augmentation sets as one ``DatasetDict`` (validated like training data)."""
    from datasets import Dataset, DatasetDict

    gold_set = load_labelled(gold, default_source="corpus")
    aug_set = load_augmentation(augment_dir)
    gold_raw = [row for _, row in iter_jsonl(gold)]
    aug_raw = [row for f in augmentation_files(augment_dir) for _, row in iter_jsonl(f)]
    schema = features()
    return DatasetDict(
        {
            "gold": Dataset.from_list(_rows(gold_set, gold_raw), features=schema),
            "augmentation": Dataset.from_list(_rows(aug_set, aug_raw), features=schema),
        }
    )


def export(
    out: str | Path = HF_EXPORT_DIR,
    gold: str | Path = GOLD_PATH,
    augment_dir: str | Path = AUGMENT_DIR,
) -> DatasetDict:
    """Write the ``DatasetDict`` to ``out``: ``arrow/``, ``data/*.parquet``, ``README.md``.

    A previous export in ``out`` is replaced; any other non-empty folder is refused, and so
    are a file, a folder that holds an input and a second export into ``out`` at once. The
    export is written into a temporary folder beside ``out`` and moved into place whole.
    """
    out = followed(out)
    refuse_input_as_output(out, [gold, augment_dir])
    check_output_path(out, "--out", folder=True)
    _refuse_foreign(out)  # before minutes of work
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    dataset = build(gold, augment_dir)
    with written_whole(out, "stancelab data export", "--out") as staging:
        _refuse_foreign(out)  # again, under the lock
        dataset.save_to_disk(str(staging / "arrow"))
        (staging / "data").mkdir()
        for split, part in dataset.items():
            part.to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
        with atomic_open(staging / "README.md") as handle:
            handle.write(dataset_card(dataset, gold=str(gold), augment_dir=str(augment_dir)))
    return dataset


def _refuse_foreign(out: Path) -> None:
    """InputError when ``out`` is a folder with files that are not a previous export."""
    if out.is_dir() and any(out.iterdir()) and not (out / "arrow" / "dataset_dict.json").exists():
        raise InputError(f"{out}: not empty and not a previous export; choose another --out")


def load_export(path: str | Path = HF_EXPORT_DIR) -> DatasetDict:
    """An export read back: from ``arrow/`` when present, else from its Parquet files."""
    path = Path(path)
    if (path / "arrow" / "dataset_dict.json").exists():
        from datasets import load_from_disk

        return load_from_disk(str(path / "arrow"))
    files = {s: str(path / "data" / f"{s}-*.parquet") for s in SPLITS}
    if not all(list((path / "data").glob(f"{s}-*.parquet")) for s in SPLITS):
        raise InputError(f"{path}: not a stancelab data export (run `stancelab data export`)")
    from datasets import load_dataset

    return load_dataset("parquet", data_files=files, features=features())


def to_labelled(split: Dataset) -> LabelledSet:
    """A split as the ``LabelledSet`` training and evaluation use: every field of it, the
    dyads too (whole-dyad validation and leave-dyads-out group by them)."""
    names = split.features["labels"].feature.names
    if list(names) != list(LABELS):
        raise InputError(f"the dataset's labels {names} are not this scheme's {list(LABELS)}")
    return LabelledSet(
        ids=list(split["id"]),
        texts=list(split["text"]),
        labels=[normalize([names[k] for k in row]) for row in split["labels"]],
        doc_ids=list(split["doc_id"]),
        sources=list(split["source"]),
        dyads=list(split["dyad"]),
    )


def columns_checksum(split: Dataset) -> str:
    """SHA-256 over every column of ``split``, row by row in order: each row as
    ``datasets`` gives it (labels as ClassLabel indices), JSON with sorted keys, UTF-8, and a
    newline. The card spells this recipe out so that anyone can recompute it without
    stancelab; a run's data checksum covers only id, text and labels."""
    digest = hashlib.sha256()
    for row in split:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _counts(part: Dataset) -> dict:
    sets = [tuple(row) for row in part["labels"]]
    per_label = Counter(k for row in sets for k in row)
    return {
        "sentences": len(part),
        **{name: per_label.get(k, 0) for k, name in enumerate(LABELS)},
        "none": sum(1 for row in sets if not row),
        "two or more labels": sum(1 for row in sets if len(row) > 1),
        "articles": len({d for d in part["doc_id"] if d}),
        "dyads": len({d for d in part["dyad"] if d}),
    }


def _gold_description(gold: str, counts: dict, exports: list[str]) -> str:
    """The card's line on the gold split. The shipped set keeps its own words, which send
    readers to labels/README.md for how it was made (its caveats: both passes were AI
    annotation sessions); another gold set is described from what is found of it."""
    if Path(gold).resolve() == GOLD_PATH.resolve():
        return (
            "- `gold`: the corpus gold set, every sentence of the articles in `seeds/`, split by "
            f"`stancelab corpus` and labelled in Label Studio (from `{gold}`; exports: "
            f"{', '.join(f'`{e}`' for e in exports) or 'none recorded'}). `provenance` gives "
            "each sentence's annotators and whether an adjudicator decided it. How the set was "
            "made and its agreement figures: `labels/README.md` in the repository."
        )
    labelled = (
        f"labelled in Label Studio (from `{gold}`; exports: "
        f"{', '.join(f'`{e}`' for e in exports)}). `provenance` gives each sentence's "
        "annotators and whether an adjudicator decided it."
        if exports
        else f"labelled (from `{gold}`; no Label Studio export is recorded in it)."
    )
    report = (Path(gold).parent / "agreement.md").as_posix()
    agreement = (
        f"Agreement figures: `{report}`, which `stancelab label gold` writes beside the gold set."
        if Path(report).is_file()
        else f"No agreement report was found beside the gold set (`{report}`)."
    )
    return (
        f"- `gold`: the corpus gold set, {counts['sentences']} sentences of "
        f"{counts['articles']} news article(s), split by `stancelab corpus` and {labelled} "
        f"{agreement}"
    )


def dataset_card(dataset: DatasetDict, *, gold: str, augment_dir: str) -> str:
    """The dataset card: YAML header for ``load_dataset`` and the Hub, then the description."""
    counts = {split: _counts(part) for split, part in dataset.items()}
    exports = sorted({p["export"] for p in dataset["gold"]["provenance"] if p})
    checksums = {split: to_labelled(part).checksum() for split, part in dataset.items()}
    whole = {split: columns_checksum(part) for split, part in dataset.items()}
    header = [
        "---",
        "license: other",
        "language:",
        "- en",
        "task_categories:",
        "- text-classification",
        "task_ids:",
        "- multi-label-classification",
        "pretty_name: stancelab — rhetorical acts in official statements about armed conflicts",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in dataset),
        "---",
        "",
    ]
    rows = [
        f"| {key} | " + " | ".join(str(counts[s][key]) for s in dataset) + " |"
        for key in counts["gold"]
    ]
    return "\n".join(
        [
            *header,
            "# stancelab: rhetorical acts in official statements about armed conflicts",
            "",
            "English sentences from news reports, each labelled with the rhetorical acts it "
            "conveys: any subset of the labels below (an empty list means none). Exported by "
            "`stancelab data export` from the stancelab repository.",
            "",
            "## Labels",
            "",
            *(f"- `{label.name}`: {label.description}" for label in SCHEME),
            "",
            "## Splits and counts",
            "",
            f"| | {' | '.join(dataset)} |",
            "|---|" + "---|" * len(dataset),
            *rows,
            "",
            _gold_description(gold, counts["gold"], exports),
            f"- `augmentation`: sentences authored for the project (from `{augment_dir}`), "
            "none copied or adapted from any source, written for many conflict dyads "
            "(`dyad`, `setting`, `style`). The project uses them in training folds only, never "
            "as test data: evaluate on `gold`.",
            "",
            "## Fields",
            "",
            "`id` (stable sentence id), `text`, `labels` (a list of `ClassLabel`), `doc_id` "
            "(gold: the article), `source` (`corpus` or `authored`), `dyad`, `setting`, "
            "`style` (augmentation only; empty otherwise), `provenance` (gold only; null "
            "otherwise).",
            "",
            "## Licence notes",
            "",
            "- The labels, the provenance and the whole `augmentation` split were made for this "
            "project and come under its licence (MIT).",
            "- The `gold` sentences are quoted from published news articles. Their text "
            "belongs to its publishers and is not covered by the project's licence: check the "
            "publishers' terms before redistributing the `gold` split, for example on the Hub.",
            "",
            "## Loading",
            "",
            "```python",
            "from datasets import load_dataset, load_from_disk",
            'ds = load_dataset("path/to/this/folder")        # the Parquet files',
            'ds = load_from_disk("path/to/this/folder/arrow")',
            "from stancelab.data import load_export, to_labelled",
            'gold = to_labelled(load_export("path/to/this/folder")["gold"])',
            "```",
            "",
            "## Checksums",
            "",
            "Every column: SHA-256 over the split's rows in order, each row as `datasets` "
            "gives it (`labels` as class indices) written as JSON with sorted keys, UTF-8, "
            "followed by a newline. It changes when any field of any row is lost or changed:",
            "",
            *(f"- `{split}`: `{digest}`" for split, digest in whole.items()),
            "",
            "```python",
            "import hashlib, json",
            "from datasets import load_dataset",
            "",
            "digest = hashlib.sha256()",
            'for row in load_dataset("path/to/this/folder")["gold"]:  # or another split',
            "    line = json.dumps(row, sort_keys=True, ensure_ascii=False)",
            '    digest.update(line.encode("utf-8") + b"\\n")',
            "print(digest.hexdigest())",
            "```",
            "",
            "Data checksum: SHA-256 over the (id, text, labels) rows only, computed like the "
            "data checksum in a stancelab run's `run.json`:",
            "",
            *(f"- `{split}`: `{digest}`" for split, digest in checksums.items()),
            "",
        ]
    )
