"""Issue #17, item 7: splitting one long line takes linear time, checked without a clock.

pysbd's time grows with the square of the text it is given, so the splitter hands it pieces
of at most ``MAX_CHUNK`` characters. Two checks that do not depend on the machine's load
(the timing itself is a benchmark: ``python benchmarks/split_speed.py``):

* pysbd sees every non-space character of a 1 MB line once, in pieces no longer than
  ``MAX_CHUNK``, in order;
* the Python-level work (function calls and returns, counted with ``sys.setprofile``) on a
  1 MB line is about ten times that on 100 KB: 9.99x measured. The splitter before 75a3f65
  gave 35x for ten times the text (200 KB against 20 KB), so a bound of 10.5x catches a
  return of the square.
"""

from __future__ import annotations

import re
import sys

import pytest

from stancelab.corpus import splitting
from stancelab.corpus.ingest import Document, segment_document

pytestmark = pytest.mark.slow
LONGEST_PIECE = 5_000  # splitting.MAX_CHUNK; pysbd takes about 0.02 s on a piece this long

SENTENCES = (
    "The minister said the army will retaliate if the rebels attack again, and U.S. officials "
    "met Dr. Smith on Feb. 20 in Geneva. “We will not accept this,” he said. Is it over? No. "
    "“Are they coming?” Asif asked. Officials blamed foreign agents for the bombing. "
)


def article(size: int) -> str:
    return (SENTENCES * (size // len(SENTENCES) + 1))[:size]


def sentences(text: str) -> list:
    found, _ = segment_document(Document("d", text, "d"))
    assert found and all(text[s.start : s.end] == s.text for s in found)
    return found


def profile_events(text: str) -> int:
    """Calls and returns, Python and C, while ``text`` is split."""
    count = 0

    def tally(frame, event, arg):
        nonlocal count
        count += 1

    sys.setprofile(tally)
    try:
        sentences(text)
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize(
    "text",
    [
        article(1_000_000),
        "word " * 200_000,  # no sentence boundary at all: cut at white space
        "x" * 1_000_000,  # not even white space: cut every MAX_CHUNK characters
    ],
    ids=["sentences", "no-boundary", "no-space"],
)
def test_pysbd_sees_a_long_line_once_in_pieces_of_bounded_length(text, monkeypatch):
    segmenter = splitting._segmenter()
    real = segmenter.segment
    pieces: list[str] = []

    def recording(piece):
        pieces.append(piece)
        return real(piece)

    monkeypatch.setattr(segmenter, "segment", recording)
    sentences(text)
    assert len(pieces) > 1
    assert max(map(len, pieces)) <= LONGEST_PIECE
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", text)


def test_the_work_on_a_1mb_line_is_about_ten_times_that_on_100kb():
    profile_events(article(3_000))  # the first call builds pysbd's segmenter
    small = profile_events(article(100_000))
    large = profile_events(article(1_000_000))
    assert large < 10.5 * small, f"1 MB: {large:,} events, 100 KB: {small:,} ({large / small:.2f}x)"
