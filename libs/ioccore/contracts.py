"""Contract loading: event schemas, decoding Kafka record values into typed CloudEvents.

A schema at contracts/events/<dir>/<name>.schema.json describes the `data` of the CloudEvents type
`vn.binhduong.<dir>.<name>`. A record value is one event (a JSON object) or a batch (a JSON array of
events). Each event is checked against the envelope and its type's schema; what fails comes back as a
Rejection with a reason a person can act on, never as an exception.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import fastjsonschema
import msgspec
from fastjsonschema.draft04 import DOLLAR_FINDER
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
# Envelope keywords typed_envelope knows (extensions, in additionalProperties, always take the schema path).
_ENVELOPE_KEYWORDS = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "additionalProperties",
    "propertyNames",
}
# data_type states draft 7 as fastjsonschema reads it; a schema of another draft keeps fastjsonschema.
_DRAFT07 = "http://json-schema.org/draft-07/schema#"
# Keywords that say nothing about validity: ignored when a schema is turned into msgspec types.
_NOTES = {"$schema", "$id", "$comment", "title", "description", "examples"}
# Keywords whose meaning data_type states exactly; a schema using any other keeps fastjsonschema.
_MAPPED = {
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "items",
    "minItems",
    "maxItems",
}


class Unmapped(Exception):
    """A schema construct msgspec types cannot state exactly: that type's data keeps fastjsonschema."""


def _regex(pattern: str) -> str:
    r"""A `pattern` as fastjsonschema reads it: an unescaped `$` becomes `\Z`, so a trailing newline does not
    match (Python's `$` would let "74\n" pass "^[0-9]{2}$"). Both then search, unanchored."""
    return DOLLAR_FINDER.sub(r"\\Z", pattern)


def _string(prop: dict[str, Any], with_pattern: bool = True, with_format: bool = True) -> Any:
    """str with the schema's minLength/maxLength (code points, like len()), `pattern` and `format`."""
    meta: dict[str, Any] = {}
    for key, name in (("minLength", "min_length"), ("maxLength", "max_length")):
        if key in prop:
            if type(prop[key]) is not int:
                raise Unmapped(f"{key} {prop[key]!r}")
            meta[name] = prop[key]
    regexes = []
    if with_pattern and "pattern" in prop:
        regexes.append(_regex(prop["pattern"]))
    fmt = prop.get("format") if with_format else None
    if fmt in CodeGeneratorDraft07.FORMAT_REGEXS:  # fastjsonschema matches these at the start: \A says so
        regexes.append(r"\A(?:" + CodeGeneratorDraft07.FORMAT_REGEXS[fmt] + ")")
    elif fmt == "regex":  # checked by compiling, not by a regex
        raise Unmapped("format regex")
    # any other format: fastjsonschema ignores it, and so does the typed path
    if len(regexes) > 1:
        raise Unmapped("pattern and format on one string")
    if regexes:
        meta["pattern"] = regexes[0]
    return Annotated[str, msgspec.Meta(**meta)] if meta else str


def _bounds(prop: dict[str, Any], integral: bool) -> dict[str, Any]:
    """minimum/maximum as msgspec ge/le, exact for the kind: an int is >= 0.5 iff >= 1; a float bound
    must equal the schema's number (msgspec compares floats as doubles, Python compares exactly)."""
    meta = {}
    for key, name in (("minimum", "ge"), ("maximum", "le")):
        if key not in prop:
            continue
        bound = prop[key]
        if type(bound) not in (int, float) or not math.isfinite(bound):
            raise Unmapped(f"{key} {bound!r}")
        if integral:
            meta[name] = math.ceil(bound) if name == "ge" else math.floor(bound)
        elif float(bound) != bound:
            raise Unmapped(f"{key} {bound!r} is not a double")
        else:
            meta[name] = float(bound)
    return meta


def _annotated(kind: type, meta: dict[str, Any]) -> Any:
    return Annotated[kind, msgspec.Meta(**meta)] if meta else kind


