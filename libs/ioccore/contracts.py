"""Contract loading: event schemas, decoding Kafka record values into typed CloudEvents.

A schema at contracts/events/<dir>/<name>.schema.json describes the `data` of the CloudEvents type
`vn.binhduong.<dir>.<name>`. A record value is one event (a JSON object) or a batch (a JSON array of
events). Each event is checked against the envelope and its type's schema; what fails comes back as a
Rejection with a reason a person can act on, never as an exception.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import fastjsonschema
import msgspec
from fastjsonschema.draft07 import CodeGeneratorDraft07

from ioccore.errors import ContractError

TYPE_PREFIX = "vn.binhduong."
MAX_RECORD_BYTES = 4 * 1024 * 1024
_json = msgspec.json.Decoder()


def parse_json(raw: bytes | None, decoder: Any = None) -> Any:
    """msgspec's JSON decoding (`decoder`, or untyped), with every way hostile bytes fail raised as
    msgspec.DecodeError with the reason. msgspec itself raises UnicodeDecodeError for UTF-8-encoded surrogates
    (bytes ED A0 80..ED BF BF), RecursionError for nesting deeper than the interpreter's limit and TypeError
    for a record without a value (a tombstone); a consumer catching only DecodeError would crash on each."""
    if raw is None:
        raise msgspec.DecodeError("record without a value (a tombstone)")
    try:
        return (decoder or _json).decode(raw)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"not valid UTF-8: {exc}") from None
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply (over the recursion limit)") from None


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A validated CloudEvents 1.0 event. `time` is timezone-aware."""

    id: str
    source: str
    type: str
    time: dt.datetime
    subject: str
    data: dict[str, Any]
    specversion: str = "1.0"
    datacontenttype: str | None = None
    dataschema: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The event's identity: redeliveries and re-sends share it."""
        return (self.source, self.id)


@dataclass(frozen=True)
class Rejection:
    """An event (or a whole record) that cannot be accepted, and why."""

    position: int  # index inside a batch record; 0 for a single event
    reason: str
    raw: bytes
    source: str = ""
    type: str = ""


@dataclass(frozen=True)
class EventType:
    name: str  # vn.binhduong.<dir>.<name>
    schema_path: Path
    schema: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.schema.get("title", self.name))


def type_name_for(schema_path: Path, events_dir: Path) -> str:
    rel = schema_path.relative_to(events_dir)
    if len(rel.parts) != 2 or not rel.name.endswith(".schema.json"):
        raise ContractError(f"{schema_path}: event schemas live at events/<dir>/<name>.schema.json")
    return f"{TYPE_PREFIX}{rel.parts[0]}.{rel.name.removesuffix('.schema.json')}"


def _validator_message(exc: fastjsonschema.JsonSchemaValueException, where: str) -> str:
    """fastjsonschema's message, with the path named from `where` and only the missing keys listed."""
    name = exc.name or "data"
    path = where + name[len("data") :] if name.startswith("data") else name
    if exc.rule == "required" and isinstance(exc.value, dict) and isinstance(exc.rule_definition, list):
        missing = [k for k in exc.rule_definition if k not in exc.value]
        return f"{path} lacks required {', '.join(missing)}"
    msg = exc.message
    return path + msg[len(name) :] if msg.startswith(name) else msg


# The envelope properties the typed fast path knows; an envelope schema with others disables it.
_FAST_FIELDS = {
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
}


def _string(prop: dict[str, Any]) -> Any:
    meta = {k: prop[j] for j, k in (("minLength", "min_length"), ("maxLength", "max_length")) if j in prop}
    if prop.get("format") == "date-time":
        meta["pattern"] = CodeGeneratorDraft07.FORMAT_REGEXS["date-time"]
    return Annotated[str, msgspec.Meta(**meta)] if meta else str


