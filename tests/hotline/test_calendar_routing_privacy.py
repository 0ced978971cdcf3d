"""Deadlines in working hours, routing suggestions, callers' privacy: pure logic from the contracts."""

from __future__ import annotations

import os
import stat

import pytest

from ioccore.catalog import load_catalog
from ioccore.settings import REPO_ROOT, get_settings
from services.hotline.calendar import load_deadlines
from services.hotline.calls import format_ms, parse_ms
from services.hotline.privacy import CallerPrivacy, contains_number, load_key, normalise
from services.hotline.routing import Router, distance_km


@pytest.fixture(scope="module")
def deadlines():
    return load_deadlines(get_settings().contracts_dir)


@pytest.fixture(scope="module")
def router():
    return Router(load_catalog())


def at(text: str) -> int:
    ms = parse_ms(text)
    assert ms is not None
    return ms


@pytest.mark.parametrize(
    ("start", "topic", "urgent", "due"),
    [
        # Thursday morning, 16 working hours: the rest of Thursday, Friday, then Monday
        ("2026-03-05T09:17:40+07:00", "urban_order", False, "2026-03-09T10:17:40+07:00"),
        # a Friday afternoon before Tết 2026 (16–20 Feb off, then the weekend): 40 h end on Monday 2 March
        ("2026-02-13T16:00:00+07:00", "land", False, "2026-03-02T09:00:00+07:00"),
        # forwarded on a Saturday: counting starts Monday 07:30
        ("2026-03-07T10:00:00+07:00", "other", False, "2026-03-12T09:00:00+07:00"),
        # during the lunch break: counting starts at 13:30
        ("2026-03-05T12:00:00+07:00", "power_water", False, "2026-03-05T20:00:00+07:00"),  # continuous 8 h
        ("2026-03-05T12:00:00+07:00", "environment", False, "2026-03-09T14:30:00+07:00"),
        # urgent: 4 clock hours whatever the category
        ("2026-03-07T10:00:00+07:00", "land", True, "2026-03-07T14:00:00+07:00"),
    ],
)
def test_deadlines_follow_the_working_calendar(deadlines, start, topic, urgent, due) -> None:
    got, _ = deadlines.deadline(at(start), topic, urgent)
    assert format_ms(got) == due


def test_1022_goes_to_the_district_committee_when_it_handles_the_field(router) -> None:
    assert router.focal_point("land", "25747").code == "FP-UBND-718"  # a commune of Thủ Dầu Một
    assert router.focal_point("digital_infrastructure", "25747").code == "FP-STTTT"  # provincial only
    assert router.focal_point("no_such_field", "74").code == "FP-VPUBND"


def test_115_goes_to_the_nearest_available_facility(router) -> None:
    catalog = load_catalog()
    lat, lon = 10.9031, 106.7123
    receiving = [h for h in catalog.hospitals if h.receives_115]
    ranked = sorted(receiving, key=lambda h: (distance_km(lat, lon, h.lat, h.lon), h.code))
    first = router.nearest_hospital("25966", lat, lon)
    assert first is not None and first.code == ranked[0].code
    assert all(h.code != first.code or h.receives_115 for h in catalog.hospitals)
    # the nearest is full: the next one; two full: the third
    second = router.nearest_hospital("25966", lat, lon, {ranked[0].code})
    assert second is not None and second.code == ranked[1].code
    third = router.nearest_hospital("25966", lat, lon, {ranked[0].code, ranked[1].code})
    assert third is not None and third.code == ranked[2].code
    # no location: from the unit's centroid
    unit = router.units["25966"]
    no_loc = router.nearest_hospital("25966", None, None)
    assert no_loc == router.nearest_hospital("25966", unit.lat, unit.lon)
    # facilities that do not take 115 patients are never suggested
    closed = {h.code for h in catalog.hospitals if not h.receives_115}
    assert closed and all(
        router.nearest_hospital(u, None, None).code not in closed  # type: ignore[union-attr]
        for u in router.units
    )


def test_callers_are_hashed_with_the_key_and_masked() -> None:
    a = CallerPrivacy(b"k" * 32)
    b = CallerPrivacy(b"j" * 32)
    assert a.hash("+84901234567") == a.hash("0901234567") == a.hash("84901234567")
    assert a.hash("+84901234567") != b.hash("+84901234567")  # keyed: not a plain digest of the number
    assert a.hash("+84901234567") != a.hash("+84901234568")
    masked = a.mask("+84901234567")
    assert masked == "+8490*****67" and not contains_number(masked)
    assert normalise("+84 90 123 4567") == "901234567"
    raw = b'{"caller_number": "+84901234567", "alt": "0387654321", "id": "1022-260305-0042"}'
    clean = a.redact(raw)
    assert not contains_number(clean) and b"1022-260305-0042" in clean


def test_the_local_key_is_generated_under_ioc_home_not_in_the_repository(tmp_path) -> None:
    key = load_key(None, tmp_path)
    assert len(key) >= 32 and load_key(None, tmp_path) == key  # generated once, then reused
    path = tmp_path / "secrets" / "hotline_caller_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_key("configured-secret-value", tmp_path) == b"configured-secret-value"
    tracked = os.popen(f"git -C {REPO_ROOT} ls-files").read()
    assert "hotline_caller_key" not in tracked