def data_type(schema: Any, name: str) -> Any:
    """The msgspec type accepting exactly what `schema` accepts as fastjsonschema reads it (JSON Schema
    draft 7), or stricter; Unmapped when that cannot be stated. Derived from the schema, nothing restated.
    Stricter is harmless (such an event takes the schema path); more lenient would be a bug. Knowingly
    stricter: a float with an integral value (5.0) for "integer"."""
    if not isinstance(schema, dict):
        raise Unmapped("a schema that is not an object")
    unknown = set(schema) - _MAPPED - _NOTES
    if unknown:
        raise Unmapped(", ".join(sorted(unknown)))
    if "enum" in schema:
        values = schema["enum"]
        # msgspec's Literal refuses bool for an int and 1.0 for 1 (stricter: fine); other kinds are not mapped
        if not isinstance(values, list) or not all(v is None or type(v) in (str, int) for v in values):
            raise Unmapped("enum of values other than strings, integers and null")
        whole = fastjsonschema.compile({**schema, "$schema": _DRAFT07})  # values the rest also allows
        allowed = []
        for value in values:
            try:
                whole(value)
            except fastjsonschema.JsonSchemaValueException:
                continue
            allowed.append(value)
        literals = tuple(dict.fromkeys(v for v in allowed if v is not None))
        if not allowed:
            raise Unmapped("enum allowing nothing")
        if not literals:
            return None
        return Literal[literals] | None if None in allowed else Literal[literals]
    kinds = schema.get("type")
    if kinds is None:
        if set(schema) - _NOTES:  # keywords that apply to whichever type the value has
            raise Unmapped("constraints without a type")
        return Any
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or len(set(kinds)) != len(kinds) or {"integer", "number"} <= set(kinds):
        raise Unmapped(f"type {kinds!r}")
    # each keyword constrains only values of its own kind, as in JSON Schema
    parts: list[Any] = []
    for kind in kinds:
        if kind == "string":
            parts.append(_string(schema))
        elif kind == "integer":
            parts.append(_annotated(int, _bounds(schema, integral=True)))
        elif kind == "number":  # an int stays an int (and is compared exactly), a float a float
            parts.append(_annotated(int, _bounds(schema, integral=True)))
            parts.append(_annotated(float, _bounds(schema, integral=False)))
        elif kind == "boolean":
            parts.append(bool)
        elif kind == "null":
            parts.append(None)
        elif kind == "object":
            parts.append(_object_type(schema, name))
        elif kind == "array":
            items = schema.get("items")
            if items is not None and not isinstance(items, dict):
                raise Unmapped("items as a list")
            meta = {}
            for key, bound in (("minItems", "min_length"), ("maxItems", "max_length")):
                if key in schema:
                    if type(schema[key]) is not int:
                        raise Unmapped(f"{key} {schema[key]!r}")
                    meta[bound] = schema[key]
            kind_ = list if items is None else list[data_type(items, name + "_item")]  # type: ignore[misc]
            parts.append(_annotated(kind_, meta))
        else:
            raise Unmapped(f"type {kind!r}")
    return parts[0] if len(parts) == 1 else Union[tuple(parts)]  # noqa: UP007


def _object_type(schema: dict[str, Any], name: str) -> Any:
    props = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if (
        not isinstance(props, dict)
        or not isinstance(required, list)
        or not all(isinstance(r, str) for r in required)
        or (extra is not True and extra is not False)
    ):
        raise Unmapped("properties, required or additionalProperties of an unmapped form")
    if extra is False and not set(required) <= set(props):
        raise Unmapped("a required property that additionalProperties forbids")  # nothing valid: leave it
    if not props and not required and extra is True:
        return dict[str, Any]
    fields: list[Any] = []
    rename: dict[str, str] = {}  # property names need not be identifiers
    for i, prop in enumerate([*props, *(r for r in dict.fromkeys(required) if r not in props)]):
        kind = data_type(props[prop], f"{name}_{i}") if prop in props else Any
        rename[f"f{i}"] = prop
        fields.append(
            (f"f{i}", kind) if prop in required else (f"f{i}", kind | msgspec.UnsetType, msgspec.UNSET)
        )
    # gc=False: decoded JSON is a tree (no cycles) and the checker's structs are dropped at once; untracked,
    # they leave the cycle collector less to do
    return msgspec.defstruct(
        name, fields, rename=rename, forbid_unknown_fields=extra is False, kw_only=True, gc=False
    )


