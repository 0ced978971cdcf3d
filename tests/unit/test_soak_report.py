"""`make soak` report from its samples: table, summary, verdict, outputs (pure; no servers)."""

import json

from bench.soak import LogErrors, summarize, table, write_outputs

SERVICES = ["indicators", "alerts", "hotline", "gateway", "simulator"]
GOOD_INVARIANT = {"holds": True, "valid_events": 1000, "distinct_valid": 1000, "archived_final": 1000}
GOOD_RECONCILE = {"checked": 500, "mismatches": 0}


def _samples(
    minutes: float = 30,
    every_s: float = 15,
    leak_mb_per_h: float = 0.0,
    restarts_at: float | None = None,
    end_lag: int = 0,
) -> list[dict]:
    out = []
    t = 0.0
    traffic_s = minutes * 60
    while t <= traffic_s + 60:
        phase = "traffic" if t <= traffic_s else "drain"
        lag = 0 if phase == "drain" else int(50 + 40 * ((t // every_s) % 3))
        if phase == "drain" and t >= traffic_s + 60:
            lag = end_lag
        rss = {name: 120.0 + (t / 3600 * leak_mb_per_h if name == "indicators" else 0.0) for name in SERVICES}
        rss["kafka"] = 50 + t / 10  # the in-memory broker grows with data: reported, never judged
        restarts = dict.fromkeys(SERVICES, 0)
        if restarts_at is not None and t >= restarts_at:
            restarts["hotline"] = 1
        out.append(
            {
                "t": t,
                "phase": phase,
                "lag": {"ioc-indicators": lag, "ioc-alerts": lag // 2},
                "produced": int(t * 130),
                "archived": int(t * 130) - lag,
                "dead_letters": {},
                "rss_mb": rss,
                "cpu_pct": dict.fromkeys(rss, 10.0),
                "error_lines": dict.fromkeys(SERVICES, 0),
                "restarts": restarts,
            }
        )
        t += every_s
    return out


def _summary(samples, **kw):
    args = {"services": SERVICES, "drained": True, "invariant": GOOD_INVARIANT, "reconcile": GOOD_RECONCILE}
    return summarize(samples, **{**args, **kw})


def test_a_steady_run_passes_with_its_figures():
    s = _summary(_samples())
    assert s["passed"] is True
    assert all(v is True for v in s["checks"].values())
    assert s["lag"]["ioc-indicators"] == {"peak": 130, "end": 0}
    assert s["lag"]["ioc-alerts"]["peak"] == 65
    mem = s["memory"]["indicators"]
    assert mem["start_mb"] == mem["peak_mb"] == mem["end_mb"] == 120.0
    assert mem["growth_mb_per_h"] == 0.0 and mem["bounded"] is True
    # the broker grows (360 MB/h here) but is reported, not judged
    assert s["memory"]["kafka"]["growth_mb_per_h"] == 360.0 and s["memory"]["kafka"]["bounded"] is None
    assert s["events_per_s"] == 130.0 and s["traffic_minutes"] == 30.0


def test_a_service_whose_memory_keeps_growing_fails_the_memory_criterion():
    s = _summary(_samples(leak_mb_per_h=60))
    assert s["memory"]["indicators"]["growth_mb_per_h"] == 60.0
    assert s["memory"]["indicators"]["bounded"] is False
    assert s["memory"]["alerts"]["bounded"] is True
    assert s["memory"]["simulator"]["bounded"] is None  # the load generator is reported, not judged
    assert s["checks"]["memory_bounded"] is False and s["passed"] is False
    # below max(25 MB/h, 10% of the median RSS per hour) it is bounded
    assert _summary(_samples(leak_mb_per_h=20))["checks"]["memory_bounded"] is True


def test_a_short_run_does_not_judge_memory_but_judges_the_rest():
    s = _summary(_samples(minutes=2, leak_mb_per_h=5000))
    assert s["checks"]["memory_bounded"] is None
    assert s["memory"]["indicators"]["bounded"] is None
    assert s["passed"] is True


def test_restarts_lag_left_over_a_broken_invariant_or_mismatches_fail_the_verdict():
    restarted = _summary(_samples(restarts_at=600))
    assert restarted["errors"]["restarts"]["hotline"] == 1 and restarted["errors"]["restarts_total"] == 1
    assert restarted["checks"]["no_unexpected_errors"] is False and not restarted["passed"]

    lagging = _summary(_samples(end_lag=7), drained=False)
    assert lagging["lag"]["ioc-indicators"]["end"] == 7
    assert lagging["checks"]["lag_drained"] is False and not lagging["passed"]

    broken = _summary(_samples(), invariant={**GOOD_INVARIANT, "holds": False, "missing": 3})
    assert broken["checks"]["archived_exactly_once"] is False and not broken["passed"]

    mismatched = _summary(_samples(), reconcile={"checked": 500, "mismatches": 2})
    assert mismatched["checks"]["reconcile_clean"] is False and not mismatched["passed"]

    failed_reconcile = _summary(_samples(), reconcile={"error": "timeout", "mismatches": None})
    assert failed_reconcile["checks"]["reconcile_clean"] is False


def test_a_run_without_traffic_fails():
    samples = _samples()
    for s in samples:
        s["produced"] = s["archived"] = 0
    idle = _summary(samples)
    assert idle["checks"]["traffic_flowed"] is False and not idle["passed"]


def test_dead_letters_count_as_errors_unless_expected():
    samples = _samples()
    samples[-1]["dead_letters"] = {"ioc.events": 4}
    assert _summary(samples)["checks"]["no_unexpected_errors"] is False
    assert _summary(samples, expected_dead_letters=4)["checks"]["no_unexpected_errors"] is True


def test_the_table_has_a_row_every_five_minutes_and_the_last_sample():
    samples = _samples(minutes=30)
    rows = table(samples)
    assert [r["minute"] for r in rows] == [0, 5, 10, 15, 20, 25, 30, 31]
    assert rows[-1]["phase"] == "drain" and rows[-1]["lag_total"] == 0
    assert rows[1]["lag_total"] == rows[1]["lag"]["ioc-indicators"] + rows[1]["lag"]["ioc-alerts"]
    assert rows[1]["produced"] == 300 * 130


def test_outputs_are_written_png_markdown_and_json(tmp_path):
    samples = _samples(minutes=12, restarts_at=300)
    summary = _summary(samples)
    report = {
        "started_at": "2026-11-24 00:00 UTC",
        "machine": "test",
        "config": {"minutes": 12, "rate_factor": 2, "interval_s": 15, "simulated_day_s": 300},
        "traffic_end_s": 720,
        "summary": summary,
        "table": table(samples),
        "samples": samples,
    }
    png, md, js = write_outputs(report, tmp_path)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    text = md.read_text(encoding="utf-8")
    assert "✗ FAIL" in text and "restarts: 1" in text and "| 5 | traffic |" in text
    assert json.loads(js.read_text(encoding="utf-8"))["summary"]["checks"] == summary["checks"]


def test_service_logs_are_scanned_incrementally_for_errors_and_stalls(tmp_path):
    log = tmp_path / "indicators.log"
    log.write_text(
        '{"event": "worker.started", "level": "info"}\n'
        '{"event": "batch.write_failed", "level": "error", "error": "timeout"}\n'
        "[2026-11-24 00:48:57,640] [17085] [ERROR] [^---AIOKafkaConsumerThread]: Thread keepalive is not responding...\n"
        '{"event": "batch.write_fail',  # a line still being written is read next time
        encoding="utf-8",
    )
    errors = LogErrors()
    assert errors.scan("indicators", log) == 1
    assert errors.stalls["indicators"] == 1
    with open(log, "a", encoding="utf-8") as f:
        f.write('ed", "level": "error", "error": "timeout"}\nTraceback (most recent call last):\n')
    assert errors.scan("indicators", log) == 3
    assert errors.messages == {
        "indicators: batch.write_failed": 2,
        "indicators: Traceback (most recent call last):": 1,
    }
    assert errors.scan("alerts", tmp_path / "missing.log") == 0


def test_records_put_back_are_reported_and_records_not_found_fail_the_verdict(tmp_path):
    log = tmp_path / "indicators.log"
    line = '[2026-12-06 15:04:38,529] [21124] [WARNING] {{"topic": "ioc.events", "partition": 2, "filled": {}, "missing": {}, "event": "kafka.gap_{}", "level": "warning"}}\n'
    log.write_text(line.format(2, 0, "filled") + line.format(1, 0, "filled"), encoding="utf-8")
    errors = LogErrors()
    assert errors.scan("indicators", log) == 0  # a warning, not an error
    assert errors.gaps == {"indicators": [3, 0]}
    samples = _samples()
    samples[-1]["gaps"] = {k: list(v) for k, v in errors.gaps.items()}
    repaired = _summary(samples)
    assert repaired["errors"]["gap_records_put_back"] == {"indicators": 3}
    assert repaired["checks"]["no_unexpected_errors"] is True and repaired["passed"]

    with open(log, "a", encoding="utf-8") as f:
        f.write(line.format(0, 4, "unfilled"))
    errors.scan("indicators", log)
    samples[-1]["gaps"] = {k: list(v) for k, v in errors.gaps.items()}
    lost = _summary(samples)
    assert lost["errors"]["gap_records_not_found"] == 4
    assert lost["checks"]["no_unexpected_errors"] is False and not lost["passed"]
