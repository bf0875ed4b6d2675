"""What the trained models make of a threat written in another script.

    python benchmarks/foreign_text.py [RUN ...]      # default: runs/transformer runs/baseline

One English threat and its Arabic, Russian, Urdu and Chinese translations, labelled by each
run: the labels and the highest of the four scores. Both models learned from English only;
the README's "Prediction" section quotes this.
"""

from __future__ import annotations

import sys
import warnings

from stancelab import predict
from stancelab.errors import ForeignScriptWarning

THREAT = {
    "English": "We will respond with full force if they attack our borders again.",
    "Arabic": "سنرد بكل قوة إذا هاجموا حدودنا مرة أخرى.",
    "Russian": "Мы нанесём ответный удар всей мощью, если они снова нападут на наши границы.",
    "Urdu": "ہم پوری طاقت سے جواب دیں گے اگر انہوں نے دوبارہ ہماری سرحدوں پر حملہ کیا۔",
    "Chinese": "如果他们再次攻击我们的边界，我们将全力反击。",
}


def main() -> None:
    runs = sys.argv[1:] or ["runs/transformer", "runs/baseline"]
    for run in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForeignScriptWarning)
            results = predict(list(THREAT.values()), model=run)
        for language, result in zip(THREAT, results, strict=True):
            labels = ", ".join(result.labels) or "none"
            flag = "  (foreign script)" if result.foreign_script else ""
            top = max(result.scores.values())
            print(f"{run}  {language:<8} {labels:<40} top score {top:.2f}{flag}")


if __name__ == "__main__":
    main()
