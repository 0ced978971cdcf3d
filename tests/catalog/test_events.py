import json
from pathlib import Path

import fastjsonschema
import pytest

from .conftest import CONTRACTS, read_yaml

EVENTS = CONTRACTS / "events"
ENVELOPE = json.loads((EVENTS / "envelope.schema.json").read_text(encoding="utf-8"))
EXAMPLES = sorted(EVENTS.glob("*/examples/*.json"))
SCHEMAS = sorted(EVENTS.glob("*/*.schema.json"))
FIELDS = {f["code"] for f in read_yaml("catalog/fields.yaml")["fields"]}
# Directories that are not a field's own (owned by other issues).
OTHER_DIRS = {"hotline", "indicators", "alerts"}


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_schema_is_valid_draft7_with_house_style(path: Path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    fastjsonschema.compile(schema)  # raises on an invalid schema
    assert path.parent.name in FIELDS | OTHER_DIRS
    assert " / " in schema["title"], "title is 'Vietnamese / English'"
    assert schema.get("description")
    assert schema.get("additionalProperties") is False
    assert set(schema["required"]) <= set(schema["properties"])


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_type_has_an_example(path: Path):
    name = path.name.removesuffix(".schema.json")
    assert (path.parent / "examples" / f"{name}.json").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_example_validates_against_envelope_and_type(path: Path):
    event = json.loads(path.read_text(encoding="utf-8"))
    fastjsonschema.compile(ENVELOPE)(event)  # formats (date-time, uri, …) are checked too
    _, _, directory, name = event["type"].split(".", 3)
    assert directory == path.parents[1].name
    assert path.name.split("--")[0].removesuffix(".json") == name
    schema = json.loads((EVENTS / directory / f"{name}.schema.json").read_text(encoding="utf-8"))
    fastjsonschema.compile(schema)(event["data"])
    assert event["time"].endswith("+07:00")


def test_every_field_has_a_figure_type():
    for field in FIELDS:
        assert (EVENTS / field / "figure.reported.schema.json").exists(), field


def test_figure_examples_name_real_indicators(indicators):
    ids = {i.id for i in indicators}
    for path in EVENTS.glob("*/examples/figure.reported*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        assert data["indicator_id"] in ids, path


def test_example_subjects_are_known_units(units_2024):
    codes = {u["code"] for u in units_2024}
    for path in EXAMPLES:
        assert json.loads(path.read_text(encoding="utf-8"))["subject"] in codes, path
