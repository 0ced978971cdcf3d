"""HTTP ingest for department systems that cannot write to Kafka: validate against the contracts, check the
credential's source, drop re-sent events, publish, and answer only once Kafka has the records."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from functools import lru_cache
from typing import Any

import msgspec

from ioccore.clickhouse import ClickHouse
from ioccore.contracts import TYPE_PREFIX, Contracts, Rejection
from ioccore.topics import EVENTS, HOTLINE_CALLS
from services.gateway.auth.models import Principal, Role
from services.gateway.ingest.models import Rejected
from services.gateway.sqlparams import in_

HOTLINE_PREFIX = TYPE_PREFIX + "hotline."
_enc = msgspec.json.Encoder()


@lru_cache(maxsize=4)
def types_by_source(contracts: Contracts) -> dict[str, frozenset[str]]:
    """Which event types each department source emits, as the contracts' examples declare."""
    out: dict[str, set[str]] = defaultdict(set)
    for _path, doc in contracts.examples():
        for ev in doc if isinstance(doc, list) else [doc]:
            if isinstance(ev, dict) and isinstance(ev.get("source"), str) and isinstance(ev.get("type"), str):
                out[ev["source"]].add(ev["type"])
    return {k: frozenset(v) for k, v in out.items()}


def allowed_types(principal: Principal, contracts: Contracts) -> frozenset[str] | None:
    """None: any type (province_admin); else the types this credential may emit."""
    if principal.role is Role.province_admin:
        return None
    if principal.role is not Role.department_system:
        return frozenset()
    if principal.types is not None:
        return frozenset(principal.types)
    return types_by_source(contracts).get(principal.source or "", frozenset())


def validate(
    body: bytes, events: list[Any], principal: Principal, contracts: Contracts
) -> tuple[list[dict[str, Any]], list[Rejected], list[Rejected]]:
    """(valid events, invalid ones, ones the credential may not emit). `body` is the request (one event or a
    JSON array), `events` the same decoded as dicts (forwarded as they came, extension attributes included).
    Validation takes ioccore's typed fast path when every event is valid."""
    allowed = allowed_types(principal, contracts)
    ok: list[dict[str, Any]] = []
    invalid: list[Rejected] = []
    forbidden: list[Rejected] = []
    results = list(contracts.decode(body))
    if len(results) != len(events):  # a whole-record rejection (e.g. size): name it once
        reason = next((r.reason for r in results if isinstance(r, Rejection)), "invalid request")
        return [], [Rejected(position=0, id=None, reason=reason)], []
    for i, (ev, result) in enumerate(zip(events, results, strict=True)):
        ev_id = ev.get("id") if isinstance(ev, dict) and isinstance(ev.get("id"), str) else None
        if isinstance(result, Rejection):
            invalid.append(Rejected(position=i, id=ev_id, reason=result.reason))
            continue
        if principal.role is Role.department_system and result.source != principal.source:
            forbidden.append(
                Rejected(
                    position=i,
                    id=ev_id,
                    reason=f"nguồn {result.source!r} không phải của bạn / this credential emits only as source "
                    f"{principal.source!r}",
                )
            )
            continue
        if allowed is not None and result.type not in allowed:
            forbidden.append(
                Rejected(
                    position=i,
                    id=ev_id,
                    reason=f"loại sự kiện {result.type} không thuộc nguồn của bạn / type {result.type} is not "
                    f"one of this credential's source's types",
                )
            )
            continue
        ok.append(ev)
    return ok, invalid, forbidden


def _key(e: dict[str, Any]) -> str:
    return f"{e['source']}\x00{e['id']}"


class Dedup:
    """Recognises re-sent events: the last N (source, id) keys in memory, older ones in events_archive."""

    def __init__(self, ch: ClickHouse, size: int, use_archive: bool):
        self.ch = ch
        self.size = size
        self.use_archive = use_archive
        # Keys are plain strings, not tuples: strings are not tracked by the garbage collector, so a million
        # remembered ids add nothing to the collector's full passes (which would show as latency spikes).
        self._seen: OrderedDict[str, None] = OrderedDict()

    def _archived(self, events: list[dict[str, Any]]) -> set[tuple[str, str]]:
        if not self.use_archive or not events:
            return set()
        keys = in_((e["type"], e["source"], e["id"]) for e in events)
        rows = self.ch.execute(
            "SELECT DISTINCT source, id FROM events_archive WHERE (type, source, id) IN %(keys)s",
            {"keys": keys},
        )
        return {(s, i) for s, i in rows}

    def split(self, events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(new events, duplicates): duplicates of each other inside the request count too."""
        fresh: list[dict[str, Any]] = []
        dups: list[dict[str, Any]] = []
        in_request: set[str] = set()
        candidates = []
        for e in events:
            k = _key(e)
            if k in self._seen or k in in_request:
                dups.append(e)
            else:
                in_request.add(k)
                candidates.append(e)
        archived = self._archived(candidates)
        for e in candidates:
            (dups if (e["source"], e["id"]) in archived else fresh).append(e)
        return fresh, dups

    def remember(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            self._seen[_key(e)] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


def records(events: list[dict[str, Any]]) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) records: department events grouped per subject into batch records on ioc.events;
    switchboard call events one per record on ioc.hotline.calls keyed by call id."""
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    out: list[tuple[str, bytes, bytes]] = []
    for e in events:
        if e["type"].startswith(HOTLINE_PREFIX):
            key = str(e["data"].get("call_id") or e["subject"])
            out.append((HOTLINE_CALLS, key.encode(), _enc.encode(e)))
        else:
            by_subject[e["subject"]].append(e)
    for subject, evs in by_subject.items():
        out.append((EVENTS, subject.encode(), _enc.encode(evs)))
    return out


async def publish(producer: Any, events: list[dict[str, Any]]) -> None:
    """Send and wait until the broker has every record (acks=all)."""
    futures = [await producer.send(topic, value, key=key) for topic, key, value in records(events)]
    await asyncio.gather(*futures)
