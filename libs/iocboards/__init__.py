"""Grafana boards as code: dashboards built from contracts/catalog/boards.yaml with grafana-foundation-sdk,
their SQL checked against ClickHouse, and published to Grafana with grafana-client (`ioc grafana ...`).

Boards are presentation, not business logic: this package reads the catalog and the ClickHouse tables'
contracts (contracts/clickhouse) and imports no service."""
