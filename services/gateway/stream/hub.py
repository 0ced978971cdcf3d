"""One shared consumer per gateway process (ioc.indicators, ioc.alerts, ioc.hotline.live) fanning out to
every live-stream client, each filtered to its scope by the events' `subject`.

Each message is the events of one record for one subject, rendered once as an SSE frame and shared by all
clients. The last `buffer` messages are kept so a client reconnecting with Last-Event-ID gets what it missed;
when that is gone (or the process restarted) it gets a `reset` and reloads through the REST API."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ioccore.contracts import parse_json
from ioccore.logging import get_logger
from ioccore.topics import ALERTS, HOTLINE_LIVE, INDICATORS
from services.gateway import metrics
from services.gateway.kafka_io import tail

log = get_logger("gateway.stream")
KIND_OF_TOPIC = {INDICATORS: "indicators", ALERTS: "alerts", HOTLINE_LIVE: "calls"}
KINDS = frozenset(KIND_OF_TOPIC.values())
_enc = msgspec.json.Encoder()


@dataclass(frozen=True)
class Message:
    seq: int
    kind: str
    subject: str
    frame: bytes


@dataclass(eq=False)
class Client:
    units: frozenset[str]
    kinds: frozenset[str]
    queue: asyncio.Queue
    dropped: bool = False
    connected_at: float = field(default_factory=time.monotonic)

    def wants(self, m: Message) -> bool:
        return m.kind in self.kinds and m.subject in self.units


class Hub:
    def __init__(self, buffer: int = 20_000, client_queue: int = 5_000, buffer_bytes: int = 64 * 1024 * 1024):
        self.epoch = uuid.uuid4().hex[:8]
        self.seq = 0
        # The resume buffer is bounded by count and by bytes: an indicators record is one event of up to 1,000
        # values of one unit, so frames range from under 1 kB to ~150 kB, and a count alone let the soak's
        # gateway hold 1 GB (when a record was up to 1,000 whole events, ~300 kB).
        self.buffer: deque[Message] = deque()
        self.buffer_max = buffer
        self.buffer_max_bytes = buffer_bytes
        self.buffer_bytes = 0
        self.clients: set[Client] = set()
        self.client_queue = client_queue
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    # -- intake ---------------------------------------------------------------------------------
    def publish(self, kind: str, events: Iterable[dict[str, Any]]) -> list[Message]:
        """Group a record's events by subject and fan each group out to the clients that see it."""
        by_subject: dict[str, list[dict[str, Any]]] = {}
        for ev in events:
            if isinstance(ev, dict) and isinstance(ev.get("subject"), str):
                by_subject.setdefault(ev["subject"], []).append(ev)
        out = []
        for subject, evs in by_subject.items():
            self.seq += 1
            eid = f"{self.epoch}-{self.seq}"
            frame = (
                b"id: "
                + eid.encode()
                + b"\nevent: "
                + kind.encode()
                + b"\ndata: "
                + _enc.encode(evs)
                + b"\n\n"
            )
            m = Message(self.seq, kind, subject, frame)
            self._keep(m)
            out.append(m)
            for c in self.clients:
                if c.wants(m) and not c.dropped:
                    try:
                        c.queue.put_nowait(m)
                    except asyncio.QueueFull:
                        # Too slow to keep up: cut it off; it reconnects with Last-Event-ID.
                        c.dropped = True
                        metrics.STREAM_DROPPED.inc()
        return out

    def _keep(self, m: Message) -> None:
        self.buffer.append(m)
        self.buffer_bytes += len(m.frame)
        while len(self.buffer) > self.buffer_max or (
            self.buffer_bytes > self.buffer_max_bytes and len(self.buffer) > 1
        ):
            self.buffer_bytes -= len(self.buffer.popleft().frame)

    def publish_raw(self, topic: str, raw: bytes | None) -> None:
        kind = KIND_OF_TOPIC.get(topic)
        if kind is None:
            return
        try:
            doc = parse_json(raw)
        except msgspec.DecodeError:
            log.warning("stream.bad_record", topic=topic)
            return
        metrics.STREAM_MESSAGES.labels(kind).inc()
        self.publish(kind, doc if isinstance(doc, list) else [doc])

    # -- clients --------------------------------------------------------------------------------
    def subscribe(
        self, units: frozenset[str], kinds: frozenset[str], last_event_id: str | None
    ) -> tuple[Client, bool]:
        """A new client; replays what it missed since last_event_id. Returns (client, reset needed)."""
        c = Client(units, kinds, asyncio.Queue(maxsize=self.client_queue))
        reset = False
        if last_event_id:
            epoch, _, seq = last_event_id.partition("-")
            oldest = self.buffer[0].seq if self.buffer else self.seq + 1
            # ASCII digits only, and few: int() refuses "²" (which isdigit() admits) and over 4300 digits
            if (
                epoch == self.epoch
                and seq.isascii()
                and seq.isdigit()
                and len(seq) < 19
                and int(seq) >= oldest - 1
            ):
                missed = [m for m in self.buffer if m.seq > int(seq) and c.wants(m)]
                if len(missed) > self.client_queue:
                    reset = True  # too much to replay: reload through REST instead
                else:
                    for m in missed:
                        c.queue.put_nowait(m)
            else:
                reset = True
        self.clients.add(c)
        metrics.STREAM_CLIENTS.set(len(self.clients))
        return c, reset

    def unsubscribe(self, c: Client) -> None:
        self.clients.discard(c)
        metrics.STREAM_CLIENTS.set(len(self.clients))

    # -- the shared consumer --------------------------------------------------------------------
    async def start(self, bootstrap: str) -> None:
        self._task = asyncio.create_task(self._run(bootstrap), name="stream-hub")
        await asyncio.wait_for(self._ready.wait(), timeout=30)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self, bootstrap: str) -> None:
        async with tail(*KIND_OF_TOPIC, bootstrap=bootstrap, client_id="ioc-gateway-stream") as feed:
            self._ready.set()
            while True:
                for rec in await feed.records(timeout_ms=500, max_records=2000):
                    self.publish_raw(rec.topic, rec.value)
