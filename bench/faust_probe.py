"""A minimal Faust worker built with ioccore.streams.make_app: prints each record it processes.

PROBE_FAUST_DEFAULTS=1 builds it with Faust's default group timing instead (the benchmark baseline).
"""

import os
import sys

import faust

from ioccore.streams import make_app

FAUST_DEFAULT_TIMING = {"broker_session_timeout": 60.0, "broker_heartbeat_interval": 3.0}
app = make_app(
    os.environ["PROBE_APP_ID"], **(FAUST_DEFAULT_TIMING if os.environ.get("PROBE_FAUST_DEFAULTS") else {})
)
events = app.topic("ioc.events", value_serializer="raw")
seen = app.Table("probe-seen", default=int, partitions=4)


@app.agent(events, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    async for value in stream:
        seen["n"] = seen["n"] + 1
        print(f"PROCESSED {value[:60]!r}", flush=True)


@app.task
async def announce() -> None:
    print("PROBE_STARTED", flush=True)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--web-port", str(app.conf.web_port)]
    app.main()
