"""Pure-file tests of the catalog data (contracts/): no servers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
sys.path.insert(0, str(ROOT / "scripts"))

import catalog_expand  # noqa: E402
import catalog_stats  # noqa: E402


def read_yaml(rel: str):
    return yaml.safe_load((CONTRACTS / rel).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def indicators():
    return catalog_expand.load_indicators(CONTRACTS)


@pytest.fixture(scope="session")
def schemas():
    return catalog_stats.event_schemas(CONTRACTS)


@pytest.fixture(scope="session")
def indicator_schema():
    return json.loads((CONTRACTS / "catalog" / "indicator.schema.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def boards():
    return catalog_expand.load_boards(CONTRACTS)


@pytest.fixture(scope="session")
def units_2024():
    return read_yaml("geo/units@2024.yaml")["units"]
