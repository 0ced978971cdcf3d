"""Prometheus metrics of the gateway (/metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("ioc_gateway_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "ioc_gateway_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_EVENTS = Counter("ioc_gateway_ingest_events_total", "Events posted to the ingest", ["outcome"])
INGEST_LIMITED = Counter("ioc_gateway_ingest_rate_limited_total", "Ingest requests refused by a rate limit")
STREAM_CLIENTS = Gauge("ioc_gateway_stream_clients", "Connected live-stream clients")
STREAM_MESSAGES = Counter("ioc_gateway_stream_messages_total", "Messages read by the stream hub", ["kind"])
STREAM_DROPPED = Counter("ioc_gateway_stream_dropped_clients_total", "Clients cut off for falling behind")
COMMANDS = Counter("ioc_gateway_alert_commands_total", "Alert commands by outcome", ["action", "outcome"])
