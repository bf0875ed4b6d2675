"""Sentence splitting of one long line: CPU time at 100 KB and 1 MB, and their ratio.

    python benchmarks/split_speed.py [--runs 5] [--out benchmarks/results/split_speed.json]

Not a test: it measures. The text is the sentences of the shipped corpus (``seeds/``)
joined by spaces and repeated to each size: one long line, the shape that made the old
splitter quadratic. CPU time of this process (other processes
on a shared machine do not count), best of ``--runs`` for each size, the sizes taking turns.
A linear splitter gives a ratio of about 10. The tests check the same property without a
clock (``tests/test_reliability_long_line.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from stancelab.corpus.ingest import Document, segment_document
from stancelab.files import write_json

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100_000, 1_000_000)


def article(size: int) -> str:
    """``size`` characters of the seed articles' sentences (page furniture dropped, as the
    corpus command does) as one line."""
    kept = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        found, _ = segment_document(
            Document(path.stem, path.read_text(encoding="utf-8"), path.stem)
        )
        kept += [" ".join(s.text.split()) for s in found]
    line = " ".join(kept) + " "
    return (line * (size // len(line) + 1))[:size]


def cpu_seconds(text: str) -> float:
    started = time.process_time()
    segment_document(Document("d", text, "d"))
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/split_speed.json")
    args = parser.parse_args(argv)
    texts = {size: article(size) for size in SIZES}
    cpu_seconds(article(3_000))  # builds pysbd's segmenter
    best = {size: float("inf") for size in SIZES}
    for _ in range(args.runs):
        for size, text in texts.items():
            best[size] = min(best[size], cpu_seconds(text))
    small, large = (best[size] for size in SIZES)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown cpu'}, "
        f"Python {platform.python_version()}",
        "runs": args.runs,
        "cpu_seconds_100kb": round(small, 3),
        "cpu_seconds_1mb": round(large, 3),
        "ratio": round(large / small, 2),
    }
    print(json.dumps(result, indent=2))
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
