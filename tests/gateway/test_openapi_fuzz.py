"""Schemathesis against the OpenAPI spec, on the real broker and ClickHouse 18.16: no input gives a 5xx.
(/v1/stream is an endless response and is left to tests/gateway/test_stream.py.)"""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NotSet

from ioccore.testing import fresh_clickhouse
from services.gateway.app import create_app
from tests.gateway import seed
from tests.gateway.conftest import Tokens, make_settings
from tests.gateway.seed import C718, D718, TODAY

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def gateway(stack_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    with fresh_clickhouse("server", tmp) as ch:
        seed.active(ch)
        seed.values(ch, [seed.value("transport.accidents", u, TODAY, 3.0) for u in ("74", D718, C718)])
        seed.alerts(ch, [seed.alert_row("a718", C718, D718)])
        app = create_app(make_settings(tmp, command_timeout_s=1.0), ch=ch)
        with TestClient(app):
            yield app


def test_no_input_makes_the_gateway_fail(gateway):
    # schemathesis' pytest plugin does not run under pytest 9 (private attributes); its Python API does.
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", gateway).exclude(path="/v1/stream")
    headers = Tokens(gateway).headers("province_admin")
    failures: list[str] = []
    operations = 0
    statuses: dict[int, int] = {}

    client = TestClient(gateway)  # the app's lifespan runs in the module fixture

    def fuzz(case) -> None:
        kwargs: dict = {"params": case.query or None, "headers": {**(case.headers or {}), **headers}}
        if not isinstance(case.body, NotSet):
            kwargs["content"] = json.dumps(case.body)
            kwargs["headers"]["Content-Type"] = case.media_type or "application/json"
        response = client.request(case.method, case.formatted_path, **kwargs)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
            )

    for result in schema.get_all_operations():
        operations += 1
        strategy = result.ok().as_strategy()
        settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)(
            given(case=strategy)(fuzz)
        )()
    print("statuses", dict(sorted(statuses.items())))
    assert operations >= 18 and sum(statuses.values()) >= operations * 5
    assert failures == []
