"""``stancelab data export``: the shipped gold and augmentation sets as a Hugging Face
``DatasetDict`` (save_to_disk, Parquet, dataset card), read back by ``stancelab.data``,
``datasets.load_dataset`` and ``load_from_disk`` without losing a label."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stancelab.cli import app
from stancelab.data import load_export, to_labelled
from stancelab.data.labelled import LabelledSet, load_augmentation, load_labelled
from stancelab.labels import LABELS

ROOT = Path(__file__).resolve().parent.parent
GOLD, AUGMENT = ROOT / "labels" / "gold.jsonl", ROOT / "labels" / "augment"
runner = CliRunner()


def _export(out: Path, gold: Path = GOLD):
    args = ["data", "export", "--out", str(out), "--gold", str(gold)]
    return runner.invoke(app, [*args, "--augment-dir", str(AUGMENT)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub") / "export"
    done = _export(out)
    assert done.exit_code == 0, done.output
    assert "gold 169, augmentation 1794 sentences" in done.stdout
    return out


def test_export_round_trips_every_row_and_label(exported):
    assert (exported / "arrow" / "dataset_dict.json").exists()
    assert sorted(p.name for p in (exported / "data").iterdir()) == [
        "augmentation-00000-of-00001.parquet",
        "gold-00000-of-00001.parquet",
    ]
    dataset = load_export(exported)
    assert list(dataset) == ["gold", "augmentation"]
    assert dataset["gold"].features["labels"].feature.names == list(LABELS)
    gold, aug = load_labelled(GOLD, default_source="corpus"), load_augmentation(AUGMENT)
    assert to_labelled(dataset["gold"]).checksum() == gold.checksum()
    assert to_labelled(dataset["augmentation"]).checksum() == aug.checksum()
    back = to_labelled(dataset["gold"])
    assert back.doc_ids == gold.doc_ids and set(back.sources) == {"corpus"}
    assert_same_sets(dataset)


def assert_same_sets(dataset) -> None:
    """Each split's ``LabelledSet`` has every field of the one loaded from the JSONL files, not
    only those of the checksum (id, text, labels): the dyads group the augmentation set in
    whole-dyad validation and leave-dyads-out."""
    direct = {
        "gold": load_labelled(GOLD, default_source="corpus"),
        "augmentation": load_augmentation(AUGMENT),
    }
    for split, expected in direct.items():
        back = to_labelled(dataset[split])
        for name in (f.name for f in fields(LabelledSet)):
            assert getattr(back, name) == getattr(expected, name), (split, name)


def test_metadata_and_provenance_survive(exported):
    dataset = load_export(exported)
    first = json.loads(GOLD.read_text(encoding="utf-8").splitlines()[0])
    row = dataset["gold"][0]
    assert row["provenance"] == first["provenance"] and row["dyad"] == ""
    assert [LABELS[k] for k in row["labels"]] == first["labels"]
    aug = dataset["augmentation"]
    assert aug[0]["provenance"] is None and aug[0]["dyad"] and aug[0]["source"] == "authored"
    assert sum(1 for p in dataset["gold"]["provenance"] if p["adjudicated"]) == 2


def test_parquet_loads_with_load_dataset_and_keeps_the_class_labels(exported, tmp_path):
    from datasets import load_dataset

    dataset = load_dataset(str(exported), cache_dir=str(tmp_path / "cache"))
    assert {s: len(p) for s, p in dataset.items()} == {"gold": 169, "augmentation": 1794}
    assert dataset["gold"].features["labels"].feature.names == list(LABELS)
    assert to_labelled(dataset["gold"]).checksum() == load_labelled(GOLD).checksum()
    # Without arrow/ (e.g. downloaded from the Hub), load_export reads the Parquet files.
    copy = tmp_path / "parquet-only"
    shutil.copytree(exported, copy, ignore=shutil.ignore_patterns("arrow"))
    assert to_labelled(load_export(copy)["augmentation"]).checksum() == (
        load_augmentation(AUGMENT).checksum()
    )
    assert_same_sets(load_export(copy))


def test_dataset_card_gives_counts_sources_licence_and_the_hub_layout(exported):
    card = (exported / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: other\n")
    assert "  - split: gold\n    path: data/gold-*.parquet" in card
    assert "| sentences | 169 | 1794 |" in card and "| threat | 33 | 358 |" in card
    assert "| none | 90 | 582 |" in card and "| dyads | 0 | 89 |" in card
    assert "stancelab-seeds-20261122T031832Z.json" in card
    assert "## Licence notes" in card and "publishers" in card
    assert load_labelled(GOLD).checksum() in card


def test_the_shipped_card_keeps_its_words_and_sends_readers_to_labels_readme(exported):
    """labels/README.md says how the shipped set was made (both passes were AI annotation
    sessions): the card must keep pointing there, not to agreement.md alone."""
    card = (exported / "README.md").read_text(encoding="utf-8")
    assert (
        "- `gold`: the corpus gold set, every sentence of the articles in `seeds/`, split by "
        f"`stancelab corpus` and labelled in Label Studio (from `{GOLD}`; exports: "
        "`stancelab-seeds-20261122T031832Z.json`). `provenance` gives each sentence's "
        "annotators and whether an adjudicator decided it. How the set was made and its "
        "agreement figures: `labels/README.md` in the repository.\n"
    ) in card


def _own_gold(folder: Path) -> Path:
    """A gold set of an analyst's own articles, with no Label Studio export recorded."""
    mine = folder / "gold.jsonl"
    folder.mkdir()
    rows = [
        ("v1-a", "valdoria_01", "We will answer any incursion with force.", ["threat"]),
        ("v1-b", "valdoria_01", "Kessaria staged the provocation.", ["accusation"]),
        ("v2-a", "valdoria_02", "Our forces did not fire a single shell.", ["denial"]),
    ]
    mine.write_text(
        "".join(
            json.dumps({"id": i, "doc_id": d, "text": t, "labels": lab}) + "\n"
            for i, d, t, lab in rows
        ),
        encoding="utf-8",
    )
    return mine


