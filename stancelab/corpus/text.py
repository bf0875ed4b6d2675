"""What makes a text labellable: the one rule every input path applies (``predict()`` on a
list, ``predict --input`` rows, ``corpus`` lines)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# White space, control characters and invisible format characters (zero-width spaces and
# joiners, direction marks, soft hyphens, the BOM): a text made only of these is empty.
_VISIBLE = re.compile(
    r"[^\s\x00-\x1f\x7f-\x9f"
    r"\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def is_blank(text: str) -> bool:
    """True when ``text`` is only white space (any: form feeds, line separators, ideographic
    spaces), control characters or invisible characters."""
    return not _VISIBLE.search(text)


def one_line(text: str) -> str:
    """``text`` with each run of white space, line breaks too, as one space, trimmed."""
    return " ".join(text.split())


def text_problem(text: object) -> str | None:
    """Why ``text`` cannot be labelled (one phrase), or None if it can: not a string, holding
    a NUL (U+0000: never in text, but in every line of a UTF-16 file read as UTF-8, and
    dropped or refused by C programs and databases), empty (only white space, control
    characters or invisible characters), or not encodable as UTF-8 (an unpaired surrogate,
    such as an undecodable byte of a command-line argument). Other control characters among
    visible ones are ordinary characters: a vertical tab or form feed breaks a line."""
    if not isinstance(text, str):
        return f"must be a string, not {type(text).__name__}"
    if "\x00" in text:
        return f"contains a NUL character (U+0000) at character {text.index(chr(0))}"
    if is_blank(text):
        return "is empty or only white space or invisible characters"
    return unicode_problem(text)


def unicode_problem(value: str) -> str | None:
    """Why ``value`` cannot be written as UTF-8 (one phrase), or None if it can."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"is not valid Unicode (an unpaired surrogate or undecodable byte at character "
            f"{exc.start})"
        )
    return None


# A byte that was not UTF-8, as a reader with ``errors="surrogateescape"`` keeps it.
_UNDECODED = re.compile(r"[\udc80-\udcff]")


def undecoded_byte(value: str) -> int | None:
    """Where ``value`` holds its first byte that was not UTF-8 where it was read from (a file
    opened with ``errors="surrogateescape"``, a command-line argument: U+DC80 to U+DCFF), or
    None."""
    found = _UNDECODED.search(value)
    return None if found is None else found.start()


def preview(text: str, width: int = 60) -> str:
    """``text`` on one line (each run of white space, line breaks too, one space), cut to
    ``width`` characters with "..." when longer, for one-line messages and table rows."""
    text = one_line(text)
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def first_names(names: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` of ``names``, comma-separated, then ", ..." when there are more:
    a list of file names or ids in a one-line message."""
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


class _AsciiFolds(dict):
    """``str.translate`` table, filled on first sight of each character: the character's
    compatibility form (NFKC) when that form is plain ASCII, else the character itself."""

    def __missing__(self, code: int) -> str:
        folded = unicodedata.normalize("NFKC", chr(code))
        self[code] = folded if folded.isascii() else chr(code)
        return self[code]


_ASCII_FOLDS = _AsciiFolds()


def model_text(text: str) -> str:
    """``text`` as both models read it: every character whose compatibility form (Unicode
    NFKC) is plain ASCII is read as that form. Look-alike letters become the letters the
    models learned from: fullwidth and mathematical letters and digits ("\uff37\uff25",
    "\U0001d416\U0001d41e"), circled letters, ligatures ("\ufb01" is "fi"), no-break spaces,
    "\u2026" ("..."). Other characters are kept as they are: the Arabic ligature "\ufdfa"
    (whose NFKC form is a phrase of 18 Arabic letters), small capitals (which have no
    compatibility form), Cyrillic letters. Character by character, so time stays linear
    (whole-text NFKC is quadratic in a long run of combining marks). Only the models' input
    changes: outputs and annotations keep the text as given."""
    return text if text.isascii() else text.translate(_ASCII_FOLDS)


_WORD = re.compile(r"\w+")


def match_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as the models read it, with case, quotes and punctuation set
    aside: what decides whether two sentences are copies of each other ("’" against "'",
    "…" against "...", a ligature against its letters make no difference)."""
    return tuple(_WORD.findall(model_text(text).casefold()))


def copy_key(text: str) -> tuple[str, ...]:
    """What two sentences share when one is a copy of the other: their ``match_words``, or,
    for a sentence without words ("—", "?!"), the sentence itself (white space aside), marked
    so it meets no sentence of words; otherwise every such sentence would copy every other."""
    words = match_words(text)
    return words if words else ("\x00" + one_line(model_text(text)),)


def foreign_script(text: str) -> bool:
    """True when fewer than half of ``text``'s letters, as the models read them
    (``model_text``), are Latin letters (Arabic, Cyrillic, Chinese...): both models learned
    from English only, and their labels for such a text are unreliable. A text without
    letters (a list marker, a phone number, emoji) is not foreign, and text in another
    language written in Latin letters (French, say) is not caught."""
    letters = latin = 0
    for char in model_text(text):
        if char.isalpha():
            letters += 1
            latin += unicodedata.name(char, "").startswith("LATIN ")
    return 2 * latin < letters
