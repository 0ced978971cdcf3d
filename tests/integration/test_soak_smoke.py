"""`make soak` end to end, briefly: its own private stack, every service, traffic at 2x for half a minute."""

import json
import os
import subprocess
import sys

import pytest

from ioccore.settings import REPO_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.timeout(600)]


def test_a_short_soak_drains_archives_every_event_once_and_writes_its_report(tmp_path):
    # The soak starts a stack of its own: it must not be pointed at the session's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", "0.5", "--interval", "5", "--drain-timeout", "180"]
        + ["--out", str(tmp_path), "--no-progress"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=560,
    )
    report_md = tmp_path / "soak.md"
    assert done.returncode == 0, (
        done.stdout + done.stderr + (report_md.read_text() if report_md.exists() else "")
    )
    assert (tmp_path / "soak.png").read_bytes().startswith(b"\x89PNG")
    assert "✓ PASS" in report_md.read_text(encoding="utf-8")
    report = json.loads((tmp_path / "soak.json").read_text(encoding="utf-8"))
    s = report["summary"]
    inv = s["invariant"]
    assert s["events_produced"] > 0 and inv["valid_events"] == s["events_produced"]
    assert inv["holds"] and inv["missing"] == 0 and inv["archived_final"] == inv["distinct_valid"]
    assert s["reconcile"]["mismatches"] == 0 and s["reconcile"]["checked"] > 0
    assert s["checks"]["lag_drained"] and {"ioc-indicators", "ioc-alerts", "ioc-hotline"} <= set(s["lag"])
    assert {"indicators", "alerts", "hotline", "gateway", "simulator"} <= set(s["memory"])
    assert s["errors"]["restarts_total"] == 0 and s["errors"]["error_lines_total"] == 0
    assert len(report["samples"]) >= 3 and report["table"]
