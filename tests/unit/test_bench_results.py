"""`make bench` results table: each target judged from the figure the benchmark printed (pure, no servers)."""

import datetime as dt
import json

from bench.results import TARGETS, evaluate, render, write_report

RESULTS = {
    "indicators": {"events_per_s": 11489, "baseline_events_per_s": 247695, "ratio": 0.046, "rss_mb": 846},
    "alerts": {"p50_ms": 81.9, "p99_ms": 801.9, "alerts": 298, "baseline_one_hop_p50_ms": 10.1},
    "gateway": {
        "ingest_batched": {"events_per_s": 41609, "baseline_direct_kafka_events_per_s": 216828},
        "single_event_latency": {"p99_ms": 51.2},
        "sse_fanout": {"clients_complete": 200},
    },
}


def test_each_target_is_judged_from_its_figure():
    rows = {(r["benchmark"], r["what"]): r for r in evaluate(RESULTS)}
    assert rows["indicators", "events/s into ClickHouse, full catalog"]["met"] is False
    assert rows["indicators", "worker RSS, MB"]["met"] is True
    assert rows["alerts", "update crossing a rule -> alert event, p99 ms"]["met"] is True
    assert rows["gateway", "single-event POST at 500 req/s, p99 ms"]["met"] is False
    assert rows["gateway", "batched ingest, events/s"]["met"] is True
    # benchmarks that did not run have no rows; a missing figure is "no figure", never "met"
    assert not any(r["benchmark"] == "hotline" for r in rows.values())
    broken = evaluate({"alerts": {"p50_ms": 1}})
    assert broken == [{**broken[0], "figure": None, "met": None}]
    assert len(evaluate(RESULTS)) == sum(len(TARGETS[n]) for n in RESULTS)


def test_the_report_names_machine_figures_baselines_and_verdicts(tmp_path):
    md, js = write_report(RESULTS, tmp_path)
    text = md.read_text(encoding="utf-8")
    assert "✗ chưa đạt / not met" in text and "✓ đạt / met" in text
    assert "247695" in text and "216828" in text  # same-run baselines
    doc = json.loads(js.read_text(encoding="utf-8"))
    assert doc["machine"]["cpus"] and doc["results"] == RESULTS
    assert [r["met"] for r in doc["targets"]] == [r["met"] for r in evaluate(RESULTS)]
    assert render(RESULTS, doc["machine"], dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).startswith("# Kết quả đo")
