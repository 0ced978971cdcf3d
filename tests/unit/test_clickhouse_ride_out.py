"""ioccore.clickhouse.with_retries: a few quick attempts by default; with ride_out_s, as long as the outage lasts
(up to that long). The fault suite (tests/faults) proves the same against a killed ClickHouse server."""

from __future__ import annotations

import time

import pytest

from ioccore.clickhouse import with_retries


class Outage:
    """Refuses like a stopped server until `until` (monotonic time), then answers."""

    def __init__(self, seconds: float):
        self.until = time.monotonic() + seconds
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if time.monotonic() < self.until:
            raise ConnectionRefusedError("refused")
        return "answer"


def test_by_default_a_few_attempts_then_the_error() -> None:
    outage = Outage(10.0)
    with pytest.raises(ConnectionRefusedError):
        with_retries(outage, what="t", retryable=(OSError,), attempts=3, base_delay_s=0.01)
    assert outage.calls == 3


def test_ride_out_waits_for_the_server_to_come_back() -> None:
    outage = Outage(0.5)
    got = with_retries(
        outage, what="t", retryable=(OSError,), attempts=3, base_delay_s=0.01, max_delay_s=0.05, ride_out_s=5
    )
    assert got == "answer" and outage.calls > 3


def test_ride_out_gives_up_when_the_outage_outlasts_it() -> None:
    outage = Outage(10.0)
    with pytest.raises(ConnectionRefusedError):
        with_retries(
            outage, what="t", retryable=(OSError,), base_delay_s=0.01, max_delay_s=0.05, ride_out_s=0.3
        )
    assert time.monotonic() < outage.until


def test_errors_that_are_not_transient_are_not_retried() -> None:
    calls = []

    def bad_sql() -> None:
        calls.append(1)
        raise ValueError("syntax")

    with pytest.raises(ValueError):
        with_retries(bad_sql, what="t", retryable=(OSError,), ride_out_s=5)
    assert len(calls) == 1
