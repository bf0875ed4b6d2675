"""The stance label scheme, defined once.

Everything else derives from this module: the Label Studio config, the models' output order,
the reports. A sentence carries any subset of ``LABELS``; the empty set means *none*.
The full annotator's guide is ``labels/GUIDELINES.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    name: str
    description: str
    hotkey: str


SCHEME: tuple[Label, ...] = (
    Label(
        "threat",
        "Announces, warns of or signals readiness to use force, retaliation or a punitive "
        "measure against a party, conditional or not.",
        "1",
    ),
    Label(
        "conditional_deescalation",
        "Offers restraint, peace, talks, a ceasefire or cooperation bounded by a condition "
        "on the other side or on events.",
        "2",
    ),
    Label(
        "accusation",
        "Attributes wrongdoing, hostile intent, complicity or responsibility for harm to a party.",
        "3",
    ),
    Label(
        "denial",
        "Rejects a charge, claim or characterisation; denies responsibility, involvement, "
        "intent or influence.",
        "4",
    ),
)

LABELS: tuple[str, ...] = tuple(label.name for label in SCHEME)
NONE = "none"  # display name for the empty label set; never a member of a label set


class UnknownLabelError(ValueError):
    """A label name that is not part of the scheme."""


def normalize(labels: Iterable[str], *, where: str = "") -> tuple[str, ...]:
    """Validate label names and return them as a tuple in scheme order, without duplicates."""
    if isinstance(labels, str):
        raise TypeError(f"labels must be a list of names, not a string{_at(where)}: {labels!r}")
    given = list(labels)
    unknown = sorted({str(x) for x in given if x not in LABELS})
    if unknown:
        raise UnknownLabelError(
            f"unknown label(s) {', '.join(map(repr, unknown))}{_at(where)}; "
            f"expected any of {', '.join(LABELS)} (an empty list means none)"
        )
    present = set(given)
    return tuple(name for name in LABELS if name in present)


def from_vector(row: Iterable[int | bool | float]) -> tuple[str, ...]:
    """Label tuple from a multi-hot (or boolean) row in scheme order."""
    values = list(row)
    if len(values) != len(LABELS):
        raise ValueError(f"expected {len(LABELS)} values, got {len(values)}")
    return tuple(name for name, on in zip(LABELS, values, strict=True) if on)


def display(labels: Iterable[str]) -> str:
    """Human-readable label set: 'threat+accusation' or 'none'."""
    names = tuple(labels)
    return "+".join(names) if names else NONE


def _at(where: str) -> str:
    return f" in {where}" if where else ""