def test_the_card_describes_the_gold_set_given_not_the_shipped_one(tmp_path):
    """An analyst's own gold set was described as "every sentence of the articles in
    `seeds/`", labelled in Label Studio, with an agreement report that did not exist."""
    mine = _own_gold(tmp_path / "mine")
    out = tmp_path / "export"
    assert _export(out, mine).exit_code == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "seeds/" not in card and "labels/README.md" not in card
    assert "labelled in Label Studio" not in card  # no export recorded
    report = f"{mine.parent.as_posix()}/agreement.md"
    assert (
        "- `gold`: the corpus gold set, 3 sentences of 2 news article(s), split by `stancelab "
        f"corpus` and labelled (from `{mine}`; no Label Studio export is recorded in it). "
        f"No agreement report was found beside the gold set (`{report}`).\n"
    ) in card
    assert "Agreement figures" not in card


def test_the_card_names_the_agreement_report_beside_the_gold_set(tmp_path):
    mine = _own_gold(tmp_path / "mine")
    (mine.parent / "agreement.md").write_text("# Agreement\n", encoding="utf-8")
    out = tmp_path / "export"
    assert _export(out, mine).exit_code == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    report = f"{mine.parent.as_posix()}/agreement.md"
    assert (
        f"Agreement figures: `{report}`, which `stancelab label gold` writes beside the gold set.\n"
    ) in card
    assert "No agreement report" not in card


def test_card_checksum_covers_every_column_and_recomputes_as_it_says(exported, tmp_path):
    """The card's (id, text, labels) checksum cannot tell a lost or changed dyad, source or
    provenance; its every-column checksum can, and the card's own recipe recomputes it from
    the Parquet files without stancelab."""
    from datasets import load_dataset

    card = (exported / "README.md").read_text(encoding="utf-8")
    parquet = load_dataset(str(exported), cache_dir=str(tmp_path / "cache"))
    digests = {}
    for split, part in parquet.items():
        digest = hashlib.sha256()
        for row in part:  # the recipe as the card words it
            digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
        digests[split] = digest.hexdigest()
        assert f"- `{split}`: `{digests[split]}`" in card, split
    from stancelab.data import columns_checksum

    for split, digest in digests.items():  # load_from_disk gives the same rows
        assert columns_checksum(load_export(exported)[split]) == digest
    snippet = card.split("```python\n")[-1].split("```")[0]
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    code = snippet.replace("path/to/this/folder", str(exported))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"- `gold`: `{done.stdout.strip()}`" in card
    aug = parquet["augmentation"]
    changed = aug.map(lambda row, i: {"dyad": "" if i == 0 else row["dyad"]}, with_indices=True)
    assert to_labelled(changed).checksum() == to_labelled(aug).checksum()
    assert columns_checksum(changed) != columns_checksum(aug)
    assert columns_checksum(aug.remove_columns("source")) != columns_checksum(aug)


def test_export_replaces_its_own_output_and_refuses_other_folders(tmp_path):
    small = tmp_path / "gold.jsonl"
    small.write_text("".join(GOLD.read_text(encoding="utf-8").splitlines(True)[:5]))
    out = tmp_path / "export"
    assert _export(out, small).exit_code == 0
    assert _export(out, small).exit_code == 0  # a previous export is replaced
    assert len(load_export(out)["gold"]) == 5 and not (tmp_path / "export.part").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    done = _export(other, small)
    assert done.exit_code == 1 and "not a previous export" in done.output
    assert (other / "notes.txt").read_text() == "mine"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "labels": ["threats"]}\n')
    done = _export(tmp_path / "x", bad)
    assert done.exit_code == 1 and "threats" in done.output


@pytest.mark.parametrize("where", ["a file", "under a file", "a name too long", "unwritable"])
def test_an_out_that_cannot_be_written_is_one_line(tmp_path, where):
    small = tmp_path / "gold.jsonl"
    small.write_text("".join(GOLD.read_text(encoding="utf-8").splitlines(True)[:5]))
    (tmp_path / "a.txt").write_text("mine")
    out = {
        "a file": tmp_path / "a.txt",
        "under a file": tmp_path / "a.txt" / "hf",
        "a name too long": tmp_path / ("x" * 300),
        "unwritable": Path("/proc/stancelab-test/hf"),  # even for root
    }[where]
    before = sorted(tmp_path.iterdir())
    done = _export(out, small)
    assert done.exit_code == 1 and done.stderr.startswith("error: "), done.output
    assert done.stderr.count("\n") == 1, done.stderr
    assert sorted(tmp_path.iterdir()) == before and (tmp_path / "a.txt").read_text() == "mine"
