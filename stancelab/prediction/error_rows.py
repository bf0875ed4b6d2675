"""What the summary of ``predict --input`` says of the output's error rows, on both
engines: the first one (where its record came from and its message, on one line), how many
distinct messages there were and where to find them all. Kept while the rows are counted
(``rows.count_rows``, ``ray_files.rows_sink``) and, for ``--resume``, in the checkpoint:
never a second pass over the output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from stancelab.corpus.text import preview

MESSAGES_KEPT = 20  # distinct error messages (numbers aside) counted; more are "over 20"
MESSAGE_WIDTH = 300  # an error message is shown on one line, cut to this many characters:
# our own messages whole (the longest, a file not in UTF-8, with its iconv advice)
WHERE_KEYS = ("path", "line", "id", "doc_id")  # what an error row says of its record


def first_error(rows: Iterable[dict]) -> dict | None:
    """The first error row of ``rows``: its record's place and its ``error``; None if none."""
    for row in rows:
        if row.get("error") is not None:
            return {k: row[k] for k in (*WHERE_KEYS, "error") if row.get(k) is not None}
    return None


def input_order(error: dict) -> tuple[Path, int]:
    """The sort key of an error row (``first_error``) by where its record was read: its
    file in a folder (the Ray engine's ``path``), as ``walk_folder`` orders the files it
    reads (Paths, by component: ``2024/a.txt`` before ``2024-old/a.txt``, which strings
    put the other way), then its line. Ray writes rows in no set order; the error row named
    first is the first in the input."""
    return Path(error.get("path", "")), error.get("line") or 0


def message_kind(message: str) -> str:
    """``message`` with its numbers (a character's place, a byte ``0xe9``) as ``N``: the
    messages of one cause, such as a file in cp1252 with the byte at different places."""
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "N", message)


def distinct_messages(kept: list[str], more: Iterable[str]) -> list[str]:
    """``kept`` with the first message of each kind (``message_kind``) of ``more`` that it
    lacks, up to ``MESSAGES_KEPT`` + 1: enough to say "over 20", never every message of a
    large output."""
    out, seen = list(kept), {message_kind(m) for m in kept}
    for message in more:
        if len(out) > MESSAGES_KEPT:
            break
        if message_kind(message) not in seen:
            seen.add(message_kind(message))
            out.append(message)
    return out


def errors_note(errors: int, first: dict | None, messages: list[str], output: str) -> str:
    """A second line of the summary for ``errors`` error rows, naming the ``first`` one
    (None: not known, a run resumed from an earlier stancelab's checkpoint) and counting
    the distinct ``messages``; "" without error rows."""
    if not errors:
        return ""
    every = f'every error row has its message under "error" in {output}'
    if not first:
        return f"\n{errors} error row(s): {every}"
    where = [str(first["path"])] if "path" in first else []
    where += [f"line {first['line']}"] if "line" in first else []
    where += [f"{key} {first[key]!r}" for key in ("id", "doc_id") if key in first]
    note = f"\nfirst error row ({', '.join(where)}): {preview(first['error'], MESSAGE_WIDTH)}"
    if len(messages) > 1:
        many = f"over {MESSAGES_KEPT}" if len(messages) > MESSAGES_KEPT else len(messages)
        note += f"; {many} distinct messages"
    return f"{note}; {every}"
