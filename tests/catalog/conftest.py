"""Pure-file tests of the catalog data (contracts/), through ioccore.catalog: no servers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ioccore.catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"


def read_yaml(rel: str):
    return yaml.safe_load((CONTRACTS / rel).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(CONTRACTS, strict=False)


@pytest.fixture(scope="session")
def indicators(catalog):
    return catalog.indicators


@pytest.fixture(scope="session")
def boards(catalog):
    return catalog.boards


@pytest.fixture(scope="session")
def units_2024():
    return read_yaml("geo/units@2024.yaml")["units"]