class TypedEnvelope:
    """Typed decoding of a record in two msgspec passes, for records whose events are all valid (the usual
    case): `checker` decodes into a tagged union on `type`, one struct per event type whose `data` struct
    holds the type's data schema (data_type), and refuses what the schemas refuse; `events` then decodes the
    same bytes into CloudEvents, data as plain dicts, as `Contracts.to_event` converts them. Left to Python:
    the envelope's `pattern`s (source and subject repeat, so each distinct value is matched once) and the data
    of types data_type cannot map (`by_schema`: struct -> type name, checked with fastjsonschema).

    `time` (format date-time) is not matched with fastjsonschema's date-time regex (a third of the checker's
    cost): msgspec parsing it into CloudEvent.time with a UTC offset accepts only strings that regex accepts
    (4-2-2 ASCII digits, a real calendar day, `T`/`t`, hours 00-23, minutes and seconds 00-59, `.` and at
    least one digit, then `Z`/`z` or +-HH:MM / +-HHMM with HH <= 23 and MM <= 59, nothing after: msgspec 0.22
    ms_decode_datetime_from_str), except a space in place of the `T`, which `valid` refuses. The test
    test_time_is_taken_exactly_as_the_schema_takes_it holds every combination of those parts to the regex."""

    MEMO_MAX = 10_000

    def __init__(
        self,
        checker: Any,
        events: Any,
        patterns: list[tuple[str, re.Pattern[str]]],
        by_schema: dict[type, str],
    ):
        self.checker = checker
        self.events = events
        self.patterns = [(attrgetter(name), rx, set()) for name, rx in patterns]
        self.by_schema = by_schema

    def decode(self, raw: bytes) -> Any:
        return self.checker.decode(raw)

    def valid(self, envs: list[Any] | tuple[Any, ...]) -> bool:
        if " " in "".join(map(_time, envs)):  # "2026-01-05 08:15:00+07:00": msgspec parses it, RFC 3339 not
            return False
        for value_of, rx, good in self.patterns:
            values = set(map(value_of, envs))
            if values <= good:
                continue
            for v in values - good:
                if v is msgspec.UNSET:
                    continue
                if rx.search(v) is None:
                    return False
                if len(good) >= self.MEMO_MAX:
                    good.clear()
                good.add(v)
        return True


_tz = attrgetter("time.tzinfo")
_time = attrgetter("time")


