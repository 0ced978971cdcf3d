"""The two switchboards alone, as Kafka records for ioc.hotline.calls, with the faults real switchboards make.

`hotline_records` takes the hotline part of the simulation (libs/iocsim/engine.py; malformed records mixed in
at `bad_rate`); `disorder` then delivers it the way a flaky switchboard link does: some events twice, some
calls' events out of order (closed before answered), events for call ids never received, received events
without a location. The tests and `ioc bench hotline` drive the hotline service with these.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from ioccore.topics import HOTLINE_CALLS
from iocsim.engine import Simulation
from iocsim.reference import load_reference


@dataclass
class Records:
    records: list[tuple[bytes, bytes]]  # (key, value) in send order
    faults: Counter = field(default_factory=Counter)
    events: list[dict] = field(default_factory=list)  # the valid events, as generated
    bad: set[bytes] = field(default_factory=set)  # the malformed record values


def hotline_records(
    contracts_dir, *, seed: int = 1, start: dt.date, days: int = 1, bad_rate: float = 0.0
) -> Records:
    sim = Simulation(load_reference(contracts_dir), seed=seed, start=start, days=days, bad_rate=bad_rate)
    out = Records([])
    for e in sim:
        if e.topic != HOTLINE_CALLS:
            continue
        out.records.append((e.key.encode(), e.encode()))
        if e.bad:
            out.faults["malformed"] += 1
            out.bad.add(out.records[-1][1])
        else:
            out.events.append(e.event)
    return out


def disorder(recs: Records, *, seed: int = 7, share: float = 0.03) -> Records:
    """Duplicates, closed-before-answered swaps, orphan events and dropped locations, each on about `share`
    of the calls; counted in `faults`."""
    rng = random.Random(seed)
    dec = msgspec.json.Decoder()
    out: list[tuple[bytes, bytes]] = []
    held: dict[str, tuple[bytes, bytes]] = {}  # call id -> its answered record, held back until closed
    swap: set[str] = set()
    faults = Counter(recs.faults)
    for key, value in recs.records:
        if value in recs.bad:
            out.append((key, value))
            continue
        try:
            ev = dec.decode(value)
        except msgspec.DecodeError:
            out.append((key, value))
            continue
        if not isinstance(ev, dict) or not isinstance(ev.get("data"), dict):
            out.append((key, value))
            continue
        call_id = str(ev["data"].get("call_id", ""))
        kind = str(ev.get("type", "")).rsplit(".", 1)[-1]
        if kind == "received":
            r = rng.random()
            if r < share and "location" in ev["data"]:
                ev = {**ev, "data": {k: v for k, v in ev["data"].items() if k != "location"}}
                value = msgspec.json.encode(ev)
                faults["location_dropped"] += 1
            elif r < 2 * share:
                swap.add(call_id)
        if kind == "answered" and call_id in swap:
            held[call_id] = (key, value)
            continue
        out.append((key, value))
        if kind == "closed" and call_id in held:
            out.append(held.pop(call_id))
            faults["closed_before_answered"] += 1
        if rng.random() < share:
            out.append((key, value))
            faults["duplicates"] += 1
        if kind == "received" and rng.random() < share / 3:
            orphan = {
                **ev,
                "id": ev["id"] + "-orphan",
                "type": "vn.binhduong.hotline.call.note",
                "data": {
                    "call_id": call_id + "-X",
                    "line": ev["data"]["line"],
                    "text": "Ghi chú cho cuộc gọi không rõ / note for an unknown call",
                },
            }
            out.append(((call_id + "-X").encode(), msgspec.json.encode(orphan)))
            faults["unknown_call"] += 1
    out.extend(held.values())
    return Records(out, faults, recs.events, recs.bad)
