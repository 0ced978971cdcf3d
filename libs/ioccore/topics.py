"""The topic list (contracts/topics.yaml): the only topic names code may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ioccore.errors import ContractError

_CLEANUP = {"delete", "compact", "compact,delete"}


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    value: str
    retention_ms: int
    cleanup_policy: str
    description: str = ""
    configs: dict[str, str] = field(default_factory=dict)

    def kafka_configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy, **self.configs}


@lru_cache(maxsize=4)
def load_topics(contracts_dir: Path | None = None) -> dict[str, Topic]:
    if contracts_dir is None:
        from ioccore.settings import get_settings

        contracts_dir = get_settings().contracts_dir
    path = contracts_dir / "topics.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    topics: dict[str, Topic] = {}
    for i, entry in enumerate(doc.get("topics", [])):
        where = f"{path}: topics[{i}]"
        missing = {"name", "partitions", "key", "value", "retention_ms", "cleanup_policy"} - set(entry)
        if missing:
            raise ContractError(f"{where} lacks {sorted(missing)}")
        if entry["name"] in topics:
            raise ContractError(f"{where}: duplicate topic {entry['name']}")
        if entry["cleanup_policy"] not in _CLEANUP:
            raise ContractError(f"{where}: cleanup_policy must be one of {sorted(_CLEANUP)}")
        if not isinstance(entry["partitions"], int) or entry["partitions"] < 1:
            raise ContractError(f"{where}: partitions must be a positive integer")
        topics[entry["name"]] = Topic(
            name=entry["name"],
            partitions=entry["partitions"],
            key=str(entry["key"]),
            value=str(entry["value"]),
            retention_ms=int(entry["retention_ms"]),
            cleanup_policy=entry["cleanup_policy"],
            description=entry.get("description", ""),
            configs={k: str(v) for k, v in (entry.get("configs") or {}).items()},
        )
    return topics


def topic(name: str) -> str:
    """A topic name, checked against topics.yaml."""
    if name not in load_topics():
        raise ContractError(f"topic {name!r} is not in contracts/topics.yaml")
    return name


EVENTS = "ioc.events"
DEADLETTER = "ioc.events.deadletter"
HOTLINE_CALLS = "ioc.hotline.calls"
INDICATORS = "ioc.indicators"
ALERTS = "ioc.alerts"
ALERT_COMMANDS = "ioc.alert.commands"
ALERT_COMMAND_RESULTS = "ioc.alert.command.results"
HOTLINE_LIVE = "ioc.hotline.live"