class TypedEnvelope:
    """A msgspec decoder for the envelope, and the `pattern`s it leaves to `valid` (JSON Schema's unanchored
    search, as msgspec does it): source, type and subject repeat, so each distinct value is matched once."""

    MEMO_MAX = 10_000

    def __init__(self, decoder: Any, patterns: list[tuple[str, re.Pattern[str]]]):
        self.decoder = decoder
        self.patterns = [(name, rx, set()) for name, rx in patterns]

    def decode(self, raw: bytes) -> Any:
        return self.decoder.decode(raw)

    def valid(self, env: Any) -> bool:
        for name, rx, good in self.patterns:
            v = getattr(env, name)
            if v is msgspec.UNSET or v in good:
                continue
            if rx.search(v) is None:
                return False
            if len(good) >= self.MEMO_MAX:
                good.clear()
            good.add(v)
        return True


def typed_envelope(schema: dict[str, Any]) -> TypedEnvelope | None:
    """A msgspec decoder equivalent to the envelope schema for events without extension attributes, built
    from the schema itself (nothing restated); None when the schema has properties it does not know."""
    props = schema["properties"]
    required = set(schema["required"])
    if (
        set(props) != _FAST_FIELDS
        or not {"specversion", "id", "source", "type", "time", "subject", "data"} <= required
    ):
        return None
    if set(props["data"]) - {"type", "description"} or props["data"].get("type") != "object":
        return None
    fields: list[Any] = []
    patterns: list[tuple[str, re.Pattern[str]]] = []
    for name in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"):
        prop = props[name]
        if set(prop) - {"type", "const", "minLength", "maxLength", "pattern", "format", "description"}:
            return None
        if prop.get("format") not in (None, "date-time"):
            return None
        if "pattern" in prop and "const" not in prop:
            patterns.append((name, re.compile(prop["pattern"])))
        kind = Literal[prop["const"]] if "const" in prop else _string(prop)
        fields.append((name, kind) if name in required else (name, kind | msgspec.UnsetType, msgspec.UNSET))
    fields.append(("data", dict[str, Any]))
    struct = msgspec.defstruct("TypedEnvelope", fields, forbid_unknown_fields=True, kw_only=True)
    return TypedEnvelope(msgspec.json.Decoder(list[struct] | struct), patterns)


