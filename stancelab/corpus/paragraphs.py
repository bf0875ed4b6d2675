"""A document's paragraphs: its lines, with the lines of hard-wrapped text joined again.

News copy as the corpus holds it has one paragraph per line. Text wrapped at a fixed width (an
e-mail, a copy from a PDF, a plain-text wire story) breaks every paragraph into lines of at
most that width; read line by line, its sentences would come apart into fragments, and short
fragments would be dropped as tag lines.

The break between two lines (with no blank line between them, and the second not a list
item) is read as a wrap when the next line starts with a lower-case letter, or when the line
does not end like a sentence and the next line's first word would not have fitted on it: the
line, a space and that word are longer than ``1 - SLACK`` times the document's widest line.
The widest line counts only lines of at most ``MAX_WIDTH`` characters (longer lines are
paragraphs that were never wrapped). The slack is for text set in a proportional font, such
as a PDF's, whose lines hold more or fewer characters by the letters in them. A document needs
``MIN_WRAPS`` such breaks before any is joined: one alone is what a long headline over its
first paragraph looks like.

Furniture is recognised afterwards, on whole paragraphs (``corpus.ingest``); a paragraph's
text keeps its line breaks, so that ``text[start:end]`` is the source unchanged.
"""

from __future__ import annotations

import re

from stancelab.corpus.splitting import ends_like_sentence

MAX_WIDTH = 160  # wrapping is at 60 to 80 characters, rarely more
SLACK = 0.15
MIN_WRAPS = 2
_LINE = re.compile(r"[^\n]+")
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d{1,3}[.)])\s")
_BLANK = " \t\r\u00a0"


def paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of ``text``: a non-blank line, or the lines of one
    paragraph that a hard wrap broke (the module's rules), without trailing blanks."""
    lines = []
    for match in _LINE.finditer(text):
        kept = match.group().rstrip(_BLANK)
        if kept.strip(_BLANK):
            lines.append((match.start(), match.start() + len(kept)))
    width = max((end - start for start, end in lines if end - start <= MAX_WIDTH), default=0)
    wraps = [_is_wrap(text, a, b, width) for a, b in zip(lines, lines[1:], strict=False)]
    if sum(wraps) < MIN_WRAPS:
        wraps = [False] * len(wraps)
    spans: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(lines):
        spans.append((spans.pop()[0], end) if i and wraps[i - 1] else (start, end))
    return spans


def _is_wrap(text: str, line: tuple[int, int], following: tuple[int, int], width: int) -> bool:
    current, after = text[line[0] : line[1]], text[following[0] : following[1]]
    if text[line[1] : following[0]].count("\n") != 1 or _LIST_ITEM.match(after):
        return False  # a blank line between them, or a list
    first_word = after.split()[0]
    if first_word[0].islower():
        return True  # no sentence starts in lower case
    return (
        not ends_like_sentence(current) and len(current) + 1 + len(first_word) > (1 - SLACK) * width
    )
