"""Per-client rate limits: token buckets for requests and for events."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, n: float, now: float) -> float:
        """0 when granted, else the seconds until `n` tokens would be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, requests_per_s: float, request_burst: float, events_per_s: float, event_burst: float):
        self._spec = (requests_per_s, request_burst, events_per_s, event_burst)
        self._clients: dict[str, tuple[Bucket, Bucket]] = {}

    def check(self, client: str, events: int) -> float:
        """0 when the request may go on; else seconds to wait (Retry-After)."""
        now = time.monotonic()
        buckets = self._clients.get(client)
        if buckets is None:
            rps, rb, eps, eb = self._spec
            buckets = (Bucket(rps, rb, rb, now), Bucket(eps, eb, eb, now))
            self._clients[client] = buckets
        req, ev = buckets
        wait = req.take(1, now)
        if wait:
            return wait
        if events > ev.burst:
            return float("inf")
        wait = ev.take(events, now)
        if wait:
            req.tokens += 1  # not charged for a refused request's events
        return wait