class Contracts:
    """The event contracts of one contracts directory, compiled once."""

    def __init__(self, contracts_dir: Path):
        self.dir = contracts_dir
        self.events_dir = contracts_dir / "events"
        envelope_path = self.events_dir / "envelope.schema.json"
        self.envelope_schema = _read_json(envelope_path)
        self._envelope = fastjsonschema.compile(self.envelope_schema)
        self._typed = typed_envelope(self.envelope_schema)
        self.types: dict[str, EventType] = {}
        self._validators: dict[str, Any] = {}
        for path in sorted(self.events_dir.glob("*/*.schema.json")):
            name = type_name_for(path, self.events_dir)
            schema = _read_json(path)
            try:
                self._validators[name] = fastjsonschema.compile(schema)
            except fastjsonschema.JsonSchemaDefinitionException as exc:
                raise ContractError(f"{path}: invalid JSON Schema: {exc}") from exc
            self.types[name] = EventType(name, path, schema)

    # -- validation -------------------------------------------------------------------------
    def check(self, obj: Any) -> str | None:
        """None when `obj` is a valid event, else the reason."""
        if not isinstance(obj, dict):
            return f"an event must be a JSON object, got {type(obj).__name__}"
        try:
            self._envelope(obj)
        except fastjsonschema.JsonSchemaValueException as exc:
            return "envelope: " + _validator_message(exc, "event")
        validator = self._validators.get(obj["type"])
        if validator is None:
            return f"unknown event type {obj['type']!r}: no schema under contracts/events/"
        try:
            validator(obj["data"])
        except fastjsonschema.JsonSchemaValueException as exc:
            return f"data of {obj['type']}: " + _validator_message(exc, "data")
        return None

    def to_event(self, obj: dict[str, Any]) -> CloudEvent | str:
        try:
            event = msgspec.convert(obj, CloudEvent, strict=False)
        except msgspec.ValidationError as exc:
            return f"envelope: {exc}"
        if event.time.tzinfo is None:
            return "envelope: time must carry a UTC offset (RFC 3339), e.g. 2026-01-05T08:15:00+07:00"
        return event

    def decode(self, raw: bytes | None) -> Iterator[CloudEvent | Rejection]:
        """Decode one Kafka record value: one event or a JSON array of events. A record without a value (a
        tombstone, which anyone may write to a compacted topic) is rejected like any other non-event."""
        if raw is None:
            yield Rejection(0, "record without a value (a tombstone): no event", b"")
            return
        if len(raw) > MAX_RECORD_BYTES:
            yield Rejection(0, f"record of {len(raw)} bytes is over the {MAX_RECORD_BYTES}-byte limit", raw)
            return
        fast = self._fast(raw)
        if fast is not None:
            yield from fast
        else:
            yield from self._checked(raw)

    def _checked(self, raw: bytes) -> Iterator[CloudEvent | Rejection]:
        """The schema path: every event checked against the JSON Schemas, each failure with its reason."""
        try:
            obj = parse_json(raw)
        except msgspec.DecodeError as exc:
            yield Rejection(0, f"not valid UTF-8 JSON: {exc}", raw)
            return
        if isinstance(obj, list):
            for position, item in enumerate(obj):
                yield self._one(item, position, None)
        else:
            yield self._one(obj, 0, raw)

    def _fast(self, raw: bytes) -> list[CloudEvent] | None:
        """The record's events when every one is valid (typed decoding: the common case, ~5x faster); None
        otherwise, and the caller takes the schema path, which names each invalid event's reason."""
        if self._typed is None:
            return None
        try:
            got = parse_json(raw, self._typed)
        except msgspec.DecodeError:  # ValidationError included
            return None
        out: list[CloudEvent] = []
        unset = msgspec.UNSET
        validators = self._validators
        valid = self._typed.valid
        fromisoformat = dt.datetime.fromisoformat
        for env in got if isinstance(got, list) else (got,):
            validator = validators.get(env.type)
            if validator is None or not valid(env):
                return None
            try:
                validator(env.data)
                t = env.time
                # 2026-01-05T08:15:00+07:00 (the usual shape) parses the same either way, fromisoformat faster
                plain = len(t) == 25 and t[10] == "T" and t[19] in "+-"
                time = fromisoformat(t) if plain else msgspec.convert(t, dt.datetime)
            except (fastjsonschema.JsonSchemaValueException, msgspec.ValidationError):
                return None
            if time.tzinfo is None:
                return None
            out.append(
                CloudEvent(
                    id=env.id,
                    source=env.source,
                    type=env.type,
                    time=time,
                    subject=env.subject,
                    data=env.data,
                    specversion=env.specversion,
                    datacontenttype=None if env.datacontenttype is unset else env.datacontenttype,
                    dataschema=None if env.dataschema is unset else env.dataschema,
                )
            )
        return out

    def _one(self, obj: Any, position: int, raw: bytes | None) -> CloudEvent | Rejection:
        reason = self.check(obj)
        if reason is None:
            result = self.to_event(obj)
            if isinstance(result, CloudEvent):
                return result
            reason = result
        item_raw = raw if raw is not None else msgspec.json.encode(obj)
        source = obj.get("source", "") if isinstance(obj, dict) else ""
        etype = obj.get("type", "") if isinstance(obj, dict) else ""
        return Rejection(
            position,
            reason,
            item_raw,
            source if isinstance(source, str) else "",
            etype if isinstance(etype, str) else "",
        )

    def examples(self) -> Iterator[tuple[Path, Any]]:
        """Every example event: events/<dir>/examples/*.json."""
        for path in sorted(self.events_dir.glob("*/examples/*.json")):
            yield path, _read_json(path)


def encode_event(event: CloudEvent | dict[str, Any]) -> bytes:
    """The structured-mode JSON of an event (time in RFC 3339 with its offset)."""
    return msgspec.json.encode(event)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: {exc}") from exc


@lru_cache(maxsize=4)
def load_contracts(contracts_dir: Path | None = None) -> Contracts:
    if contracts_dir is None:
        from ioccore.settings import get_settings

        contracts_dir = get_settings().contracts_dir
    return Contracts(contracts_dir)
