"""Quality guard for the authored augmentation set in labels/augment/."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import pytest

from stancelab.corpus.ingest import ingest
from stancelab.data.labelled import load_augmentation
from stancelab.labels import LABELS

ROOT = Path(__file__).resolve().parent.parent
AUGMENT = ROOT / "labels" / "augment"
SETTINGS = {
    "interstate",
    "civil_war",
    "insurgency",
    "border_dispute",
    "maritime_dispute",
    "sanctions_dispute",
}
STYLES = {"quote", "reported", "headline", "narration"}
CUE_WORDS = """warn warns warned warning accuse accuses accused accusing accusation deny denies
denied denial if unless threaten threatens threatened retaliate retaliation reject rejects
rejected consequences allege alleges alleged blame blamed blames peace ceasefire strike strikes
talks price only""".split()
# Words that make a `none` sentence a hard negative: it mentions the vocabulary of the acts.
HARD_NEGATIVE_CUES = re.compile(
    r"\b(strik\w*|attack\w*|talks?|ceasefire|truce|sanction\w*|accus\w*|warn\w*|"
    r"den(y|ied|ies|ial|ying)|threat\w*|retaliat\w*|shell\w*|troops?|negotiat\w*|missiles?|"
    r"clash\w*|offensive|raids?|blam\w*|allegation\w*|reject\w*|claim\w*|fighting|drones?|"
    r"artillery|militias?|rebels?|army|forces|peace|war|killed|ultimatum|embargo|blockade|"
    r"siege|coup|nuclear|tests?|bomb\w*|ambush\w*|soldiers|fighters|militants?|insurgen\w*|"
    r"mediat\w*|summit|delegations?|envoys?|dialogue|meetings?|bans?|caution\w*|condemn\w*|"
    r"withdraw\w*|invasion|occup\w*|seiz\w*|patrols?|incidents?|peacekeep\w*|hostil\w*|"
    r"armed|military|weapons?|airstrikes?|explosions?|casualt\w*|tensions?)\b",
    re.IGNORECASE,
)


def words(text: str) -> list[str]:
    return re.findall(r"[\w’']+", text.lower())


def trigrams(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + 3]) for i in range(len(w) - 2)}


def jaccard_pairs(a: list[set], b: list[set] | None = None, threshold: float = 0.6):
    """Pairs (i, j) with trigram Jaccard >= threshold; candidate pairs share a trigram."""
    index = defaultdict(list)
    for j, grams in enumerate(b if b is not None else a):
        for g in grams:
            index[g].append(j)
    found = []
    for i, grams in enumerate(a):
        candidates = {j for g in grams for j in index[g] if b is not None or j > i}
        for j in candidates:
            other = (b if b is not None else a)[j]
            union = len(grams | other)
            if union and len(grams & other) / union >= threshold:
                found.append((i, j))
    return found


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    out = []
    for path in sorted(AUGMENT.glob("*.jsonl")):
        out += [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    return out


def test_rows_are_valid(rows):
    data = load_augmentation(AUGMENT)  # validates labels, ids, text
    assert len(data) == len(rows) >= 1500
    for row in rows:
        assert set(row) == {"id", "text", "labels", "dyad", "setting", "style", "source"}, row["id"]
        assert row["source"] == "authored"
        assert row["setting"] in SETTINGS and row["style"] in STYLES, row["id"]
        assert row["labels"] == [n for n in LABELS if n in row["labels"]], row["id"]
        assert 8 <= len(row["text"].split()) <= 45, row["id"]


def test_label_mix(rows):
    counts = Counter(label for row in rows for label in row["labels"])
    for name in LABELS:
        assert counts[name] >= 300, (name, counts[name])
    assert sum(len(row["labels"]) >= 2 for row in rows) >= 150
    nones = [row for row in rows if not row["labels"]]
    assert len(nones) >= 350
    hard = sum(bool(HARD_NEGATIVE_CUES.search(row["text"])) for row in nones)
    assert hard / len(nones) > 0.5, f"only {hard} of {len(nones)} none sentences are hard negatives"


def test_spread_over_dyads_and_settings(rows):
    dyads = Counter(row["dyad"] for row in rows)
    assert len(dyads) >= 60
    assert max(dyads.values()) / len(rows) < 0.05
    assert {row["setting"] for row in rows} == SETTINGS


def test_no_cue_word_dominates_a_label(rows):
    for name in LABELS:
        texts = [set(words(row["text"])) for row in rows if name in row["labels"]]
        for cue in CUE_WORDS:
            share = sum(cue in t for t in texts) / len(texts)
            assert share <= 0.25, f"'{cue}' in {share:.0%} of {name} sentences"


def test_no_exact_or_near_duplicates(rows):
    grams = [trigrams(row["text"]) for row in rows]
    pairs = jaccard_pairs(grams)
    assert not pairs, [(rows[i]["id"], rows[j]["id"]) for i, j in pairs[:5]]
    assert len({" ".join(words(row["text"])) for row in rows}) == len(rows)


def test_no_overlap_with_the_seed_corpus(rows, tmp_path):
    sentences, _ = ingest([ROOT / "seeds"], tmp_path / "s.jsonl")
    corpus = [s.text for s in sentences]
    pairs = jaccard_pairs([trigrams(r["text"]) for r in rows], [trigrams(t) for t in corpus], 0.6)
    assert not pairs, [(rows[i]["id"], corpus[j]) for i, j in pairs[:5]]
    corpus_6grams = {
        tuple(w[i : i + 6]) for t in corpus for w in [words(t)] for i in range(len(w) - 5)
    }
    copied = [
        r["id"]
        for r in rows
        if any(
            tuple(w[i : i + 6]) in corpus_6grams
            for w in [words(r["text"])]
            for i in range(len(w) - 5)
        )
    ]
    assert not copied, copied[:5]


def test_helper_finds_a_near_duplicate():
    """The duplicate check itself must be able to fail."""
    a = trigrams("The army warned that it would respond to any further attack on the border.")
    b = trigrams("The army warned that it would respond to any further attack on the frontier.")
    c = trigrams("Talks resumed in Geneva after a pause of two weeks.")
    assert jaccard_pairs([a, b, c]) == [(0, 1)]
    assert list(combinations(range(2), 2)) == [(0, 1)]


def _dyad_file(folder, rows) -> None:
    """An augmentation file ``a.jsonl`` of one sentence per (id, dyad) in ``rows``."""
    lines = (
        json.dumps({"id": i, "text": f"Sentence {i}.", "labels": [], "dyad": d}) + "\n"
        for i, d in rows
    )
    (folder / "a.jsonl").write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize(
    "spelling", ["israel-hamas", " Israel - Hamas", "ISRAEL—HAMAS", "Israel Hamas", "israel/hamas"]
)
def test_two_spellings_of_one_dyad_are_refused(tmp_path, spelling):
    from stancelab.errors import InputError

    rows = [("a1", "Israel–Hamas"), ("a2", "Israel–Hezbollah"), ("a3", spelling)]
    _dyad_file(tmp_path, rows)
    message = f"'Israel–Hamas' (row a1) and {spelling!r} (row a3) differ only in case"
    with pytest.raises(InputError, match=re.escape(message)):
        load_augmentation(tmp_path)
    assert len(set(load_augmentation("labels/augment").dyads)) == 89  # the shipped set is clean


@pytest.mark.parametrize("spelling", ["Hamas–Israel", "hamas - israel", "Hamas/Israel"])
def test_one_dyad_with_its_sides_the_other_way_round_is_refused(tmp_path, spelling):
    """ "Hamas–Israel" beside "Israel–Hamas" is one conflict: as two, leaving dyads out and
    the transformer's held-out part of whole dyads would put it on both sides."""
    from stancelab.errors import InputError

    rows = [("a1", "Israel–Hamas"), ("a2", "Sudan–South Sudan"), ("a3", spelling)]
    _dyad_file(tmp_path, rows)
    message = f"'Israel–Hamas' (row a1) and {spelling!r} (row a3) differ only in case"
    with pytest.raises(InputError, match=re.escape(message) + ".*order of their sides"):
        load_augmentation(tmp_path)
    # Dyads that share a word are still two conflicts.
    _dyad_file(tmp_path, [("b1", "Sudan–South Sudan"), ("b2", "South Sudan–Uganda")])
    assert len(set(load_augmentation(tmp_path).dyads)) == 2


def test_a_file_whose_suffix_is_in_capitals_is_read_too(tmp_path):
    """``X.JSONL`` from another system is part of the set: skipping it would train on less,
    and nothing would say so."""
    for name, row_id in (("a.jsonl", "a1"), ("b.JSONL", "b1"), ("c.Jsonl", "c1")):
        row = {"id": row_id, "text": f"Sentence {row_id}.", "labels": [], "dyad": "A–B"}
        (tmp_path / name).write_text(json.dumps(row) + "\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a set\n", encoding="utf-8")
    assert load_augmentation(tmp_path).ids == ["a1", "b1", "c1"]
