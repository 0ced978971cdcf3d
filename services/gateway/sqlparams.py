"""Parameter helpers for `x IN %(values)s`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def in_(values: Iterable[Any]) -> tuple[Any, ...]:
    """A tuple to bind after IN. ClickHouse 18.16 cannot parse a one-element tuple literal `('a',)`, so a
    single value is given twice (the same set). Never empty: callers check that first."""
    t = tuple(values)
    if not t:
        raise ValueError("an IN list needs at least one value")
    return t * 2 if len(t) == 1 else t
