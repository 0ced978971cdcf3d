"""A stand-in for services/alerts in the gateway's tests, to the topics' event contracts: it answers
ioc.alert.commands on ioc.alert.command.results, updates the `alerts` row and emits the lifecycle event on
ioc.alerts, as the real service will. `silent` alert ids get no answer (to test the gateway's timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from ioccore.clickhouse import ClickHouse
from ioccore.kafka import consumer, producer
from ioccore.topics import ALERT_COMMAND_RESULTS, ALERT_COMMANDS, ALERTS
from services.gateway.alerts import service as alert_reads
from tests.gateway import seed

TRANSITION = {"acknowledge": ("acknowledged", "acknowledged"), "assign": ("assigned", "assigned"),
              "comment": ("commented", None), "resolve": ("resolved", "resolved"),
              "silence": ("silenced", None)}  # fmt: skip


class FakeAlertsService:
    def __init__(self, ch: ClickHouse, silent: set[str] | None = None):
        self.ch = ch
        self.silent = silent or set()
        self.commands: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(60), "the fake alerts service did not start"
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=15)

    def decide(self, alert: dict[str, Any], data: dict[str, Any]) -> tuple[str, str]:
        if data.get("expected_version") is not None and data["expected_version"] != alert["version"]:
            return "rejected", "Cảnh báo đã thay đổi / the alert changed since you loaded it"
        if alert["state"] == "resolved":
            return "rejected", "Cảnh báo đã được xử lý xong / the alert is already resolved"
        return "applied", ""

    async def _run(self) -> None:
        async with (
            consumer(ALERT_COMMANDS, group_id=None, auto_offset_reset="earliest") as cons,
            producer() as prod,
        ):
            self._ready.set()
            while not self._stop.is_set():
                batch = await cons.getmany(timeout_ms=200)
                for recs in batch.values():
                    for rec in recs:
                        await self._handle(prod, json.loads(rec.value))

    async def _handle(self, prod, ev: dict[str, Any]) -> None:
        data = ev["data"]
        self.commands.append(ev)
        if data["alert_id"] in self.silent:
            return
        alert = alert_reads.get(self.ch, data["alert_id"])
        outcome, reason = self.decide(alert, data)
        if outcome == "applied":
            transition, state = TRANSITION[data["action"]]
            alert = {**alert, "version": alert["version"] + 1, "state": state or alert["state"]}
            if data["action"] == "acknowledge":
                alert["acknowledged_by"] = data["actor"]["id"]
            row = {**alert, "escalated": int(alert["escalated"]), "silenced": int(alert["silenced"])}
            seed.alerts(self.ch, [row])
            seed.alert_events(
                self.ch,
                [{"alert_id": alert["alert_id"], "version": alert["version"], "transition": transition,
                  "actor": data["actor"]["id"], "state": alert["state"], "command_id": data["command_id"],
                  "payload": json.dumps({"note": data.get("note", "")})}],
            )  # fmt: skip
            lifecycle = seed.alert_event(transition, alert, alert["version"], actor=data["actor"]["id"])
            await prod.send_and_wait(ALERTS, json.dumps(lifecycle).encode(), key=alert["alert_id"].encode())
        result = {
            "specversion": "1.0",
            "id": f"result-{data['command_id']}",
            "source": "urn:ioc:alerts",
            "type": "vn.binhduong.alerts.command.result",
            "time": ev["time"],
            "subject": ev["subject"],
            "data": {"command_id": data["command_id"], "alert_id": data["alert_id"], "outcome": outcome,
                     "reason": reason, "version": alert["version"], "state": alert["state"]},
        }  # fmt: skip
        await prod.send_and_wait(
            ALERT_COMMAND_RESULTS, json.dumps(result).encode(), key=data["command_id"].encode()
        )


@contextlib.contextmanager
def running(ch: ClickHouse, silent: set[str] | None = None):
    with FakeAlertsService(ch, silent) as svc:
        yield svc
