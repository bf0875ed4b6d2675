"""Sentence splitting of hard-wrapped copies of the corpus.

    python benchmarks/wrapped_text.py

Each article in ``seeds/`` is wrapped line by line, as an e-mail client or a PDF would, and
split again with ``stancelab.corpus.ingest.segment_document``. Widths 60, 72 and 80 are a
fixed-width wrap (``textwrap``, breaking lines at spaces only: a compound broken at its
hyphen, "cross-\\nborder", keeps the line break in its sentence and so gets another id);
"proportional" breaks lines at a width in points, with the
letters of a sans-serif font of about 75 letters a line. A sentence of the wrapped copy is
recovered when its id (the document and a hash of its words, white space aside) is one of
the unwrapped article's. Prints, per width: the unwrapped article's sentences, how many
were recovered, and the wrapped copy's other sentences (fragments, or sentences joined).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from stancelab.corpus.ingest import Document, segment_document

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
# Rough advance widths (in ems) of a sans-serif font; every other character is 0.56.
NARROW, WIDE = dict.fromkeys("fijlrtI.,:;'’!|()[] ", 0.28), dict.fromkeys("mwMW", 0.86)
CAPITAL = 0.68
POINTS = 41.0  # ems a line: about 75 letters of running text


def advance(char: str) -> float:
    if char in NARROW:
        return NARROW[char]
    if char in WIDE:
        return WIDE[char]
    return CAPITAL if char.isupper() else 0.56


def proportional(line: str) -> str:
    """``line`` broken greedily at ``POINTS`` ems, between words."""
    out, current, used = [], [], 0.0
    for word in line.split():
        width = sum(advance(c) for c in word) + (advance(" ") if current else 0)
        if current and used + width > POINTS:
            out.append(" ".join(current))
            current, used = [], 0.0
            width = sum(advance(c) for c in word)
        current.append(word)
        used += width
    out.append(" ".join(current))
    return "\n".join(out)


def wrapped(text: str, width: int | None) -> str:
    if width is None:
        wrap = proportional
    else:

        def wrap(line: str) -> str:
            return textwrap.fill(line, width, break_on_hyphens=False)

    return "\n".join(wrap(line) if line.strip() else line for line in text.split("\n"))


def main() -> None:
    articles = sorted(SEEDS.glob("*.txt"))
    print(f"{len(articles)} articles of seeds/")
    print(f"{'width':<13}{'sentences':>10}{'recovered':>11}{'other':>7}")
    for width in (60, 72, 80, None):
        total = recovered = other = 0
        for path in articles:
            text = path.read_text(encoding="utf-8")
            plain, _ = segment_document(Document(path.stem, text, str(path)))
            wrapped_text = wrapped(text, width)
            found, _ = segment_document(Document(path.stem, wrapped_text, str(path)))
            ids = {s.id for s in plain}
            total += len(ids)
            recovered += len(ids & {s.id for s in found})
            other += sum(s.id not in ids for s in found)
        name = "proportional" if width is None else str(width)
        print(f"{name:<13}{total:>10}{recovered:>11}{other:>7}")


if __name__ == "__main__":
    main()
