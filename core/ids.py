"""Ids typed or crafted by people: parsed once, the same way everywhere.

A value from a URL or a form is an id only when it is ASCII digits (`str.isdigit()` also
accepts "²" and Arabic-Indic digits, which `int()` then refuses or reads) and fits the
database's bigint: SQLite raises OverflowError beyond it and PostgreSQL refuses the query.
Anything else is no id at all, and the caller answers as it would for an unknown one.
"""

from __future__ import annotations

from collections.abc import Iterable

# The largest value of a bigint column (BigAutoField, every table's id).
MAX_ID = 2**63 - 1


def id_parse(value: object) -> int | None:
    """The id that `value` spells, or None when it spells none (not ASCII digits, 0, too big)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= MAX_ID else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def ids_parse(values: Iterable[object]) -> list[int]:
    """The ids among `values`, in order, anything else left out."""
    return [number for value in values if (number := id_parse(value)) is not None]
