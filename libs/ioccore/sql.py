"""Parameter binding for ClickHouse SQL, the one escaping path for both engines.

ClickHouse 18.16 has no server-side query parameters, so values are bound on the client, as
clickhouse-driver does: `%(name)s` placeholders, each value escaped by its Python type. Unknown
types are refused rather than passed through. Never build SQL from user input any other way.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ioccore.errors import ContractError

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\b": "\\b",
    "\f": "\\f",
    "\r": "\\r",
    "\n": "\\n",
    "\t": "\\t",
    "\0": "\\0",
    "\a": "\\a",
    "\v": "\\v",
}
_ESCAPE_RE = re.compile("[\\\\'\b\f\r\n\t\0\a\v]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def quote_string(value: str) -> str:
    return "'" + _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value) + "'"


def literal(value: Any) -> str:
    """One Python value as a ClickHouse literal that means exactly that value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else "nan"
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"unhex('{bytes(value).hex()}')"
    if isinstance(value, dt.datetime):
        # Epoch seconds: the same instant whatever the server's time zone.
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return f"toDateTime({int(value.timestamp())})"
    if isinstance(value, dt.date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        inner = ", ".join(literal(v) for v in items)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(items) == 1 else ''})"
    raise ContractError(f"cannot bind a {type(value).__name__} as a ClickHouse parameter")


def render(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """Bind `%(name)s` placeholders. `%%` stands for a literal percent sign when params are given."""
    if not params:
        return sql
    return sql % {name: literal(value) for name, value in params.items()}


def identifier(name: str) -> str:
    """A table or column name from code (never from a request); refuses anything else."""
    if not _IDENTIFIER.match(name):
        raise ContractError(f"not a plain identifier: {name!r}")
    return name
