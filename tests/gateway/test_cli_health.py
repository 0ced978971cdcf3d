"""`ioc token` and `ioc gateway urls` give tokens the gateway accepts; /readyz tells whether Kafka and ClickHouse
answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ioccore.settings import REPO_ROOT


def _ioc(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "IOC_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "ioccore.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True)  # fmt: skip


def test_ioc_token_signs_with_a_local_key_under_ioc_home(tmp_path):
    from services.gateway.auth.service import TokenService
    from services.gateway.settings import GatewaySettings

    done = _ioc("token", "--role", "district_operator", "--district", "718", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gateway" / "jwt-signing-key.pem").exists()
    p = TokenService(GatewaySettings(key_dir=tmp_path / "gateway")).verify(done.stdout.strip())
    assert (p.role.value, p.district) == ("district_operator", "718")
    bad = _ioc("token", "--role", "district_operator", home=tmp_path)
    assert bad.returncode == 2 and "district" in bad.stderr
    urls = json.loads(_ioc("gateway", "urls", "--json", home=tmp_path).stdout)
    assert urls["wall"].split("#token=")[0].endswith("/wall") and "#token=" in urls["console"]


@pytest.mark.clickhouse
def test_readyz_is_503_without_the_broker(reads_app):
    _app, client, _tokens = reads_app
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["clickhouse"]["ok"] is True and r.json()["kafka"]["ok"] is False


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_readyz_is_200_with_broker_and_clickhouse(kafka_app):
    _app, client, _tokens = kafka_app
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
