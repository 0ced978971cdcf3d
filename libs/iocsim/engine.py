"""The simulation: department systems and both hotline switchboards as a lazy, time-ordered event stream.

Per simulated day, only the day's plan (timestamps and kinds, a few ints each) is drawn; events are built hour
by hour. Later lifecycle steps (dossier completions, call-backs, outage restorations) wait in a heap, whose
size is bounded by what is in flight (days of dossiers), not by the length of the run. Everything random
comes from random.Random seeded with (seed, day), so the same seed gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ioccore.contracts import TYPE_PREFIX
from ioccore.topics import EVENTS as EVENTS_TOPIC
from ioccore.topics import HOTLINE_CALLS as HOTLINE_TOPIC
from iocsim.model import (
    DAY_S,
    Calendar,
    DataModel,
    WeightedChoice,
    day_start,
    example_scope,
    fmt_time,
    local_date,
    period_ends,
    period_label,
)
from iocsim.reference import Reference

HOTLINE = TYPE_PREFIX + "hotline."
BAD_KINDS = ("broken_json", "missing_field", "wrong_type", "unknown_type")
_RATIO_UNITS = {"%", "‰", "điểm", "hạng", "phút", "giờ", "ngày"}
_MOBILE = ["90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36", "37", "38", "39", "70", "76",
           "77", "78", "79", "81", "82", "83", "84", "85", "86", "88", "89"]  # fmt: skip


@dataclass(frozen=True)
class Anomaly:
    field: str
    district: str
    factor: float


@dataclass(order=True)
class Emission:
    """One record to send: topic, key, and the event (a dict) or raw bytes (a malformed record)."""

    t: int
    seq: int
    topic: str = field(compare=False)
    key: str = field(compare=False)
    event: Any = field(compare=False)
    bad: str = field(default="", compare=False)

    def encode(self) -> bytes:
        return self.event if isinstance(self.event, bytes) else msgspec.json.encode(self.event)


def _event(id_: str, source: str, type_: str, t: int, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id_,
        "source": source,
        "type": type_,
        "time": fmt_time(t),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


@dataclass
class GenType:
    name: str
    field: str
    per_day: float
    profile: str
    scope: str
    source: str
    model: DataModel
    follows: dict[str, Any] | None = None
    followers: list[GenType] = field(default_factory=list)


class Simulation:
    def __init__(
        self,
        ref: Reference,
        *,
        seed: int,
        start: dt.date,
        days: int,
        anomalies: list[Anomaly] | None = None,
        bad_rate: float = 0.0,
    ):
        self.ref = ref
        self.seed = seed
        self.start = start
        self.days = days
        self.anomalies = anomalies or []
        self.bad_rate = bad_rate
        self.cal = Calendar(ref.model)
        self._seq = 0
        self._heap: list[Emission] = []
        self.counts: dict[str, int] = {}
        self.bad_counts: dict[str, int] = dict.fromkeys(BAD_KINDS, 0)
        self._commune_w = ref.commune_weights()
        self._district_w = ref.district_weights()
        self._choosers: dict[tuple[str, str], tuple[WeightedChoice, float]] = {}
        self._build_types()
        self._build_figures()

    # -- set-up ----------------------------------------------------------------------------------------------
    def _chooser(self, field_code: str, scope: str) -> tuple[WeightedChoice, float]:
        """Units of a scope weighted for a field (anomalies applied), and the volume multiplier they imply."""
        key = (field_code, scope)
        if key not in self._choosers:
            if scope == "province":
                self._choosers[key] = (WeightedChoice(["74"], [1.0]), 1.0)
            else:
                base = self._commune_w if scope == "commune" else self._district_w
                items = list(base)
                weights = []
                for code in items:
                    w = base[code]
                    district = self.ref.units[code].parent if scope == "commune" else code
                    for a in self.anomalies:
                        if a.field == field_code and a.district == district:
                            w *= a.factor
                    weights.append(w)
                mult = sum(weights) / sum(base.values())
                self._choosers[key] = (WeightedChoice(items, weights), mult)
        return self._choosers[key]

    def _build_types(self) -> None:
        self.types: dict[str, GenType] = {}
        for short, cfg in (self.ref.model.get("types") or {}).items():
            name = TYPE_PREFIX + short
            if name not in self.ref.schemas:
                raise ValueError(
                    f"catalog/simulation.yaml: type {short} has no schema under contracts/events/"
                )
            examples = self.ref.examples.get(name, [])
            self.types[name] = GenType(
                name=name,
                field=short.split(".")[0],
                per_day=float(cfg.get("per_day", 0)),
                profile=cfg.get("profile", "always"),
                scope=cfg.get("scope") or example_scope(examples),
                source=cfg.get("source")
                or (examples[0]["source"] if examples else f"/{short.split('.')[0]}"),
                model=DataModel(name, self.ref.schemas[name], examples, cfg),
                follows=cfg.get("follows"),
            )
            self.cal.profile(self.types[name].profile)
        for gt in self.types.values():
            if gt.follows:
                parent = TYPE_PREFIX + gt.follows["type"]
                self.types[parent].followers.append(gt)
        self.roots = [gt for gt in self.types.values() if not gt.follows and gt.per_day > 0]

        d = self.ref.model["dossiers"]
        self.dossier_groups = list(d["procedure_groups"])
        h = self.ref.model["hotline"]
        self.h1022 = h["1022"]
        self.h115 = h["115"]
        self._outages: list[tuple[int, int, str]] = []  # (start, end, hospital) of 115 facilities unavailable
        cats = self.h1022["categories"]
        self.cat_choice = WeightedChoice(list(cats), [c["share"] for c in cats.values()])
        self.case_choice = WeightedChoice(
            list(self.h115["case_types"]), list(self.h115["case_types"].values())
        )
        self.fp_by_field: dict[str, list[str]] = {}
        self.fp_district: dict[tuple[str, str], str] = {}
        for fp in self.ref.focal_points:
            for f in fp.get("fields") or []:
                if fp.get("level") == "district":
                    self.fp_district[(str(fp["unit"]), f)] = fp["code"]
                else:
                    self.fp_by_field.setdefault(f, []).append(fp["code"])

    def _build_figures(self) -> None:
        fig = self.ref.model.get("figures") or {}
        excluded = set(fig.get("exclude_fields") or [])
        hh, mm = (int(x) for x in str(fig.get("report_time", "23:50")).split(":"))
        self.figure_sec = hh * 3600 + mm * 60
        self.figure_noise = float(fig.get("noise", 0.03))
        self.figures = [i for i in self.ref.reported if i["field"] not in excluded]
        self.figure_sources: dict[str, str] = {}
        for name, exs in self.ref.examples.items():
            if name.endswith(".figure.reported") and exs:
                self.figure_sources[name.split(".")[2]] = exs[0]["source"]
        self._figure_base: dict[str, float] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def _push(self, t: int, topic: str, key: str, event: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, Emission(t, self._seq, topic, key, event))

    def _count(self, rng: random.Random, mean: float) -> int:
        n = int(mean)
        return n + (1 if rng.random() < mean - n else 0)

    # -- the stream ------------------------------------------------------------------------------------------
    def hours(self) -> Iterator[tuple[dt.date, int, list[Emission]]]:
        """(day, hour, emissions of that hour in time order), lazily, hour after hour."""
        for i in range(self.days):
            day = self.start + dt.timedelta(days=i)
            rng = random.Random(f"iocsim:{self.seed}:{day.isoformat()}")
            midnight = day_start(day)
            plan = self._plan_day(rng, day, midnight)
            pi = 0
            for hour in range(24):
                end = midnight + (hour + 1) * 3600
                while pi < len(plan) and plan[pi][0] < end:
                    self._materialize(rng, day, plan[pi])
                    pi += 1
                out: list[Emission] = []
                while self._heap and self._heap[0].t < end:
                    out.append(heapq.heappop(self._heap))
                if self.bad_rate > 0:
                    out = self._mix_bad(rng, out)
                for e in out:
                    if not e.bad:
                        typ = e.event["type"]
                        self.counts[typ] = self.counts.get(typ, 0) + 1
                yield day, hour, out

    def __iter__(self) -> Iterator[Emission]:
        for _, _, batch in self.hours():
            yield from batch

    def _plan_day(self, rng: random.Random, day: dt.date, midnight: int) -> list[tuple[int, int, str, Any]]:
        plan: list[tuple[int, int, str, Any]] = []
        n = 0
        for gt in self.roots:
            prof = self.cal.profile(gt.profile)
            if not prof.active(day):
                continue
            _, mult = self._chooser(gt.field, gt.scope)
            for _ in range(self._count(rng, gt.per_day * mult)):
                n += 1
                plan.append((prof.sample(rng, midnight), n, "gen", gt))
        office = self.cal.profile("office")
        if office.active(day):
            _, mult = self._chooser("admin_procedures", "commune")
            for _ in range(self._count(rng, float(self.ref.model["dossiers"]["per_day"]) * mult)):
                n += 1
                plan.append((office.sample(rng, midnight), n, "dossier", None))
        for line, cfg, fcode in (("1022", self.h1022, "hotline_1022"), ("115", self.h115, "emergency_115")):
            prof = self.cal.profile(cfg.get("profile", "always"))
            _, mult = self._chooser(fcode, "commune")
            for _ in range(self._count(rng, float(cfg["calls_per_day"]) * mult)):
                n += 1
                plan.append((prof.sample(rng, midnight), n, "call", line))
        self._plan_outages(day, midnight)
        t_fig = midnight + self.figure_sec
        for ind in self.figures:
            cadences = ind["cadences"]
            if ind["measure"] == "sum":
                cadences = cadences[:1]  # reported sums: the finest cadence only; longer windows add them up
            for cadence in cadences:
                if period_ends(day, cadence):
                    n += 1
                    plan.append((t_fig, n, "figure", (ind, cadence)))
        plan.sort(key=lambda p: (p[0], p[1]))
        return plan

    def _materialize(self, rng: random.Random, day: dt.date, item: tuple[int, int, str, Any]) -> None:
        t, n, kind, arg = item
        tag = day.strftime("%Y%m%d")
        if kind == "gen":
            self._gen(rng, arg, t, n, tag)
        elif kind == "dossier":
            self._dossier(rng, t, n, day)
        elif kind == "call":
            self._call(rng, t, n, day, arg)
        else:
            self._figure(rng, t, day, *arg)

    # -- department events -----------------------------------------------------------------------------------
    def _gen(self, rng: random.Random, gt: GenType, t: int, n: int, tag: str) -> None:
        chooser, _ = self._chooser(gt.field, gt.scope)
        subject = chooser.pick(rng)
        data = gt.model.build(rng, t, n, tag)
        gt.model.derive(data)
        id_ = f"{gt.model.abbr}-{tag}-{n:06d}"
        self._push(t, EVENTS_TOPIC, subject, _event(id_, gt.source, gt.name, t, subject, data))
        for fol in gt.followers:
            spec = fol.follows or {}
            if rng.random() >= float(spec.get("share", 1.0)):
                continue
            lo, hi = spec.get("delay_minutes", [10, 60])
            tf = t + 60 * (lo + int(rng.random() * (hi - lo + 1)))
            if fol.profile == "office":
                tf = self.cal.snap(tf, rng)
            fdata = fol.model.build(rng, tf, n, tag)
            for k in fol.model.order:
                own_time = (
                    fol.model.props.get(k, {}).get("format") == "date-time"
                    and fol.model.times.get(k) != "parent"
                )
                if k in data and not own_time:
                    fdata[k] = data[k]
            for k, rule in fol.model.times.items():
                if rule == "parent" and k in fdata:
                    fdata[k] = data[k] if k in data else fmt_time(t)
            fol.model.derive(fdata)
            fid = f"{id_}-{fol.name.rsplit('.', 1)[-1]}"
            self._push(tf, EVENTS_TOPIC, subject, _event(fid, fol.source, fol.name, tf, subject, fdata))

    def _dossier(self, rng: random.Random, t: int, n: int, day: dt.date) -> None:
        cfg = self.ref.model["dossiers"]
        src = cfg["source"]
        chooser, _ = self._chooser("admin_procedures", "commune")
        commune = chooser.pick(rng)
        district = self.ref.units[commune].parent or "74"
        level = _pick(rng, cfg["levels"])
        subject = {"commune": commune, "district": district, "province": "74"}[level]
        agency = {"commune": district[-2:], "district": district[-2:], "province": "00"}[level]
        dossier_id = f"000.00.{agency}.H12-{day.strftime('%y%m%d')}-{n:05d}"
        channel = _pick(rng, cfg["channels"])
        if channel == "online":
            service_level = "full_online" if rng.random() < 0.6 else "partial_online"
        else:
            service_level = "offline" if rng.random() < 0.5 else "partial_online"
        group = self.dossier_groups[int(rng.random() * len(self.dossier_groups))]
        code = f"1.{1000 + int(rng.random() * 12000):06d}"
        lo, hi = cfg["processing_working_days"][level]
        due_day = self.cal.add_working_days(day, lo + int(rng.random() * (hi - lo + 1)))
        due = day_start(due_day) + 17 * 3600
        base = {"dossier_id": dossier_id, "procedure_code": code, "procedure_group": group}
        type_ = TYPE_PREFIX + "admin_procedures.dossier."
        self._push(
            t,
            EVENTS_TOPIC,
            subject,
            _event(
                f"hs-{dossier_id}-received",
                src,
                type_ + "received",
                t,
                subject,
                {
                    **base,
                    "level": level,
                    "channel": channel,
                    "service_level": service_level,
                    "due_at": fmt_time(due),
                },
            ),
        )
        if rng.random() < float(cfg["fee_share"]):
            tp = t + 60 * (1 + int(rng.random() * 20))
            if channel == "online":
                method = "online_gateway" if rng.random() < 0.8 else "bank_transfer"
            else:
                method = _pick(rng, {"cash": 0.6, "bank_transfer": 0.2, "online_gateway": 0.2})
            amount = [8000, 10000, 20000, 50000, 100000, 200000, 500000][int(rng.random() * 7)]
            self._push(
                tp,
                EVENTS_TOPIC,
                subject,
                _event(
                    f"hs-{dossier_id}-fee",
                    src,
                    TYPE_PREFIX + "admin_procedures.fee.paid",
                    tp,
                    subject,
                    {
                        "dossier_id": dossier_id,
                        "procedure_group": group,
                        "amount_vnd": amount,
                        "method": method,
                    },
                ),
            )
        if rng.random() < float(cfg["supplement_share"]):
            ts = self.cal.snap(t + DAY_S * (1 + int(rng.random() * 2)), rng)
            self._push(
                ts,
                EVENTS_TOPIC,
                subject,
                _event(
                    f"hs-{dossier_id}-supplement",
                    src,
                    type_ + "supplement_requested",
                    ts,
                    subject,
                    {**base, "requested_at": fmt_time(ts), "reason": "Thiếu thành phần hồ sơ theo quy định"},
                ),
            )
        if rng.random() < float(cfg["on_time_share"]):
            tc = t + 1800 + int(rng.random() * max(1, due - t - 1800))
            tc = self.cal.snap(tc, rng)
        else:
            tc = self.cal.snap(day_start(self.cal.add_working_days(due_day, 1 + int(rng.random() * 5))), rng)
        done: dict[str, Any] = {
            **base,
            "due_at": fmt_time(due),
            "completed_at": fmt_time(tc),
            "outcome": _pick(rng, cfg["outcomes"]),
            "level": level,
            "channel": channel,
        }
        if rng.random() < float(cfg["rated_share"]):
            done["satisfaction"] = (
                4 + int(rng.random() * 2)
                if rng.random() < float(cfg["satisfied_share"])
                else 1 + int(rng.random() * 3)
            )
        self._push(
            tc,
            EVENTS_TOPIC,
            subject,
            _event(f"hs-{dossier_id}-completed", src, type_ + "completed", tc, subject, done),
        )
        if tc > due:
            late = max(1, math.ceil((tc - due) / DAY_S))
            self._push(
                tc,
                EVENTS_TOPIC,
                subject,
                _event(
                    f"hs-{dossier_id}-apology",
                    src,
                    type_ + "apology_issued",
                    tc,
                    subject,
                    {**base, "level": level, "days_late": late},
                ),
            )

    # -- hotlines --------------------------------------------------------------------------------------------
    def _call(self, rng: random.Random, t: int, n: int, day: dt.date, line: str) -> None:
        cfg = self.h1022 if line == "1022" else self.h115
        src = cfg["source"]
        chooser, _ = self._chooser("hotline_1022" if line == "1022" else "emergency_115", "commune")
        commune = chooser.pick(rng)
        unit = self.ref.units[commune]
        call_id = f"{line}-{day.strftime('%y%m%d')}-{n:05d}"
        base = {"call_id": call_id, "line": line}

        def emit(name: str, at: int, data: dict[str, Any]) -> None:
            self._push(
                at,
                HOTLINE_TOPIC,
                call_id,
                _event(f"{call_id}-{name.split('.')[1]}", src, HOTLINE + name, at, commune, {**base, **data}),
            )

        number = "+84" + _MOBILE[int(rng.random() * len(_MOBILE))] + f"{int(rng.random() * 10_000_000):07d}"
        received: dict[str, Any] = {"caller_number": number}
        s, w, nth, e = unit.bbox
        lat = round(s + rng.random() * (nth - s), 5)
        lon = round(w + rng.random() * (e - w), 5)
        if line == "115" or rng.random() < float(cfg.get("location_share", 0.5)):
            received["location"] = {"lat": lat, "lon": lon}
        received["unit"] = commune
        emit("call.received", t, received)
        agent = (
            f"{'TDV-1022' if line == '1022' else 'DP-115'}-{1 + int(rng.random() * int(cfg['agents'])):02d}"
        )
        if line == "1022" and rng.random() < float(cfg["abandoned_share"]):
            emit(
                "call.closed",
                t + 10 + int(rng.random() * 80),
                {"outcome": "abandoned", "duration_seconds": 0},
            )
            return
        wait = (5 + int(rng.random() * 55)) if line == "1022" else (2 + int(rng.random() * 12))
        ta = t + wait
        emit("call.answered", ta, {"agent": agent, "wait_seconds": wait})
        tc = ta + (60 + int(rng.random() * 240) if line == "1022" else 30 + int(rng.random() * 60))
        if line == "115":
            case = self.case_choice.pick(rng)
            emit("call.classified", tc, {"field": "emergency_115", "topic": case, "urgent": True})
            code, km = self._nearest_hospital(lat, lon, t)
            tf = tc + 20 + int(rng.random() * 60)
            emit("call.forwarded", tf, {"hospital": code, "distance_km": km})
            emit("call.closed", tf + 5, {"outcome": "forwarded", "duration_seconds": tf + 5 - ta})
            return
        category = self.cat_choice.pick(rng)
        field_code = cfg["categories"][category]["field"]
        emit("call.classified", tc, {"field": field_code, "topic": category})
        if rng.random() < float(cfg.get("note_share", 0.3)):
            emit(
                "call.note",
                tc + 5,
                {"agent": agent, "text": f"Ghi nhận phản ánh về {category.replace('_', ' ')}."},
            )
        surveyed = rng.random() < float(cfg["surveyed_share"])
        satisfied = rng.random() < float(cfg["satisfied_share"])
        score = (4 + int(rng.random() * 2)) if satisfied else (1 + int(rng.random() * 3))
        direct = float(cfg["answered_directly_share"]) / (1 - float(cfg["abandoned_share"]))
        if rng.random() < direct:
            te = tc + 30 + int(rng.random() * 300)
            closed: dict[str, Any] = {"outcome": "resolved", "duration_seconds": te - ta}
            if surveyed:
                closed["satisfaction"] = score
            emit("call.closed", te, closed)
            return
        district = unit.parent or "74"
        fp = self.fp_district.get((district, field_code))
        if fp is None or rng.random() < 0.3:
            options = self.fp_by_field.get(field_code) or ["FP-VPUBND"]
            fp = options[int(rng.random() * len(options))]
        tf = tc + 60 + int(rng.random() * 300)
        deadline = int(float(cfg["handling_deadline_hours"]) * 3600)
        emit("call.forwarded", tf, {"focal_point": fp, "due_at": fmt_time(tf + deadline)})
        emit("call.closed", tf + 10, {"outcome": "forwarded", "duration_seconds": tf + 10 - ta})
        on_time = rng.random() < float(cfg["on_time_share"])
        done = tf + (int(rng.random() * deadline) if on_time else deadline + int(rng.random() * deadline))
        tb = self.cal.snap(done + 1800, rng)
        back: dict[str, Any] = {"agent": agent, "reached": surveyed, "resolved": True, "on_time": on_time}
        if surveyed:
            back["satisfaction"] = score
        emit("call.callback", tb, back)

    def _plan_outages(self, day: dt.date, midnight: int) -> None:
        """Now and then a 115 facility stops taking patients for a few hours (full emergency ward): an
        availability event at each end, on the switchboard topic keyed by the facility's code."""
        per_day = float(self.h115.get("outages_per_day", 0))
        if per_day <= 0 or not self.ref.hospitals:
            return
        rng = random.Random(f"iocsim:{self.seed}:{day.isoformat()}:outages")
        lo, hi = self.h115.get("outage_hours", [1, 6])
        self._outages = [o for o in self._outages if o[1] >= midnight - DAY_S]
        for i in range(self._count(rng, per_day)):
            h = self.ref.hospitals[int(rng.random() * len(self.ref.hospitals))]
            start = midnight + int(rng.random() * DAY_S)
            end = start + int((lo + rng.random() * (hi - lo)) * 3600)
            self._outages.append((start, end, h["code"]))
            district = str(h.get("district") or "74")
            for at, available, what in ((start, False, "down"), (end, True, "up")):
                data: dict[str, Any] = {"hospital": h["code"], "available": available}
                if not available:
                    data["reason"] = "Khoa cấp cứu quá tải / emergency ward full"
                id_ = f"avail-{h['code']}-{day.strftime('%Y%m%d')}-{i}-{what}"
                self._push(at, HOTLINE_TOPIC, h["code"],
                           _event(id_, self.h115["source"], HOTLINE + "facility.availability", at, district, data))  # fmt: skip

    def _nearest_hospital(self, lat: float, lon: float, t: int | None = None) -> tuple[str, float]:
        """The nearest facility that receives 115 patients and is not unavailable at `t` (great-circle
        distance; ties: the code)."""
        best, best_km = "", 1e9
        down = {code for start, end, code in self._outages if t is not None and start <= t < end}
        for h in self.ref.hospitals:
            if not h.get("receives_115", True) or h["code"] in down:
                continue
            p1, p2 = math.radians(lat), math.radians(h["lat"])
            a = (
                math.sin((p2 - p1) / 2) ** 2
                + math.cos(p1) * math.cos(p2) * math.sin(math.radians(h["lon"] - lon) / 2) ** 2
            )
            km = 2 * 6371.0 * math.asin(math.sqrt(a))
            if (km, h["code"]) < (best_km, best):
                best, best_km = h["code"], km
        return best, round(best_km, 2)

    # -- reported figures ------------------------------------------------------------------------------------
    def _base(self, ind: dict[str, Any]) -> float:
        iid = ind["id"]
        if iid not in self._figure_base:
            if "baseline" in ind:
                v = float(ind["baseline"]["value"])
            else:
                r = random.Random(hashlib.sha256(iid.encode()).hexdigest())
                unit = ind.get("unit", "")
                if unit == "%":
                    v = round(40 + r.random() * 55, 1)
                elif unit == "hạng":
                    v = float(1 + int(r.random() * 20))
                elif unit == "điểm":
                    v = round(30 + r.random() * 60, 1)
                else:
                    v = float(round(10 ** (1 + r.random() * 3)))
            self._figure_base[iid] = v
        return self._figure_base[iid]

    def _figure(self, rng: random.Random, t: int, day: dt.date, ind: dict[str, Any], cadence: str) -> None:
        fcode = ind["field"]
        unit_name = ind.get("unit", "")
        ratio = unit_name in _RATIO_UNITS or "/" in unit_name
        base = self._base(ind)
        period = period_label(day, cadence)
        src = self.figure_sources.get(fcode, f"/{fcode.replace('_', '-')}/bao-cao")
        type_ = f"{TYPE_PREFIX}{fcode}.figure.reported"
        total_c = sum(self._commune_w.values())
        for scope in ind["scopes"]:
            if scope == "province":
                units = [("74", 1.0)]
            elif scope == "district":
                tot = sum(self._district_w.values())
                units = [(d, w / tot) for d, w in self._district_w.items()]
            else:
                units = [(c, w / total_c) for c, w in self._commune_w.items()]
            for code, share in units:
                if unit_name == "hạng":
                    value: float = base
                else:
                    value = base * (1 + self.figure_noise * rng.gauss(0, 1))
                    if not ratio:
                        value *= share
                    if unit_name == "%":
                        value = min(100.0, max(0.0, value))
                    value = round(value, 2) if (ratio or value < 100) else float(round(value))
                data = {"indicator_id": ind["id"], "period": period, "cadence": cadence, "value": value}
                if len(unit_name) <= 32:
                    data["unit"] = unit_name
                id_ = f"fig-{ind['id']}-{code}-{period}"
                if len(id_) > 128:
                    id_ = "fig-" + hashlib.sha256(id_.encode()).hexdigest()[:40] + f"-{code}-{period}"
                self._push(t, EVENTS_TOPIC, code, _event(id_, src, type_, t, code, data))

    # -- malformed events ------------------------------------------------------------------------------------
    def _mix_bad(self, rng: random.Random, batch: list[Emission]) -> list[Emission]:
        """After each event, with probability q = r/(1-r), a malformed one: a share r of the output."""
        q = self.bad_rate / (1 - self.bad_rate)
        out: list[Emission] = []
        for e in batch:
            out.append(e)
            if rng.random() < q:
                kind = BAD_KINDS[int(rng.random() * len(BAD_KINDS))]
                out.append(Emission(e.t, e.seq, e.topic, e.key, self._malform(rng, e.event, kind), bad=kind))
                self.bad_counts[kind] += 1
        return out

    def _malform(self, rng: random.Random, ev: dict[str, Any], kind: str) -> Any:
        bad = {**ev, "id": f"{ev['id']}-bad-{kind}", "data": dict(ev["data"])}
        if kind == "broken_json":
            raw = msgspec.json.encode(bad)
            return raw[: max(1, len(raw) - 2 - int(rng.random() * len(raw) // 2))]
        if kind == "missing_field":
            schema = self.ref.schemas[ev["type"]]
            required = [k for k in schema.get("required", []) if k in bad["data"]]
            if required and rng.random() < 0.5:
                del bad["data"][required[0]]
            else:
                del bad[("subject", "time", "source")[int(rng.random() * 3)]]
            return bad
        if kind == "wrong_type":
            schema = self.ref.schemas[ev["type"]]
            key = (schema.get("required") or list(schema.get("properties") or {}))[0]
            typ = (schema.get("properties") or {}).get(key, {}).get("type")
            bad["data"][key] = 12345 if typ == "string" else "not-a-" + str(typ)
            return bad
        bad["type"] = TYPE_PREFIX + "simulator.unknown_event"
        return bad


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    r = rng.random() * sum(weights.values())
    for k, w in weights.items():
        if r < w:
            return k
        r -= w
    return next(reversed(weights))


def default_start(days: int) -> dt.date:
    """Backfill ends today (Asia/Ho_Chi_Minh)."""
    return local_date(int(dt.datetime.now(dt.UTC).timestamp())) - dt.timedelta(days=max(days - 1, 0))