def typed_envelope(schema: dict[str, Any], data_schemas: dict[str, dict[str, Any]]) -> TypedEnvelope | None:
    """The typed decoders for the envelope schema and the data schema of each type (name -> schema), built
    from the schemas themselves (nothing restated); None when the envelope has properties it does not know.
    A type whose name the envelope's `type` refuses is left out (its events take the schema path)."""
    props = schema["properties"]
    required = set(schema["required"])
    if (
        set(props) != _FAST_FIELDS
        or not {"specversion", "id", "source", "type", "time", "subject", "data"} <= required
    ):
        return None
    if set(props["data"]) - {"type", "description"} or props["data"].get("type") != "object":
        return None
    if (
        "draft-07" not in schema.get("$schema", "")
        or set(schema) - _ENVELOPE_KEYWORDS
        or schema.get("type") != "object"
    ):
        return None
    if "propertyNames" in schema:  # the fast path knows only _FAST_FIELDS: each must be a valid name
        names_ok = fastjsonschema.compile({"$schema": _DRAFT07, "propertyNames": schema["propertyNames"]})
        try:
            names_ok(dict.fromkeys(_FAST_FIELDS))
        except fastjsonschema.JsonSchemaValueException:
            return None
    fields: list[Any] = []
    patterns: list[tuple[str, re.Pattern[str]]] = []
    for name in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"):
        prop = props[name]
        if set(prop) - {"type", "const", "minLength", "maxLength", "pattern", "format", "description"}:
            return None
        if prop.get("format") not in (None, "date-time") or (
            type(prop["const"]) is not str if "const" in prop else prop.get("type") != "string"
        ):
            return None
        if name == "type":
            continue  # the union's tag: only names the whole property accepts (below)
        if "pattern" in prop and "const" not in prop:
            patterns.append((name, re.compile(_regex(prop["pattern"]))))
        parsed = name == "time" and prop.get("format") == "date-time"  # see TypedEnvelope.valid
        try:
            kind = (
                Literal[prop["const"]]
                if "const" in prop
                else _string(prop, with_pattern=False, with_format=not parsed)
            )
        except Unmapped:
            return None
        fields.append((name, kind) if name in required else (name, kind | msgspec.UnsetType, msgspec.UNSET))
    type_ok = fastjsonschema.compile({**props["type"], "$schema": _DRAFT07})
    members: list[Any] = []
    by_schema: dict[type, str] = {}
    for i, (etype, data_schema) in enumerate(data_schemas.items()):
        try:
            type_ok(etype)
        except fastjsonschema.JsonSchemaValueException:
            continue
        try:
            if data_schema.get("type") != "object":  # the envelope's data must be an object too
                raise Unmapped("data of a type other than object")
            if "draft-07" not in data_schema.get("$schema", ""):
                raise Unmapped("a draft other than 7")
            data: Any = data_type(data_schema, f"Data{i}")
        except Unmapped:
            data = None
        struct = msgspec.defstruct(
            f"Event{i}",
            [*fields, ("data", dict[str, Any] if data is None else data)],
            tag_field="type",
            tag=etype,
            forbid_unknown_fields=True,
            kw_only=True,
            gc=False,
        )
        members.append(struct)
        if data is None:
            by_schema[struct] = etype
    if not members:
        return None
    event = Union[tuple(members)]  # noqa: UP007
    return TypedEnvelope(
        msgspec.json.Decoder(list[event] | event),  # type: ignore[valid-type]
        # strict: lax msgspec reads a numeric string as a Unix time ("1700000000"); the schema refuses it, and
        # what the schema takes (RFC 3339) both modes read alike (to_event converts lax, after the schema)
        msgspec.json.Decoder(list[CloudEvent] | CloudEvent),
        patterns,
        by_schema,
    )


class Contracts:
    """The event contracts of one contracts directory, compiled once."""

    def __init__(self, contracts_dir: Path):
        self.dir = contracts_dir
        self.events_dir = contracts_dir / "events"
        envelope_path = self.events_dir / "envelope.schema.json"
        self.envelope_schema = _read_json(envelope_path)
        self._envelope = fastjsonschema.compile(self.envelope_schema)
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
        self._typed = typed_envelope(self.envelope_schema, {t.name: t.schema for t in self.types.values()})

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

    def valid_events(self, raw: bytes | None) -> list[CloudEvent] | None:
        """Every event of a record when all are valid on the typed fast path (the usual case), as one list;
        None otherwise, and `decode` gives each event or the reason it is refused."""
        if raw is None or len(raw) > MAX_RECORD_BYTES:
            return None
        return self._fast(raw)

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
        """The record's events when every one is valid (typed decoding, TypedEnvelope: the common case, several
        times faster); None otherwise, and the caller takes the schema path, which names each invalid event's
        reason. Accepts only what `check` accepts, and decodes it as `to_event` does."""
        typed = self._typed
        if typed is None:
            return None
        try:
            got = parse_json(raw, typed.checker)
        except msgspec.DecodeError:  # ValidationError included
            return None
        envs = got if isinstance(got, list) else (got,)
        if not typed.valid(envs):
            return None
        by_schema = typed.by_schema
        if by_schema and not by_schema.keys().isdisjoint(map(type, envs)):
            validators = self._validators
            for env in envs:
                etype = by_schema.get(type(env))
                if etype is not None:
                    try:
                        validators[etype](env.data)
                    except fastjsonschema.JsonSchemaValueException:
                        return None
        try:
            events = parse_json(raw, typed.events)
        except msgspec.DecodeError:
            return None
        out = events if isinstance(events, list) else [events]
        if None in map(_tz, out):
            return None
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
