"""`ioc grafana publish`: folders, district teams and their folder permissions, the ClickHouse datasource and
every dashboard of deploy/grafana, pushed to a running Grafana through grafana-client.

Idempotent: each object is read first and written only when it differs, so a second publish writes nothing.
Permissions: a district folder is viewable by its district team and the province team only; the province
folder by the province team. Grafana admins keep access (Grafana's own rule)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError
from rich.progress import Progress

from iocboards.build import default_dir

PROVINCE_TEAM = "ioc-province"
VIEW = 1  # Grafana folder permission levels: 1 View, 2 Edit, 4 Admin


@dataclass
class Result:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"created": len(self.created), "updated": len(self.updated), "unchanged": self.unchanged,
                "changes": self.created + self.updated}  # fmt: skip


def _missing(exc: GrafanaClientError) -> bool:
    return getattr(exc, "status_code", None) == 404


def _get(fn, *args) -> Any | None:
    try:
        return fn(*args)
    except GrafanaClientError as exc:
        if _missing(exc):
            return None
        raise


def desired_datasource(source: Path, clickhouse_url: str | None) -> dict[str, Any]:
    """The provisioning file's datasource, with the address filled in from `clickhouse_url`
    (clickhouse://user@host:port/database); the password only from IOC_GRAFANA_CLICKHOUSE_PASSWORD."""
    doc = yaml.safe_load((source / "provisioning" / "datasources" / "clickhouse.yaml").read_text("utf-8"))
    ds = dict(doc["datasources"][0])
    ds["access"] = "proxy"
    json_data = dict(ds["jsonData"])
    if clickhouse_url:
        u = urlparse(clickhouse_url)
        json_data.update(
            host=u.hostname or "localhost",
            port=u.port or 9000,
            username=u.username or "default",
            defaultDatabase=(u.path or "/default").lstrip("/") or "default",
        )
    # the provisioning file's $VARS are Grafana's to expand; through the API we expand them here
    json_data = {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in json_data.items()}
    unresolved = sorted(k for k, v in json_data.items() if isinstance(v, str) and v.startswith("$"))
    if unresolved:
        raise ValueError(
            f"datasource {', '.join(unresolved)} unknown: pass --clickhouse-url clickhouse://user@host:9000/db "
            "(or set IOC_GRAFANA_CLICKHOUSE_HOST, _USER, _DATABASE)"
        )
    ds["jsonData"] = json_data
    ds.pop("secureJsonData", None)
    password = os.environ.get("IOC_GRAFANA_CLICKHOUSE_PASSWORD")
    if password:
        ds["secureJsonData"] = {"password": password}
    return ds


class Publisher:
    def __init__(self, api: GrafanaApi, source: Path) -> None:
        self.api, self.source, self.result = api, source, Result()

    def team_id(self, name: str) -> int:
        for team in self.api.teams.get_team_by_name(name) or []:
            if team.get("name") == name:
                self.result.unchanged += 1
                return int(team["id"])
        created = self.api.teams.add_team({"name": name})
        self.result.created.append(f"team {name}")
        return int(created["teamId"])

    def folder(self, uid: str, title: str) -> None:
        current = _get(self.api.folder.get_folder, uid)
        if current is None:
            self.api.folder.create_folder(title, uid=uid)
            self.result.created.append(f"folder {uid}")
        elif current.get("title") != title:
            self.api.folder.update_folder(uid, title=title, overwrite=True)
            self.result.updated.append(f"folder {uid}")
        else:
            self.result.unchanged += 1

    def permissions(self, uid: str, team_ids: list[int]) -> None:
        items = [{"teamId": t, "permission": VIEW} for t in sorted(set(team_ids))]
        current = self.api.folder.get_folder_permissions(uid) or []
        have = sorted(
            (p.get("teamId"), p.get("userId"), p.get("role"), p.get("permission"))
            for p in current
            if not p.get("inherited") and (p.get("teamId") or p.get("userId") or p.get("role"))
        )
        want = sorted((i["teamId"], None, None, i["permission"]) for i in items)
        norm = sorted((t or None, u or None, r or None, p) for t, u, r, p in have)
        if norm != want:
            self.api.folder.update_folder_permissions(uid, {"items": items})
            self.result.updated.append(f"permissions {uid}")
        else:
            self.result.unchanged += 1

    def datasource(self, ds: dict[str, Any]) -> None:
        current = _get(self.api.datasource.get_datasource_by_uid, ds["uid"])
        if current is None:
            self.api.datasource.create_datasource(ds)
            self.result.created.append(f"datasource {ds['uid']}")
            return
        same = all(current.get(k) == ds[k] for k in ("name", "type", "jsonData", "access"))
        has_secret = not ds.get("secureJsonData") or (current.get("secureJsonFields") or {}).get("password")
        if same and has_secret:
            self.result.unchanged += 1
            return
        self.api.datasource.update_datasource_by_uid(ds["uid"], ds)
        self.result.updated.append(f"datasource {ds['uid']}")

    def dashboard(self, model: dict[str, Any], folder_uid: str) -> None:
        current = _get(self.api.dashboard.get_dashboard, model["uid"])
        if current is not None:
            stored = {k: v for k, v in current.get("dashboard", {}).items() if k not in ("id", "version")}
            if stored == model and current.get("meta", {}).get("folderUid") == folder_uid:
                self.result.unchanged += 1
                return
        self.api.dashboard.update_dashboard(
            {"dashboard": model, "folderUid": folder_uid, "overwrite": True, "message": "ioc grafana publish"}
        )
        (self.result.created if current is None else self.result.updated).append(f"dashboard {model['uid']}")


def publish(
    url: str,
    token: str,
    *,
    clickhouse_url: str | None = None,
    source: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    source = source or default_dir()
    datasource = desired_datasource(source, clickhouse_url)  # before any write: refuse early
    api = GrafanaApi.from_url(url, credential=token)
    pub = Publisher(api, source)
    folders = json.loads((source / "folders.json").read_text("utf-8"))
    dashboards = sorted((source / "dashboards").glob("*/*.json"))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("Đẩy lên Grafana / publishing", total=len(folders) * 2 + len(dashboards) + 1)
        province_team = pub.team_id(PROVINCE_TEAM)
        for f in folders:
            pub.folder(f["uid"], f["title"])
            teams = [province_team] + ([pub.team_id(f["team"])] if f.get("team") else [])
            bar.advance(task)
            pub.permissions(f["uid"], teams)
            bar.advance(task)
        pub.datasource(datasource)
        bar.advance(task)
        for path in dashboards:
            pub.dashboard(json.loads(path.read_text("utf-8")), path.parent.name)
            bar.advance(task)
    return pub.result.as_dict()
