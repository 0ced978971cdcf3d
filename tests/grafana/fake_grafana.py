"""A small local HTTP server answering the Grafana HTTP API endpoints grafana-client calls for publish
(teams, folders and their permissions, datasources, dashboards), keeping state and recording requests.
A fake for publish's logic only: no Grafana can run on this machine."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeGrafana:
    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[tuple[str, str, Any]] = []
        self.teams: dict[int, str] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.permissions: dict[str, list[dict[str, Any]]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    # -- the API ------------------------------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")[1:]  # after "api"
        if parts == ["teams", "search"]:
            name = query.get("name", [""])[0]
            teams = [{"id": i, "name": n} for i, n in self.teams.items() if n == name]
            return 200, {"totalCount": len(teams), "teams": teams, "page": 1, "perPage": 1000}
        if parts == ["teams"] and method == "POST":
            team_id = len(self.teams) + 1
            self.teams[team_id] = body["name"]
            return 200, {"message": "Team created", "teamId": team_id}
        if parts == ["folders"] and method == "POST":
            uid = body["uid"]
            self.folders[uid] = {
                "id": len(self.folders) + 1,
                "uid": uid,
                "title": body["title"],
                "version": 1,
            }
            self.permissions[uid] = [  # Grafana's defaults for a new folder
                {"role": "Viewer", "permission": 1, "teamId": 0, "userId": 0},
                {"role": "Editor", "permission": 2, "teamId": 0, "userId": 0},
            ]
            return 200, self.folders[uid]
        if parts[:1] == ["folders"] and len(parts) == 2:
            folder = self.folders.get(parts[1])
            if folder is None:
                return 404, {"message": "folder not found"}
            if method == "PUT":
                folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        if parts[:1] == ["folders"] and parts[2:] == ["permissions"]:
            if parts[1] not in self.folders:
                return 404, {"message": "folder not found"}
            if method == "POST":
                self.permissions[parts[1]] = [
                    {"role": "", "userId": 0, "teamId": 0, **item} for item in body["items"]
                ]
                return 200, {"message": "Folder permissions updated"}
            return 200, self.permissions[parts[1]]
        if parts == ["datasources"] and method == "POST":
            self._store_datasource(body)
            return 200, {"message": "Datasource added", "datasource": self.datasources[body["uid"]]}
        if parts[:2] == ["datasources", "uid"]:
            uid = parts[2]
            if method == "PUT":
                self._store_datasource(body)
                return 200, {"message": "Datasource updated"}
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            return 200, self.datasources[uid]
        if parts[:2] == ["dashboards", "uid"]:
            stored = self.dashboards.get(parts[2])
            if stored is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": stored["dashboard"], "meta": {"folderUid": stored["folderUid"]}}
        if parts == ["dashboards", "db"] and method == "POST":
            model = dict(body["dashboard"])
            old = self.dashboards.get(model["uid"])
            model.update(id=old["dashboard"]["id"] if old else len(self.dashboards) + 1,
                         version=old["dashboard"]["version"] + 1 if old else 1)  # fmt: skip
            self.dashboards[model["uid"]] = {"dashboard": model, "folderUid": body["folderUid"]}
            return 200, {"status": "success", "uid": model["uid"], "version": model["version"]}
        return 404, {"message": f"no route {method} {path}"}

    def _store_datasource(self, body: dict[str, Any]) -> None:
        ds = {k: v for k, v in body.items() if k != "secureJsonData"}
        ds["secureJsonFields"] = {k: True for k in body.get("secureJsonData", {})}
        self.datasources[body["uid"]] = ds

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlparse(self.path)
                fake.requests.append((self.command, url.path, body))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    status, payload = 401, {"message": "Unauthorized"}
                else:
                    status, payload = fake.route(self.command, url.path, parse_qs(url.query), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
