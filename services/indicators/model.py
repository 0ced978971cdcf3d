"""The catalog compiled for streaming: which indicators each event type feeds, which units an event's subject
rolls up to under a boundary set, and the periods of an event time in the province's time zone.

Everything here is derived from contracts/catalog through ioccore.catalog; nothing is hard-coded but the
calendar rules (Asia/Ho_Chi_Minh is UTC+07:00 all year, ISO weeks, calendar quarters).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ioccore.catalog import Catalog, Indicator

CADENCES = ("day", "week", "month", "quarter", "year")
CADENCE_RANK = {c: i for i, c in enumerate(CADENCES)}
TZ_OFFSET_S = 7 * 3600  # Asia/Ho_Chi_Minh: UTC+07:00, no daylight saving
PROVINCE_TZ = "Asia/Ho_Chi_Minh"
EPOCH = dt.date(1970, 1, 1)


# ---------------------------------------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------------------------------------
def local_day(epoch_s: float) -> int:
    """Day number (days since 1970-01-01) of an instant in the province's time zone."""
    return int((epoch_s + TZ_OFFSET_S) // 86400)


@lru_cache(maxsize=8192)
def period_labels(day: int) -> tuple[str, str, str, str, str]:
    """The labels of the day, ISO week, month, quarter and year containing a local day number."""
    d = EPOCH + dt.timedelta(days=day)
    y, w, _ = d.isocalendar()
    return (
        d.isoformat(),
        f"{y}-W{w:02d}",
        f"{d.year}-{d.month:02d}",
        f"{d.year}-Q{(d.month - 1) // 3 + 1}",
        str(d.year),
    )


def parse_period(label: str) -> tuple[str, dt.date]:
    """A period label -> (cadence, its first day). Raises ValueError for a label that is not one."""
    if len(label) == 10:
        return "day", dt.date.fromisoformat(label)
    if "-W" in label:
        return "week", dt.date.fromisocalendar(int(label[:4]), int(label[6:]), 1)
    if "-Q" in label:
        q = int(label[6:])
        if not 1 <= q <= 4:
            raise ValueError(label)
        return "quarter", dt.date(int(label[:4]), 3 * q - 2, 1)
    if len(label) == 7:
        return "month", dt.date(int(label[:4]), int(label[5:]), 1)
    if len(label) == 4:
        return "year", dt.date(int(label), 1, 1)
    raise ValueError(label)


@lru_cache(maxsize=65536)
def period_start(label: str) -> dt.date:
    return parse_period(label)[1]


@lru_cache(maxsize=65536)
def period_last_day(label: str) -> int:
    """Local day number of the last day of a period."""
    cadence, first = parse_period(label)
    if cadence == "day":
        last = first
    elif cadence == "week":
        last = first + dt.timedelta(days=6)
    elif cadence == "year":
        last = dt.date(first.year, 12, 31)
    else:
        months = 1 if cadence == "month" else 3
        y, m = divmod(first.month - 1 + months, 12)
        last = dt.date(first.year + y, m + 1, 1) - dt.timedelta(days=1)
    return (last - EPOCH).days


# ---------------------------------------------------------------------------------------------------------
# Units under a boundary set
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Boundaries:
    """How an event's subject (a unit code of the 2024 set, as department systems send it, or of the set
    itself) rolls up: subject -> ((level, unit), ...), finest first."""

    name: str  # "2024", "2025"
    rollup: dict[str, tuple[tuple[str, str], ...]]
    levels: dict[str, str]  # unit code -> level, for the set's own units

    def units_of(self, subject: str) -> tuple[tuple[str, str], ...] | None:
        return self.rollup.get(subject)


def boundaries(catalog: Catalog, name: str) -> Boundaries:
    units = catalog.units_by_set.get(name)
    if not units:
        raise ValueError(f"unknown boundary set {name!r}: known {sorted(catalog.units_by_set)}")
    by_code = {u.code: u for u in units}
    levels = {u.code: u.level for u in units}

    def chain(code: str) -> tuple[tuple[str, str], ...]:
        out = []
        cur: str | None = code
        while cur is not None:
            u = by_code[cur]
            out.append((u.level, u.code))
            cur = u.parent
        return tuple(out)

    rollup = {code: chain(code) for code in by_code}
    default_units = catalog.units_by_set.get("2024", [])
    if name != "2024":
        # Department systems still send 2024 codes: map each to where it went.
        province = next(u.code for u in units if u.level == "province")
        mapped = {m.old_code: m.default_new_code for m in catalog.unit_mapping}
        for u in default_units:
            if u.code in rollup:
                continue
            if u.code in mapped and mapped[u.code] in by_code:
                rollup[u.code] = chain(mapped[u.code])
            else:  # an old district (or a unit with no successor): only the province contains it
                rollup[u.code] = (("province", province),)
    return Boundaries(name, rollup, levels)


# ---------------------------------------------------------------------------------------------------------
# Indicators
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One indicator computed from events (raw or reported), ready for the hot loop."""

    index: int
    id: str
    field: str
    measure: str  # count sum avg min max distinct_count quantile on_time_rate last
    event_type: str
    filter: tuple[tuple[str, Any], ...]  # (key, value) or (key, frozenset) for `in`
    value_field: str | None
    q: float | None
    done_field: str | None
    due_field: str | None
    scale: float
    scopes: frozenset[str]
    cadences: tuple[int, ...]  # indexes into CADENCES
    reported: bool
    finest: int  # reported figures: the cadence index whose figures add up (sum/min/max/count/avg)

    def matches(self, data: dict[str, Any]) -> bool:
        for key, want in self.filter:
            got = data.get(key)
            if isinstance(want, frozenset):
                if _hashable(got) not in want:
                    return False
            elif got != want or type(got) is not type(want):
                return False
        return True


def _hashable(v: Any) -> Any:
    return v if isinstance(v, str | int | float | bool) or v is None else json.dumps(v)


@dataclass(frozen=True)
class Ratio:
    index: int
    id: str
    field: str
    numerator: str
    denominator: str
    scale: float
    scopes: frozenset[str]
    cadences: tuple[int, ...]


@dataclass
class Model:
    catalog_hash: str
    specs: list[Spec]
    ratios: list[Ratio]
    by_type: dict[str, list[Spec]]
    by_id: dict[str, Spec | Ratio]
    ratios_of: dict[str, list[Ratio]] = field(default_factory=dict)  # part id -> ratios using it
    fields: dict[str, str] = field(default_factory=dict)  # indicator id -> field


def _filter(raw: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    out: list[tuple[str, Any]] = []
    for key, want in sorted(raw.items()):
        out.append((key, frozenset(_hashable(w) for w in want) if isinstance(want, list) else want))
    return tuple(out)


def catalog_hash(catalog: Catalog) -> str:
    h = hashlib.sha256()
    for ind in catalog.indicators:
        h.update(json.dumps(_definition(ind), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _definition(ind: Indicator) -> dict[str, Any]:
    return {
        "id": ind.id,
        "measure": ind.measure,
        "source": None if ind.source is None else [list(ind.source.event_types), ind.source.filter],
        "value_field": ind.value_field,
        "q": ind.q,
        "ratio": [ind.numerator, ind.denominator, ind.scale],
        "on_time": None if ind.on_time is None else [ind.on_time.done_field, ind.on_time.due_field],
        "scopes": sorted(ind.scopes),
        "cadences": list(ind.cadences),
    }


def compile_model(catalog: Catalog) -> Model:
    specs: list[Spec] = []
    ratios: list[Ratio] = []
    for index, ind in enumerate(catalog.indicators):
        cadences = tuple(sorted(CADENCE_RANK[c] for c in ind.cadences))
        if ind.measure == "ratio":
            assert ind.numerator and ind.denominator
            ratios.append(
                Ratio(
                    index,
                    ind.id,
                    ind.field,
                    ind.numerator,
                    ind.denominator,
                    ind.scale if ind.scale is not None else 1.0,
                    frozenset(ind.scopes),
                    cadences,
                )
            )
            continue
        assert ind.source is not None
        for event_type in ind.source.event_types:
            specs.append(
                Spec(
                    index=index,
                    id=ind.id,
                    field=ind.field,
                    measure=ind.measure,
                    event_type=event_type,
                    filter=_filter(ind.source.filter),
                    value_field=ind.value_field,
                    q=ind.q,
                    done_field=ind.on_time.done_field if ind.on_time else None,
                    due_field=ind.on_time.due_field if ind.on_time else None,
                    scale=ind.scale
                    if ind.scale is not None
                    else (100.0 if ind.measure == "on_time_rate" else 1.0),
                    scopes=frozenset(ind.scopes),
                    cadences=cadences,
                    reported=ind.is_reported,
                    finest=cadences[0],
                )
            )
    by_type: dict[str, list[Spec]] = {}
    for s in specs:
        by_type.setdefault(s.event_type, []).append(s)
    by_id: dict[str, Spec | Ratio] = {s.id: s for s in specs}
    by_id.update({r.id: r for r in ratios})
    ratios_of: dict[str, list[Ratio]] = {}
    for r in ratios:
        ratios_of.setdefault(r.numerator, []).append(r)
        if r.denominator != r.numerator:
            ratios_of.setdefault(r.denominator, []).append(r)
    return Model(
        catalog_hash=catalog_hash(catalog),
        specs=specs,
        ratios=ratios,
        by_type=by_type,
        by_id=by_id,
        ratios_of=ratios_of,
        fields={ind.id: ind.field for ind in catalog.indicators},
    )
