"""Sentence splitting on news text; the hard cases come from the seed corpus."""

from __future__ import annotations

import pytest

from stancelab.corpus.splitting import ends_like_sentence, split_sentences


def sents(text: str) -> list[str]:
    spans = split_sentences(text)
    for start, end in spans:
        assert text[start:end] == text[start:end].strip()
    return [text[s:e] for s, e in spans]


def test_quote_with_two_sentences_is_split_inside_the_quote():
    text = (
        "Mujahid stated in a press release, “Pakistan cannot blame Afghanistan for the lack of "
        "control, incompetence, and problems within its own borders. Such incidents can lead to "
        "severe consequences that will be beyond Pakistan’s control.”"
    )
    assert sents(text) == [
        "Mujahid stated in a press release, “Pakistan cannot blame Afghanistan for the lack of "
        "control, incompetence, and problems within its own borders.",
        "Such incidents can lead to severe consequences that will be beyond Pakistan’s control.”",
    ]


def test_quote_then_attribution_then_new_quote():
    text = (
        '"Most of the militants killed by our armed forces in recent weeks were Afghans, not '
        'Pakistanis,” he said. "That proves our point that the Kabul government is fully backing '
        "the terrorist attacks in Pakistan.”"
    )
    out = sents(text)
    assert len(out) == 2
    assert out[0].endswith("he said.")
    assert out[1].endswith("Pakistan.”")  # the closing quote is not a sentence of its own


def test_quote_ending_in_question_keeps_its_attribution():
    text = (
        "“This would eliminate the element of surprise. Why should we tell them, ‘get ready, we "
        "are coming’?” Asif rhetorically questioned, underscoring the tactical necessity of covert "
        "operations."
    )
    assert sents(text) == [
        "“This would eliminate the element of surprise.",
        "Why should we tell them, ‘get ready, we are coming’?” Asif rhetorically questioned, "
        "underscoring the tactical necessity of covert operations.",
    ]


def test_lowercase_attribution_after_quote_is_not_split():
    text = "“Peace means progress, peace means prosperity.” he said. Talks resumed."
    assert sents(text) == [
        "“Peace means progress, peace means prosperity.” he said.",
        "Talks resumed.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "In response to Monday’s strikes, the U.S. State Department called on both sides to talk.",
        "The minister met Mr. Khan and Dr. Ali in Moscow on Feb. 20, 2018, before the vote.",
        "The militant group fought the U.S.-backed government in Kabul for two decades.",
        "He cited Resolution No. 1267 and the report by J. R. Smith on the sanctions regime.",
        "It is estimated that 5,000 to 6,000 fighters crossed the 2,600-kilometer-long border.",
        "He paused... then said the talks would continue.",
    ],
)
def test_no_split_after_abbreviations_initials_and_numbers(text):
    assert sents(text) == [text]


def test_ellipsis_before_a_new_sentence_splits():
    assert sents("We waited for an answer... None came.") == [
        "We waited for an answer...",
        "None came.",
    ]


def test_date_abbreviation_at_sentence_end_still_splits_before_next_sentence():
    text = "The talks ended on Feb. 20. The next round has not been scheduled."
    out = sents(text)
    assert out[-1] == "The next round has not been scheduled."


def test_headline_detection_helper():
    assert not ends_like_sentence(
        "Pakistan Warns Taliban: Attacks from Afghan Soil Would Trigger Retaliation"
    )
    assert not ends_like_sentence("“Afghanistan Does Not Meet the Definition of a State”")
    assert ends_like_sentence("“We will strike, and we will certainly strike.”")
    assert ends_like_sentence("Why should we tell them?")


def test_offsets_survive_no_break_spaces():
    text = "Pakistan has experienced an increase in attacks.\u00a0 The border is calm.\u00a0"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Pakistan has experienced an increase in attacks.",
        "The border is calm.",
    ]
