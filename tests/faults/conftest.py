"""The fault suite's fixtures: one running system per module (see harness.System) and its load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from ioccore.settings import get_settings
from ioccore.testing import fresh_clickhouse, recreate_topics
from tests.faults.harness import Load, System, say


@pytest.fixture(scope="module")
def system(stack_env, tmp_path_factory) -> Iterator[System]:
    """Fresh topics and database, then indicators, alerts, hotline workers and the gateway as processes."""
    tmp = tmp_path_factory.mktemp("faults")
    recreate_topics()
    with fresh_clickhouse("server", tmp) as db:
        sysm = System(db, tmp)
        try:
            sysm.start_all()
            yield sysm
        finally:
            sysm.stop()


@pytest.fixture(scope="module")
def load(system: System) -> Iterator[Load]:
    """Simulator traffic from six days ago on (ids unique across the module), posted as a province admin.

    Recent days, as `make run` sends: the alerts worker reports timeliness figures stamped now onto ioc.events,
    and the indicators worker dead-letters events more than IOC_INDICATORS_LATENESS_DAYS (7) older than the
    newest of their partition."""
    from iocsim.engine import Simulation
    from iocsim.reference import load_reference
    from services.gateway.auth.models import Principal, Role
    from services.gateway.auth.service import TokenService
    from services.gateway.settings import GatewaySettings

    ref = load_reference(get_settings().contracts_dir)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
    sim = Simulation(ref, seed=9, start=today - dt.timedelta(days=6), days=12)
    token = TokenService(GatewaySettings(key_dir=system.key_dir)).issue(
        Principal(sub="faults-load", role=Role.province_admin, name="fault suite")
    )
    ld = Load(system, iter(sim), token)
    yield ld
    ld.stop()
    say(f"load total: {ld.sent} events sent, {len(ld.acked_events)} department events and {len(ld.acked_calls)} "
        f"call events acknowledged, {ld.retried_posts} posts retried")  # fmt: skip


@pytest.fixture
def fresh(system: System) -> System:
    """Each test starts with every process up (a previous failure's dead process is restarted and named)."""
    dead = system.ensure_running()
    if dead:
        say(f"restarted after an earlier failure: {sorted(dead)}")
    return system
