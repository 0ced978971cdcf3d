"""A Faust worker built by ioccore.streams joins the real broker, becomes Ready and processes events.

How fast it gets Ready is a benchmark figure (`ioc bench faust`), not asserted here.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ioccore.kafka import producer
from ioccore.settings import REPO_ROOT
from ioccore.topics import EVENTS

pytestmark = pytest.mark.kafka


def _reader(proc, q):
    for line in proc.stdout:
        q.put(line)
    q.put(None)


def _wait_for(q, needle, timeout, lines):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            return False
        lines.append(line)
        if needle in line:
            return True
    return False


def test_worker_becomes_ready_and_processes_events(clean_topics, tmp_path):
    import asyncio

    env = {**os.environ, "PROBE_APP_ID": f"probe-{uuid.uuid4().hex[:8]}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_probe"],
        env=env,
        cwd=str(REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc, q), daemon=True).start()
    lines: list[str] = []
    try:
        t0 = time.monotonic()
        assert _wait_for(q, "Ready", 90, lines), "".join(lines[-30:])
        print(f"Faust worker Ready after {time.monotonic() - t0:.1f} s")

        async def send():
            async with producer() as prod:
                for i in range(3):
                    await prod.send_and_wait(EVENTS, f'{{"probe": {i}}}'.encode(), key=str(i).encode())

        asyncio.run(send())
        for _ in range(3):
            assert _wait_for(q, "PROCESSED", 60, lines), "".join(lines[-30:])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert sum("PROCESSED" in line for line in lines) == 3
    assert proc.returncode == 0, "".join(lines[-30:])
