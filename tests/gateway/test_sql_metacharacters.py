"""SQL metacharacters in every parameter of every route (enumerated from the OpenAPI spec, so a new route or
parameter is covered without editing this file), on ClickHouse 18.16 and current ClickHouse (chdb): the answer
is a 4xx with a message or a correct, empty answer, never a 5xx; afterwards every table is still there with
the rows it had. Also the `ioc` commands that put user input into queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest

from ioccore.settings import REPO_ROOT
from tests.gateway import seed
from tests.gateway.seed import C718, D718, TODAY

pytestmark = pytest.mark.clickhouse
IND = "transport.accidents"

HOSTILE = [
    "'; DROP TABLE indicator_values; --",
    "\\'",
    "\\",
    "' OR '1'='1",
    "1) OR (1=1",
    "%(x)s",
    "%s",
    "%%",
    "{x}",
    "{0}",
    "\u2018\u2019\u201c\u201d\u02bc\uff07",
    "718' --",
    "\x00",
    "\n\r\t",
    "x" * 10_000,
]
# A valid value for each parameter that is not the one under attack (by name; path parameters too).
VALID = {
    "indicator": IND,
    "indicator_id": IND,
    "unit": D718,
    "alert_id": "a718",
    "action": "acknowledge",
    "district": D718,
    "name": "wall.js",
}
# /v1/stream never ends (tests/gateway/test_stream.py); its parameters reach no SQL.
SKIP = {"/v1/stream"}


@pytest.fixture
def seeded(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    seed.active(ch)
    seed.values(ch, [seed.value(IND, u, TODAY, 3.0) for u in ("74", D718, C718)])
    seed.alerts(ch, [seed.alert_row("a718", C718, D718)])
    seed.calls(ch, [seed.call_row("c718", C718, D718, "ringing")])
    return app, client, tokens


def _counts(ch) -> dict[str, int]:
    tables = [t for (t,) in ch.execute("SHOW TABLES") if not t.startswith(".")]
    return {t: ch.execute(f"SELECT count() FROM {t}")[0][0] for t in tables}  # noqa: S608 (names from SHOW TABLES)


def _operations(app) -> list[tuple[str, str, list[dict]]]:
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path in SKIP:
            continue
        for method, op in ops.items():
            params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
            if params:
                out.append((method.upper(), path, params))
    return out


def _empty(doc) -> bool:
    if isinstance(doc, list):
        return doc == []
    if isinstance(doc, dict):
        return all(_empty(v) for v in doc.values() if isinstance(v, list | dict))
    return True


def test_sql_metacharacters_in_every_parameter(seeded):
    app, client, tokens = seeded
    ch = app.state.gw.ch
    before = _counts(ch)
    headers = tokens.headers("province_admin")
    checked: set[tuple[str, str]] = set()
    for method, path, params in _operations(app):
        for target in params:
            for value in HOSTILE:
                url = path
                query: list[tuple[str, str]] = []
                for p in params:
                    v = value if p is target else VALID.get(p["name"])
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", quote(v or "x", safe=""))
                    elif v is not None and (p is target or p.get("required")):
                        query.append((p["name"], v))
                r = client.request(method, url, params=query, headers=headers)
                where = f"{method} {path} {target['name']}={value[:40]!r}"
                assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
                if 400 <= r.status_code < 500 and r.headers.get("content-type", "").startswith(
                    "application/json"
                ):
                    assert r.json()["detail"], where
                elif r.status_code == 200 and r.headers.get("content-type", "").startswith(
                    "application/json"
                ):
                    # nothing matches a hostile filter: an empty answer, not everything
                    assert _empty(r.json()), f"{where}: {r.text[:300]}"
                checked.add((path, target["name"]))
    assert len(checked) >= 25, sorted(checked)
    assert {("/v1/alerts", "field"), ("/v1/indicators/{indicator}/series", "unit")} <= checked
    after = _counts(ch)
    assert set(after) == set(before)
    # reads change nothing; only the audit log may grow (denials are audited)
    assert {t: n for t, n in after.items() if t != "audit_log"} == {
        t: n for t, n in before.items() if t != "audit_log"
    }
    assert after["indicator_values"] == 3 and after["alerts"] >= 1


def _ioc(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ioccore.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "IOC_CLICKHOUSE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_ioc_commands_that_query_with_user_input(server_ch):
    """`ioc alerts list/timeline`, `ioc hotline status --day`, `ioc reconcile --version-set`: user input is a
    parameter, never SQL; a bad value is a clear error (exit 1 or 2), never a traceback; nothing is dropped."""
    ch = server_ch
    seed.active(ch)
    seed.values(ch, [seed.value(IND, u, TODAY, 3.0) for u in ("74", D718)])
    seed.alerts(ch, [seed.alert_row("a718", C718, D718)])
    before = _counts(ch)
    for value in (HOSTILE[0], HOSTILE[1], HOSTILE[5], HOSTILE[10]):
        runs = [
            ("alerts", "list", "--district", value, "--json"),
            ("alerts", "list", "--field", value, "--state", value, "--json"),
            ("alerts", "timeline", value, "--json"),
            ("hotline", "status", "--day", value, "--json"),
            ("reconcile", "--version-set", value, "--json"),
        ]
        for args in runs:
            res = _ioc(*args, url=ch.url)
            assert "Traceback" not in res.stderr, (args, res.stderr[-2000:])
            assert res.returncode in (0, 1, 2), (args, res.returncode, res.stderr[-500:])
            if res.returncode == 0 and args[1] == "list":
                assert json.loads(res.stdout) in ([], {"alerts": []}), (args, res.stdout[:300])
    assert _counts(ch) == before
