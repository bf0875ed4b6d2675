"""A document's paragraphs: its lines, with the lines of hard-wrapped text joined again.

News copy as the corpus holds it has one paragraph per line. Text wrapped at a fixed width (an
e-mail, a copy from a PDF, a plain-text wire story) breaks every paragraph into lines of at
most that width; read line by line, its sentences would come apart into fragments, and short
fragments would be dropped as tag lines.

A document is read as wrapped only when at least ``MIN_SHORT_SHARE`` of its lines are at most
``MAX_WIDTH`` characters long (paragraphs one per line run longer), and only if it has at
least ``MIN_WRAPS`` wraps (one alone is what a long headline over its first paragraph looks
like). Its width is the ``WIDTH_QUANTILE`` quantile of those lines' lengths, so that one long
line (a link) does not set it. The break after a line of at most ``MAX_WIDTH`` characters is
a wrap, unless a blank line follows or the next line is a list item (a bullet, number or
letter, next to another item or after a line ending in a colon), when

* the line does not end like a sentence, and the next line's first word would not have
  fitted on it: the line, a space and that word are longer than ``1 - SLACK`` times the
  width (the slack is for a proportional font, such as a PDF's, whose lines hold more or
  fewer characters by the letters in them); or
* the next line starts in lower case, and is not page furniture by itself, and the line does
  not end a sentence (it may end in an abbreviation: "the U.S." / "military").

Furniture is recognised afterwards on whole paragraphs (``corpus.ingest``). A paragraph's
text keeps its line breaks, so that ``text[start:end]`` is the source unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from stancelab.corpus.splitting import ends_like_sentence, ends_with_abbreviation
from stancelab.corpus.text import is_blank

MAX_WIDTH = 120  # wrapping is at 60 to 80 characters (a PDF page: up to about 100)
MIN_SHORT_SHARE = 0.8
WIDTH_QUANTILE = 0.9
SLACK = 0.15
MIN_WRAPS = 2
_LINE = re.compile(r"[^\n]+")
_MARKER = re.compile(r"\s*(?:[-*•–—▪◦●]|\d{1,3}[.)]|[a-z][.)])\s")


def paragraphs(text: str, is_furniture: Callable[[str], bool]) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of ``text``, without trailing white space: a line, or
    the lines of one paragraph that a hard wrap broke (the module's rules). ``is_furniture``
    says whether one line alone is page furniture."""
    lines = [
        (m.start(), m.start() + len(m.group().rstrip()))
        for m in _LINE.finditer(text)
        if not is_blank(m.group())
    ]
    short = sorted(end - start for start, end in lines if end - start <= MAX_WIDTH)
    if not short or len(short) < MIN_SHORT_SHARE * len(lines):
        return lines
    width = short[math.ceil(WIDTH_QUANTILE * len(short)) - 1]
    texts = [text[start:end] for start, end in lines]
    marked = [bool(_MARKER.match(line)) for line in texts]
    wraps = []
    for i in range(len(lines) - 1):
        gap = text[lines[i][1] : lines[i + 1][0]]
        item = marked[i + 1] and (
            marked[i] or (i + 2 < len(lines) and marked[i + 2]) or texts[i].endswith(":")
        )
        wraps.append(
            gap.count("\n") == 1
            and not item
            and _is_wrap(texts[i], texts[i + 1], width, is_furniture)
        )
    if sum(wraps) < MIN_WRAPS:
        return lines
    spans = [lines[0]]
    for wrap, (start, end) in zip(wraps, lines[1:], strict=True):
        spans.append((spans.pop()[0], end) if wrap else (start, end))
    return spans


def _is_wrap(line: str, after: str, width: int, is_furniture: Callable[[str], bool]) -> bool:
    if len(line) > MAX_WIDTH:
        return False  # a paragraph that was never wrapped
    first_word = after.split()[0]
    ends = ends_like_sentence(line)
    if not ends and len(line) + 1 + len(first_word) > (1 - SLACK) * width:
        return True
    if first_word[0].islower():
        return (not ends or ends_with_abbreviation(line)) and not is_furniture(after)
    return False
