"""The per-call fold: order-independent, duplicates ignored, the lifecycle rules the KPIs rely on."""

from __future__ import annotations

import itertools
import random

from services.hotline.calls import CallEvent, fold, parse_ms

T0 = parse_ms("2026-03-05T09:12:04+07:00")
assert T0 is not None
SB = "/tong-dai-1022/switchboard"


def ev(kind: str, dt_s: int, call_id: str = "1022-260305-0042", source: str = SB, **data) -> CallEvent:
    return CallEvent(call_id, f"{call_id}-{kind}-{dt_s}", source, kind, T0 + dt_s * 1000, "25747",
                     {"call_id": call_id, "line": call_id.split("-")[0], **data})  # fmt: skip


def forwarded_call() -> list[CallEvent]:
    return [
        ev("received", 0, unit="25747", caller_hash="h", caller_masked="+8490*****67"),
        ev("answered", 27, agent="TDV-07", wait_seconds=27),
        ev("classified", 120, field="urban_planning", topic="urban_order"),
        ev("note", 130, text="x"),
        ev("forwarded", 300, focal_point="FP-UBND-718"),
        ev(
            "deadline_set",
            300,
            source="urn:ioc:hotline",
            focal_point="FP-UBND-718",
            topic="urban_order",
            deadline="2026-03-09T10:17:40+07:00",
            hours=16,
            calendar="working",
        ),  # fmt: skip
        ev("closed", 310, outcome="forwarded"),
        ev("callback", 86_400, reached=True, resolved=True, on_time=True, satisfaction=4),
    ]


def test_any_arrival_order_and_duplicates_give_the_same_state() -> None:
    events = forwarded_call()
    want = fold("1022-260305-0042", events)
    rng = random.Random(3)
    for _ in range(50):
        shuffled = events + rng.sample(events, 3)  # three duplicates
        rng.shuffle(shuffled)
        assert fold("1022-260305-0042", shuffled) == want
    assert want.state == "resolved" and want.on_time and not want.overdue
    assert want.wait_s == 27 and want.focal_point == "FP-UBND-718" and want.satisfied
    assert want.events == len(events) and want.notes == 1


def test_closed_before_answered_still_answers_and_counts_the_wait() -> None:
    events = [
        ev("closed", 200, outcome="resolved", satisfaction=2),
        ev("answered", 40, agent="TDV-01"),
        ev("received", 0, unit="25747"),
    ]
    for perm in itertools.permutations(events):
        s = fold("1022-260305-0042", perm)
        assert s.known and s.answered and s.wait_s == 40  # from the times when the switchboard gave none
        assert s.state == "resolved" and s.satisfaction == 2 and not s.satisfied


def test_unknown_call_is_kept_but_not_known_until_received() -> None:
    s = fold("1022-X-1", [ev("note", 5, call_id="1022-X-1", text="?")])
    assert not s.known and s.state == "ringing" and s.unit == "25747"
    s = fold("1022-X-1", [ev("note", 5, call_id="1022-X-1", text="?"), ev("received", 0, call_id="1022-X-1")])
    assert s.known and s.received_at == T0


def test_overdue_needs_the_deadline_passed_or_a_late_resolution() -> None:
    base = forwarded_call()[:6]
    open_ = fold("c", [e for e in base])
    assert open_.deadline == parse_ms("2026-03-09T10:17:40+07:00")
    assert not open_.overdue and open_.backlog_at(T0 + 400_000) and not open_.backlog_at(T0 + 100_000)
    flagged = fold("c", base + [ev("overdue", 400_000, source="urn:ioc:hotline", focal_point="FP-UBND-718",
                                   deadline="2026-03-09T10:17:40+07:00")])  # fmt: skip
    assert flagged.overdue and flagged.state == "forwarded"
    late = fold("c", base + [ev("callback", 500_000, reached=True, resolved=True)])
    assert late.resolved and not late.on_time and late.overdue
    assert not late.backlog_at(T0 + 500_000 * 1000)


def test_the_latest_satisfaction_wins_whichever_event_carries_it() -> None:
    events = forwarded_call()
    events[6] = ev("closed", 310, outcome="forwarded", satisfaction=1)
    s = fold("c", events)
    assert s.satisfaction == 4  # the callback's, a day later
    events[7] = ev("callback", 86_400, reached=False, resolved=True)
    assert fold("c", events).satisfaction == 1
