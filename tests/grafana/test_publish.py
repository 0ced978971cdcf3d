"""`ioc grafana publish` against a local server answering the Grafana API endpoints grafana-client calls:
everything lands in its folder, district folders are restricted to their team, a second publish writes
nothing, and a dashboard changed in Grafana is put back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iocboards.build import default_dir
from iocboards.publish import publish
from ioccore.settings import REPO_ROOT
from tests.grafana.fake_grafana import FakeGrafana


def test_publish_is_idempotent_and_restricts_district_folders(monkeypatch):
    monkeypatch.setenv("IOC_GRAFANA_CLICKHOUSE_PASSWORD", "from-a-secret")
    folders = json.loads((default_dir() / "folders.json").read_text("utf-8"))
    dashboards = sorted((default_dir() / "dashboards").glob("*/*.json"))
    with FakeGrafana("tok") as grafana:
        first = publish(
            grafana.url, "tok", clickhouse_url="clickhouse://grafana@ch.ioc:9000/ioc", progress=False
        )
        assert first["created"] == 10 + len(folders) + 1 + len(
            dashboards
        )  # teams, folders, datasource, boards
        assert first["updated"] == len(folders)  # permissions replace Grafana's defaults
        assert set(grafana.teams.values()) == {"ioc-province"} | {f["team"] for f in folders if f["team"]}
        team = {name: i for i, name in grafana.teams.items()}

        posted = {path: body for method, path, body in grafana.writes() if path.endswith("/permissions")}
        assert posted["/api/folders/ioc-district-718/permissions"] == {
            "items": sorted(
                [
                    {"teamId": team["ioc-province"], "permission": 1},
                    {"teamId": team["ioc-district-718"], "permission": 1},
                ],
                key=lambda i: i["teamId"],
            )
        }
        assert posted["/api/folders/ioc-province/permissions"] == {
            "items": [{"teamId": team["ioc-province"], "permission": 1}]
        }
        for f in folders:  # no role-wide access left: only the teams
            assert all(p["role"] == "" and p["teamId"] for p in grafana.permissions[f["uid"]])

        ds = grafana.datasources["ioc-clickhouse"]
        assert ds["type"] == "grafana-clickhouse-datasource"
        assert ds["jsonData"]["host"] == "ch.ioc" and ds["jsonData"]["defaultDatabase"] == "ioc"
        assert ds["secureJsonFields"] == {"password": True}
        assert grafana.dashboards["district-718-overview"]["folderUid"] == "ioc-district-718"
        assert grafana.dashboards["province-overview"]["folderUid"] == "ioc-province"

        grafana.requests.clear()
        second = publish(
            grafana.url, "tok", clickhouse_url="clickhouse://grafana@ch.ioc:9000/ioc", progress=False
        )
        assert grafana.writes() == []
        assert second["created"] == second["updated"] == 0 and second["unchanged"] > len(dashboards)

        # someone edits a board in Grafana: the next publish puts back that board only
        grafana.dashboards["district-719-alerts"]["dashboard"]["title"] = "edited by hand"
        grafana.requests.clear()
        third = publish(
            grafana.url, "tok", clickhouse_url="clickhouse://grafana@ch.ioc:9000/ioc", progress=False
        )
        assert third["changes"] == ["dashboard district-719-alerts"]
        assert [(m, p) for m, p, _ in grafana.writes()] == [("POST", "/api/dashboards/db")]


def test_publish_needs_to_know_where_clickhouse_is(monkeypatch):
    for var in (
        "IOC_GRAFANA_CLICKHOUSE_HOST",
        "IOC_GRAFANA_CLICKHOUSE_USER",
        "IOC_GRAFANA_CLICKHOUSE_DATABASE",
    ):
        monkeypatch.delenv(var, raising=False)
    with FakeGrafana("tok") as grafana:
        with pytest.raises(ValueError, match="--clickhouse-url"):
            publish(grafana.url, "tok", progress=False)
        assert grafana.writes() == []  # refused before writing anything
        monkeypatch.setenv("IOC_GRAFANA_CLICKHOUSE_HOST", "clickhouse.ioc")
        monkeypatch.setenv("IOC_GRAFANA_CLICKHOUSE_USER", "grafana")
        monkeypatch.setenv("IOC_GRAFANA_CLICKHOUSE_DATABASE", "ioc")
        publish(grafana.url, "tok", progress=False)
        assert grafana.datasources["ioc-clickhouse"]["jsonData"]["host"] == "clickhouse.ioc"


def test_publish_command_refuses_a_wrong_token():
    with FakeGrafana("right") as grafana:
        proc = subprocess.run(
            [sys.executable, "-m", "ioccore.cli", "grafana", "publish", "--url", grafana.url, "--token", "wrong",
             "--clickhouse-url", "clickhouse://grafana@ch.ioc:9000/ioc"],
            cwd=REPO_ROOT, capture_output=True, text=True,
        )  # fmt: skip
    assert proc.returncode == 1
    assert "HTTP 401" in proc.stderr and "Traceback" not in proc.stderr
    assert grafana.writes() == []
