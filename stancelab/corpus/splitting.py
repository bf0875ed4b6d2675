"""Sentence splitting for news text, with character offsets.

pysbd (rule-based, no downloaded model) does the first cut. Three fixes on top make it right
for news copy, each covered by tests taken from the corpus:

* a quotation holding several sentences is split at its inner sentence boundaries
  ("... borders. Such incidents ...") — pysbd keeps a whole quotation together;
* a closing quote mark or an attribution ("Asif rhetorically questioned, ...") that pysbd
  cut off is joined back to the sentence it belongs to;
* no split after abbreviations, initials and dates (U.S., Feb. 20, Mr., Dr., No.).

Every span satisfies ``text[start:end] == sentence``, trimmed of surrounding white space
(including no-break spaces).
"""

from __future__ import annotations

import re
from functools import lru_cache

ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof gen col lt sgt capt cpt maj adm cmdr rep sen gov pres st no nos vs
    jan feb mar apr jun jul aug sep sept oct nov dec inc ltd co corp jr sr dept univ fig vol
    approx est mt ft pp p op al""".split()
)
_CLOSERS = "\"”’'»)]"
_OPENERS = "\"“‘'«(["
_SPEECH_VERBS = (
    "said|says|added|adds|stated|states|told|tells|remarked|asserted|noted|warned|warns|claimed|"
    "claims|replied|explained|insisted|declared|continued|questioned|asked|argued|wrote|"
    "concluded|lamented|joked|stressed|emphasized|emphasised|underscored|cautioned|announced"
)
# "Asif rhetorically questioned, ..." or "he said." cut off after a closing quote.
_ATTRIBUTION = re.compile(
    rf"^(?:(?:[A-Z][\w’'.-]*|the|a|an)\s+){{0,4}}(?:\w+ly\s+)?(?:{_SPEECH_VERBS})\b"
)
# A candidate boundary inside a segment: terminal punctuation, optional closing quotes,
# white space, then an opening quote or an upper-case letter.
_INNER_BOUNDARY = re.compile(
    rf"[.!?…]+[{re.escape(_CLOSERS)}]*(\s+)(?=[{re.escape(_OPENERS)}]*[A-Z0-9])"
)
# A quotation that ends in ? or ! may be followed by its attribution in the same sentence.
_QUESTION_QUOTE = re.compile(rf"[?!][{re.escape(_CLOSERS)}]+$")
_WS = " \t\r\n\u00a0\u2009\u202f\u200b\ufeff"


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


# pysbd's time grows with the square of the text it is given (its abbreviation replacer
# rescans the text), so a long line is first cut into pieces of about CHUNK characters at
# boundaries that the rules below split at anyway; a stretch with no such boundary is cut
# at white space every MAX_CHUNK characters. Both keep the total time linear.
CHUNK = 2_000
MAX_CHUNK = 5_000


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) offsets of the sentences in ``text`` (one paragraph or more)."""
    spans: list[tuple[int, int]] = []
    for chunk_start, chunk_end in _chunks(text):
        spans.extend(_segment(text, chunk_start, chunk_end))
    return _merge_fragments(text, [s for s in (_trim(text, a, b) for a, b in spans) if s])


def _segment(text: str, chunk_start: int, chunk_end: int) -> list[tuple[int, int]]:
    """pysbd's segments of ``text[chunk_start:chunk_end]``, split further by ``_split_inner``."""
    chunk = text[chunk_start:chunk_end]
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in _segmenter().segment(chunk):
        start = chunk.find(piece, cursor)
        if start < 0:  # pysbd normalised something; fall back to a trimmed search
            start = chunk.find(piece.strip(_WS), cursor)
            piece = piece.strip(_WS)
        end = start + len(piece)
        cursor = end
        spans.extend(_split_inner(text, chunk_start + start, chunk_start + end))
    return spans


def _chunks(text: str) -> list[tuple[int, int]]:
    """Cut a long text into pieces for pysbd, at sentence boundaries ``_split_inner`` keeps."""
    if len(text) <= CHUNK:
        return [(0, len(text))]
    cuts: list[tuple[int, int]] = []
    start = 0
    for match in _INNER_BOUNDARY.finditer(text):
        cut = match.start(1)
        if cut - start < CHUNK:
            continue
        if _is_boundary(text, match, len(text)):
            cuts.append((start, cut))
            start = match.end()
    cuts.append((start, len(text)))
    return [piece for a, b in cuts for piece in _hard_cuts(text, a, b)]


def _hard_cuts(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Pieces of at most about MAX_CHUNK characters, cut at white space where there is any."""
    pieces = []
    while end - start > MAX_CHUNK:
        cut = text.rfind(" ", start + MAX_CHUNK // 2, start + MAX_CHUNK)
        cut = cut if cut > start else start + MAX_CHUNK
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def _split_inner(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split a pysbd segment at sentence boundaries it left inside quotations."""
    out = []
    seg_start = start
    for match in _INNER_BOUNDARY.finditer(text, start, end):
        if not _is_boundary(text, match, end, seg_start):
            continue
        out.append((seg_start, match.start(1)))
        seg_start = match.end()
    out.append((seg_start, end))
    return out


def _is_boundary(text: str, match: re.Match, end: int, seg_start: int | None = None) -> bool:
    """Whether an ``_INNER_BOUNDARY`` match ends a sentence (``end``: where the text that
    may hold an attribution ends; ``seg_start``: where the current sentence starts)."""
    cut = match.start(1)
    word_from = max(seg_start if seg_start is not None else 0, match.start() - 64)
    if _is_abbreviation(text, word_from, match.start()):
        return False
    if _QUESTION_QUOTE.fullmatch(text, match.start(), cut) and _ATTRIBUTION.match(
        text, match.end(), end
    ):
        return False  # “... coming?” Asif asked — the quote ends, the sentence does not
    return True


def ends_with_abbreviation(text: str) -> bool:
    """True when ``text`` ends with an abbreviation or initials ("U.S.", "Feb.", "J."), whose
    dot does not end a sentence."""
    text = text.rstrip(_WS)
    return text.endswith(".") and _is_abbreviation(text, max(0, len(text) - 65), len(text) - 1)


def _is_abbreviation(text: str, seg_start: int, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([\w.’'-]+)$", text[seg_start:dot])
    if not word:
        return False
    token = word.group(1)
    if re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", token):  # U.S, J.R, single initials
        return True
    return token.lower() in ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start] in _WS:
        start += 1
    while end > start and text[end - 1] in _WS:
        end -= 1
    return (start, end) if end > start else None


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join stray closing quotes and cut-off attributions to the preceding sentence."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        if (
            merged
            and text[merged[-1][0] : merged[-1][1]].count("\n") == 0
            and (
                piece.strip(_CLOSERS + _WS + ".,;:") == ""
                or (
                    _QUESTION_QUOTE.search(text, merged[-1][0], merged[-1][1])
                    and "\n" not in text[merged[-1][1] : start]
                    and _ATTRIBUTION.match(piece)
                )
            )
        ):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def ends_like_sentence(text: str) -> bool:
    """True when the text ends with terminal punctuation (possibly inside closing quotes)."""
    return bool(re.search(rf"[.!?…][{re.escape(_CLOSERS)}]*$", text.strip(_WS)))
