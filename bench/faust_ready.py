"""How fast a Faust worker is Ready against the local broker, and how fast a second one shares the work.

Figure: seconds from process start to Faust's "Ready", with ioccore's group timing.
Baseline (same run, same broker): the same worker with Faust's default group timing.
Target (issue 2): under 10 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

from bench._stack import private_stack
from ioccore.settings import REPO_ROOT

TARGET_S = 10.0


def _ready_s(defaults: bool) -> float:
    env = {**os.environ, "PROBE_APP_ID": f"bench-probe-{uuid.uuid4().hex[:8]}"}
    if defaults:
        env["PROBE_FAUST_DEFAULTS"] = "1"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_probe"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in proc.stdout:
            if "[^Worker]: Ready" in line:
                return time.monotonic() - t0
        raise SystemExit("the Faust probe worker exited before it was Ready")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(repeats: int = 3) -> dict[str, Any]:
    with private_stack():
        tuned = sorted(_ready_s(False) for _ in range(repeats))[repeats // 2]
        baseline = _ready_s(True)
    return {
        "faust_ready_s": round(tuned, 2),
        "baseline_faust_defaults_ready_s": round(baseline, 2),
        "ratio": round(tuned / baseline, 3),
        "runs": repeats,
        "target_s": TARGET_S,
        "met": tuned < TARGET_S,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run()))
