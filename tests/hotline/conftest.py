from __future__ import annotations

import datetime as dt

import pytest

from ioccore.settings import get_settings
from iocsim.switchboard import Records, disorder, hotline_records

START = dt.date(2026, 3, 2)  # a Monday


@pytest.fixture(scope="session")
def two_days() -> Records:
    """Two simulated days of both switchboards, with malformed records and a flaky link's faults."""
    recs = hotline_records(get_settings().contracts_dir, seed=11, start=START, days=2, bad_rate=0.01)
    return disorder(recs, seed=5, share=0.04)


def caller_numbers(recs: Records) -> set[str]:
    """National significant numbers of every caller (what a clear number would contain, in any format)."""
    return {
        e["data"]["caller_number"][3:]
        for e in recs.events
        if e["type"].endswith("call.received") and "caller_number" in e["data"]
    }
