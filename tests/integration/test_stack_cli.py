"""`ioc stack` and `ioc run` as an operator uses them, each on a private home and free ports."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ioccore.testing import local_stack_env

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
IOC = [sys.executable, "-m", "ioccore.cli"]


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    e.update(local_stack_env(tmp_path / "home"))
    e.pop("IOC_KAFKA_BOOTSTRAP", None)
    e.pop("IOC_CLICKHOUSE_URL", None)
    e.setdefault("IOC_KAFKA_PORT", str(_free_port()))
    e.setdefault("IOC_CLICKHOUSE_TCP_PORT", str(_free_port()))
    e.setdefault("IOC_CLICKHOUSE_HTTP_PORT", str(_free_port()))
    yield e
    subprocess.run([*IOC, "stack", "down"], env=e, capture_output=True, timeout=60)
    assert processes_of(e["IOC_HOME"]) == [], "a test left processes behind"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_of(home: str) -> list[int]:
    """Processes started for this home (they inherit IOC_HOME)."""
    marker = f"IOC_HOME={home}".encode()
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if marker in (p / "environ").read_bytes().split(b"\0"):
                state = (p / "stat").read_text().split(") ")[-1].split()[0]
                if state != "Z":
                    found.append(int(p.name))
        except OSError:
            continue
    return found


def ioc(env, *args, timeout=60):
    return subprocess.run([*IOC, *args], env=env, capture_output=True, text=True, timeout=timeout)


def status(env) -> dict:
    return json.loads(ioc(env, "stack", "status", "--json").stdout)


def test_up_status_up_again_down(env):
    r = ioc(env, "stack", "up")
    assert r.returncode == 0, r.stderr
    st = status(env)
    assert st["kafka"]["ok"] and st["clickhouse"]["ok"]
    assert st["kafka"]["bootstrap"] == f"127.0.0.1:{env['IOC_KAFKA_PORT']}"
    assert st["clickhouse"]["version"].startswith("18.16")
    assert st["kafka"]["topics"] >= 8
    pids = sorted(processes_of(env["IOC_HOME"]))
    assert len(pids) == 2

    again = ioc(env, "stack", "up")
    assert again.returncode == 0, again.stderr
    assert sorted(processes_of(env["IOC_HOME"])) == pids, "a second `up` started a second copy"

    assert ioc(env, "stack", "down").returncode == 0
    assert processes_of(env["IOC_HOME"]) == []
    st = status(env)
    assert not st["kafka"]["ok"] and not st["clickhouse"]["ok"]
    assert ioc(env, "stack", "status").returncode == 1


def test_down_cleans_up_after_a_child_crashed(env):
    assert ioc(env, "stack", "up").returncode == 0
    os.kill(status(env)["kafka"]["pid"], signal.SIGKILL)
    time.sleep(0.2)
    r = ioc(env, "stack", "down")
    assert r.returncode == 0
    assert processes_of(env["IOC_HOME"]) == []
    # and it starts again cleanly
    assert ioc(env, "stack", "up").returncode == 0
    assert status(env)["kafka"]["ok"]


def test_port_taken_is_named_and_nothing_is_left(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(env["IOC_CLICKHOUSE_TCP_PORT"])))
        s.listen()
        r = ioc(env, "stack", "up", timeout=30)  # a hang fails here
    assert r.returncode == 2
    assert f"clickhouse: port {env['IOC_CLICKHOUSE_TCP_PORT']}" in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.stderr
    assert processes_of(env["IOC_HOME"]) == []


def test_missing_binary_says_what_to_do(env):
    env["IOC_CLICKHOUSE_SERVER_BIN"] = "/nonexistent/clickhouse-server"
    r = ioc(env, "stack", "up")
    assert r.returncode == 2
    assert "clickhouse" in r.stderr and "make setup" in r.stderr
    assert "Traceback" not in r.stderr
    assert processes_of(env["IOC_HOME"]) == []


@pytest.mark.parametrize("var", ["IOC_KAFKA_BOOTSTRAP", "IOC_CLICKHOUSE_URL"])
def test_unreachable_real_server_is_named(env, var):
    port = _free_port()
    env[var] = f"127.0.0.1:{port}" if var == "IOC_KAFKA_BOOTSTRAP" else f"clickhouse://127.0.0.1:{port}/ioc"
    r = ioc(env, "stack", "up")
    assert r.returncode == 2
    part = "kafka" if var == "IOC_KAFKA_BOOTSTRAP" else "clickhouse"
    assert r.stderr.startswith(f"✗ {part}")
    assert str(port) in r.stderr
    assert "Traceback" not in r.stderr
    assert processes_of(env["IOC_HOME"]) == []


def test_run_starts_everything_and_ctrl_c_leaves_nothing(env):
    proc = subprocess.Popen(
        [*IOC, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line and "IOC đang chạy" in "".join(lines):
                break
        output = "".join(lines)
        assert "IOC đang chạy / IOC is running" in output, output
        assert f"127.0.0.1:{env['IOC_KAFKA_PORT']}" in output
        st = status(env)
        assert st["kafka"]["ok"] and st["clickhouse"]["ok"]
        assert len(processes_of(env["IOC_HOME"])) >= 4  # ioc run, broker, ClickHouse, archiver
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Đã dừng / stopped" in rest
    assert processes_of(env["IOC_HOME"]) == []
