"""structlog configuration: JSON lines (or console in a terminal), event ids bound with bind_event()."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import structlog

from ioccore.settings import get_settings

_configured = False


class _CurrentStderr:
    """sys.stderr as it is when a line is written (tests and supervisors swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str | None = None, json: bool | None = None) -> None:
    global _configured
    settings = get_settings()
    level_name = (level or settings.log_level).upper()
    as_json = settings.log_json if json is None else json
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=getattr(logging, level_name, logging.INFO), stream=sys.stderr, format="%(message)s"
    )
    # Clients that log their own tracebacks for failures we report ourselves, with a hint.
    for noisy in ("clickhouse_driver", "kafka"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, getattr(logging, level_name, logging.INFO)))
    _configured = True


def get_logger(name: str | None = None, **initial: object) -> structlog.stdlib.BoundLogger:
    if not _configured:
        configure_logging()
    return structlog.get_logger(name, **initial)


def bind_event(event_id: str, event_type: str | None = None) -> None:
    """Bind the event being handled to every log line of the current task."""
    structlog.contextvars.bind_contextvars(event_id=event_id, event_type=event_type)


def unbind_event() -> None:
    structlog.contextvars.unbind_contextvars("event_id", "event_type")


def json_records(text: str, first_key: str) -> Iterator[dict[str, Any]]:
    """The JSON log records in a process's output whose first key is `first_key` (tests and benchmarks read
    workers' progress this way). Faust's log handler may prefix the JSON with a time and a level; lines that
    are not JSON are skipped."""
    marker = '{"' + first_key + '"'
    for line in text.splitlines():
        start = line.find(marker)
        if start < 0:
            continue
        try:
            yield json.loads(line[start:])
        except ValueError:
            continue
