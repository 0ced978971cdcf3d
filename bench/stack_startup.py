"""From nothing to ready: `ioc stack up` on a fresh home, against the bare servers starting alone.

Figure: seconds until both parts answer with topics created and migrations applied.
Baseline (same run): the same two binaries started by hand and polled until they answer, nothing else.
Target (issue 2): under 30 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from bench._stack import private_stack
from ioccore import stack
from ioccore.settings import get_settings

TARGET_S = 30.0


def _bare_start() -> float:
    settings = get_settings()
    parts = stack.parts(settings)
    t0 = time.monotonic()
    procs = {name: p.start() for name, p in parts.items()}
    for name, p in parts.items():
        p.wait_ready(procs[name], 30)
    elapsed = time.monotonic() - t0
    for p in parts.values():
        p.stop()
    return elapsed


def run(repeats: int = 3) -> dict[str, Any]:
    ups, bares = [], []
    for _ in range(repeats):
        with private_stack(start=False) as env:
            bares.append(_bare_start())
        with private_stack(start=False) as env:
            t0 = time.monotonic()
            r = subprocess.run(
                [sys.executable, "-m", "ioccore.cli", "stack", "up"],
                env={**_env(), **env},
                capture_output=True,
            )
            ups.append(time.monotonic() - t0)
            if r.returncode != 0:
                raise SystemExit("ioc stack up failed during the benchmark")
    up = sorted(ups)[len(ups) // 2]
    bare = sorted(bares)[len(bares) // 2]
    return {
        "stack_up_s": round(up, 3),
        "baseline_bare_servers_s": round(bare, 3),
        "ratio": round(up / bare, 2) if bare else None,
        "runs": repeats,
        "target_s": TARGET_S,
        "met": up < TARGET_S,
    }


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    import json

    print(json.dumps(run()))
