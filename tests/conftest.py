"""Shared fixtures: small in-memory labelled data, written as the project's JSONL format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY = [
    ("We will strike their bases if they cross the border again.", ["threat"]),
    ("The army warned of a heavy price for any further incursion.", ["threat"]),
    ("Our forces are ready to retaliate against any aggression.", ["threat"]),
    ("The minister said sanctions would follow any new missile test.", ["threat"]),
    ("Talks can resume once the rebels withdraw from the town.", ["conditional_deescalation"]),
    ("We are ready for a ceasefire provided the shelling stops.", ["conditional_deescalation"]),
    ("Force will only be used as a last resort, the ministry said.", ["conditional_deescalation"]),
    ("Normal relations are possible as long as the raids end.", ["conditional_deescalation"]),
    ("The government accused its neighbour of arming the militants.", ["accusation"]),
    ("Officials blamed foreign agents for the bombing of the pipeline.", ["accusation"]),
    ("The rebels are backed and financed by a hostile power, he said.", ["accusation"]),
    ("The spokesman alleged that the militia had shelled civilians.", ["accusation"]),
    ("The ministry denied any involvement in the attack on the convoy.", ["denial"]),
    ("Our troops played no role in the incident, the general said.", ["denial"]),
    ("The claims that we shelter fighters are baseless, the envoy said.", ["denial"]),
    ("The embassy rejected reports that it had funded the protest.", ["denial"]),
    ("The denial came as the rebels accused the army of massacres.", ["denial", "accusation"]),
    ("We reject these lies; it is they who arm the insurgents.", ["denial", "accusation"]),
    ("He accused Kabul of harbouring militants and vowed to retaliate.", ["threat", "accusation"]),
    (
        "We seek peace, but if attacked we will strike back hard.",
        ["threat", "conditional_deescalation"],
    ),
    ("Talks resumed in the capital after a two-week pause.", []),
    ("The border crossing reopened to trucks on Monday morning.", []),
    ("Fighting in the region has displaced thousands since 2021.", []),
    ("The summit is scheduled for next month in Geneva.", []),
]


def look_alikes(text: str) -> dict[str, str]:
    """``text`` (ASCII) as social media and PDFs write it: fullwidth letters, mathematical
    bold and sans-serif bold letters, and the "fi" and "fl" ligatures."""

    def letters(upper: int, lower: int) -> str:
        return "".join(
            chr(upper + ord(c) - 65)
            if "A" <= c <= "Z"
            else chr(lower + ord(c) - 97)
            if "a" <= c <= "z"
            else c
            for c in text
        )

    return {
        "fullwidth": "".join(
            chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text
        ),
        "bold": letters(0x1D400, 0x1D41A),
        "sans-serif bold": letters(0x1D5D4, 0x1D5EE),
        "ligatures": text.replace("fi", "\ufb01").replace("fl", "\ufb02"),
    }


@pytest.fixture
def tiny_texts() -> list[str]:
    return [t for t, _ in TINY]


@pytest.fixture
def tiny_labels() -> list[list[str]]:
    return [labels for _, labels in TINY]


@pytest.fixture
def tiny_gold(tmp_path: Path) -> Path:
    path = tmp_path / "gold.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i, (text, labels) in enumerate(TINY):
            row = {"id": f"s{i}", "doc_id": f"d{i % 3}", "text": text, "labels": labels}
            handle.write(json.dumps(row) + "\n")
    return path


# --- Label Studio: one real local server per test session (tests/test_labelstudio.py) ---------


def tree_snapshot(root: Path) -> dict:
    """Every file under ``root`` with its bytes and mode: compare before and after a command."""
    if not root.exists():
        return {}
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mode) for p in files}


@pytest.fixture(scope="session")
def labelstudio(request, tmp_path_factory):
    """A real Label Studio server (a ``LabelStudioServer``) shared by the session.

    Its data dir is a copy of a migrated template cached in pytest's cache (built once, about
    30 s, with ``label-studio init -q``), so a start takes seconds. Stopped at session end.
    """
    from stancelab.annotation.launcher import LS_VERSION, ensure_template
    from stancelab.annotation.server import LabelStudioServer

    name = f"labelstudio-template-{LS_VERSION}"
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    template_dir = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    template = ensure_template(Path(template_dir))
    server = LabelStudioServer(tmp_path_factory.mktemp("labelstudio") / "data", template=template)
    server.start()
    yield server
    server.stop()
