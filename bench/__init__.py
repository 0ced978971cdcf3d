"""Benchmarks (`make bench`, `ioc bench NAME --json`). Each prints its figures and a same-run baseline."""

from __future__ import annotations

from typing import Any


def run_benchmarks(name: str, *, events: int) -> dict[str, Any]:
    from bench import alerts, archive, broker, faust_ready, gateway, hotline, indicators, stack_startup

    available = {
        "stack": lambda: stack_startup.run(),
        "faust": lambda: faust_ready.run(),
        "archive": lambda: archive.run(events=events),
        "indicators": lambda: indicators.run(events=events),
        "gateway": lambda: gateway.run(events=events),
        "alerts": lambda: alerts.run(),
        # events: burst records at 10x the make-run rate (about 19,500 make the full 10 minutes)
        "hotline": lambda: hotline.run(events=events),
        # produce throughput and latency of the local broker: durable storage against memory
        "broker": lambda: broker.run(),
    }
    if name == "all":
        return {key: fn() for key, fn in available.items()}
    if name not in available:
        raise SystemExit(f"unknown benchmark {name!r}; choose one of {', '.join(available)} or all")
    return {name: available[name]()}
