"""What the trained models make of a threat written in another script, or in look-alike
Latin letters.

    python benchmarks/foreign_text.py [RUN ...]      # default: runs/transformer runs/baseline

One English threat, its Arabic, Russian, Urdu and Chinese translations, and the English in
fullwidth, mathematical bold and small-capital letters (as social media posts write it),
labelled by each run: the labels and the highest of the four scores. Both models learned
from English only; fullwidth and bold letters are read as the plain ones
(``stancelab.corpus.text.model_text``), small capitals are not (they have no such form).
The README's "Prediction" section quotes this.
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
    "fullwidth": (
        "Ｗｅ　ｗｉｌｌ　ｒｅｓｐｏｎｄ　ｗｉｔｈ　ｆｕｌｌ　ｆｏｒｃｅ"
        "　ｉｆ　ｔｈｅｙ　ａｔｔａｃｋ　ｏｕｒ　ｂｏｒｄｅｒｓ　ａｇａｉｎ．"
    ),
    "bold": "𝐖𝐞 𝐰𝐢𝐥𝐥 𝐫𝐞𝐬𝐩𝐨𝐧𝐝 𝐰𝐢𝐭𝐡 𝐟𝐮𝐥𝐥 𝐟𝐨𝐫𝐜𝐞 𝐢𝐟 𝐭𝐡𝐞𝐲 𝐚𝐭𝐭𝐚𝐜𝐤 𝐨𝐮𝐫 𝐛𝐨𝐫𝐝𝐞𝐫𝐬 𝐚𝐠𝐚𝐢𝐧.",
    "small caps": "ᴡᴇ ᴡɪʟʟ ʀᴇꜱᴘᴏɴᴅ ᴡɪᴛʜ ꜰᴜʟʟ ꜰᴏʀᴄᴇ ɪꜰ ᴛʜᴇʏ ᴀᴛᴛᴀᴄᴋ ᴏᴜʀ ʙᴏʀᴅᴇʀꜱ ᴀɢᴀɪɴ.",
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
            print(f"{run}  {language:<10} {labels:<40} top score {top:.2f}{flag}")


if __name__ == "__main__":
    main()
