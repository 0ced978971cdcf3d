"""Alert commands: sent on ioc.alert.commands, answered on ioc.alert.command.results (correlated by
command_id). One results reader per gateway process, started before any command is sent."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from typing import Any

import msgspec

from ioccore.contracts import parse_json
from ioccore.logging import get_logger
from ioccore.topics import ALERT_COMMAND_RESULTS, ALERT_COMMANDS
from services.gateway.kafka_io import tail

log = get_logger("gateway.commands")
COMMAND_TYPE = "vn.binhduong.alerts.command"
SOURCE = "urn:ioc:gateway"
_enc = msgspec.json.Encoder()


class CommandTimeout(Exception):
    pass


def command_event(alert: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": data["command_id"],
        "source": SOURCE,
        "type": COMMAND_TYPE,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "subject": alert["unit"],
        "datacontenttype": "application/json",
        "data": data,
    }


def new_command_id() -> str:
    return str(uuid.uuid4())


class CommandBus:
    def __init__(self, producer: Any, bootstrap: str):
        self.producer = producer
        self.bootstrap = bootstrap
        self._pending: dict[str, asyncio.Future] = {}
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-command-results")
        await asyncio.wait_for(self._ready.wait(), timeout=30)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        async with tail(
            ALERT_COMMAND_RESULTS, bootstrap=self.bootstrap, client_id="ioc-gateway-results"
        ) as feed:
            self._ready.set()
            while True:
                for rec in await feed.records(timeout_ms=500, max_records=1000):
                    self._resolve(rec.value)

    def _resolve(self, raw: bytes) -> None:
        try:
            doc = parse_json(raw)
        except msgspec.DecodeError:
            log.warning("commands.bad_result", raw=raw[:200])
            return
        for ev in doc if isinstance(doc, list) else [doc]:
            data = ev.get("data") if isinstance(ev, dict) else None
            if not isinstance(data, dict):
                continue
            fut = self._pending.get(str(data.get("command_id")))
            if fut is not None and not fut.done():
                fut.set_result(data)

    async def send(self, alert: dict[str, Any], data: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send the command and wait for its result; CommandTimeout when none comes in time."""
        cid = data["command_id"]
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        try:
            await self.producer.send_and_wait(
                ALERT_COMMANDS, _enc.encode(command_event(alert, data)), key=alert["alert_id"].encode()
            )
            return await asyncio.wait_for(fut, timeout=timeout_s)
        except TimeoutError as exc:
            raise CommandTimeout(cid) from exc
        finally:
            self._pending.pop(cid, None)
