"""data.corpus_repeat: copies of one sentence never on both sides of a held-out cut."""

from __future__ import annotations

import dataclasses

from stancelab.data.labelled import load_augmentation, load_labelled
from stancelab.models.transformer.model import holdout_split


def test_copies_of_a_sentence_without_doc_id_stay_on_one_side_of_the_held_out_part() -> None:
    # A user's gold file need not carry doc_ids: each such sentence is a group of its own,
    # and its copies must be that same group, not one group per copy.
    gold = load_labelled("labels/gold.jsonl", default_source="corpus")
    gold = dataclasses.replace(gold, doc_ids=[""] * len(gold))
    rows = gold.concat(load_augmentation("labels/augment")).with_corpus_repeated(3)
    group_of: dict[str, set[str]] = {}
    for row_id, group in zip(rows.ids, rows.groups, strict=True):
        group_of.setdefault(row_id, set()).add(group)
    assert all(len(groups) == 1 for groups in group_of.values())
    for seed in range(3):
        train, val, grouped = holdout_split(rows.y, 0.15, seed, rows.groups, rows.texts)
        assert grouped
        assert not {rows.ids[i] for i in train} & {rows.ids[i] for i in val}
