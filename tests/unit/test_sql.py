import datetime as dt

import pytest

from ioccore.errors import ContractError
from ioccore.sql import identifier, literal, render


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("line\nbreak\ttab\0nul", "'line\\nbreak\\ttab\\0nul'"),
        ("Thủ Dầu Một", "'Thủ Dầu Một'"),
        (None, "NULL"),
        (True, "1"),
        (42, "42"),
        (-1.5, "-1.5"),
        (b"\xff\x00", "unhex('ff00')"),
        ([1, "a"], "[1, 'a']"),
        (("x",), "('x',)"),
    ],
)
def test_literal_means_exactly_the_value(value, expected):
    assert literal(value) == expected


def test_datetimes_bind_as_instants_whatever_the_zone():
    hcm = dt.timezone(dt.timedelta(hours=7))
    a = dt.datetime(2026, 1, 5, 8, 0, tzinfo=hcm)
    b = dt.datetime(2026, 1, 5, 1, 0, tzinfo=dt.UTC)
    assert literal(a) == literal(b) == f"toDateTime({int(b.timestamp())})"
    assert literal(dt.date(2026, 2, 3)) == "toDate('2026-02-03')"


def test_injection_attempts_stay_inside_the_string():
    sql = render("SELECT * FROM t WHERE subject = %(s)s", {"s": "74' OR 1=1 --"})
    assert sql == "SELECT * FROM t WHERE subject = '74\\' OR 1=1 --'"


def test_unknown_types_are_refused_not_passed_through():
    with pytest.raises(ContractError):
        literal(object())


@pytest.mark.parametrize("bad", ["t; DROP TABLE x", "a b", "1abc", "t--", ""])
def test_identifier_refuses_anything_but_a_plain_name(bad):
    with pytest.raises(ContractError):
        identifier(bad)


def test_identifier_accepts_database_qualified_names():
    assert identifier("ioc.events_archive") == "ioc.events_archive"
