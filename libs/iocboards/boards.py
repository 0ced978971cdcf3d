"""Dashboards from the catalog's boards (contracts/catalog/boards.yaml), with grafana-foundation-sdk.

Every catalog board becomes one dashboard in its folder (the province, or its district): tiles of its
indicators at its unit, a trend, a table of every indicator it shows, a comparison of the units below it,
and the panels it names (alerts ticker, hotline feed, map, timeliness table). Field boards carry $district
and $commune variables. Each query is kept with the columns it must return, for `ioc grafana check`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import barchart, dashboard, geomap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from iocboards import queries as q
from ioccore.catalog import Board, Catalog, Indicator, Unit

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "ioc-clickhouse"
DATASOURCE = dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
CADENCE_ORDER = ("day", "week", "month", "quarter", "year")
MAX_TILES = 12
TREND_SERIES = 6
PROVINCE_FOLDER = ("ioc-province", "Toàn tỉnh / Province")


class ClickHouseQuery(cogvariants.Dataquery):
    """A grafana-clickhouse-datasource (v4) SQL target; the SDK ships no builder for this plugin."""

    def __init__(self, ref_id: str, sql: str, query_type: str) -> None:
        self.ref_id, self.sql, self.query_type = ref_id, sql, query_type

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": DATASOURCE.to_json(),
            "editorType": "sql",
            "format": 0 if self.query_type == "timeseries" else 1,  # plugin Format: TIMESERIES 0, TABLE 1
            "queryType": self.query_type,
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class _Target(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, query: ClickHouseQuery) -> None:
        self._query = query

    def build(self) -> ClickHouseQuery:
        return self._query


@dataclass(frozen=True)
class PanelQuery:
    """One SQL query of a dashboard (a panel's target or a variable) and the columns it returns."""

    board: str
    panel: str
    sql: str
    columns: tuple[str, ...]

    @property
    def tables(self) -> set[str]:
        """The tables the query reads."""
        return set(re.findall(r"\bFROM\s+([a-z_][a-z0-9_]*)", self.sql)) - {"SELECT"}


@dataclass
class BuiltBoard:
    board: Board
    uid: str
    folder_uid: str
    folder_title: str
    model: dict[str, Any]
    queries: list[PanelQuery] = field(default_factory=list)

    @property
    def panels(self) -> int:
        return len(self.model.get("panels", []))


def board_uid(board_id: str) -> str:
    uid = board_id.replace(".", "-")
    if len(uid) > 40:  # Grafana's limit
        uid = uid[:31] + "-" + hashlib.sha1(board_id.encode()).hexdigest()[:8]
    return uid


def district_folder(unit: Unit) -> tuple[str, str]:
    return f"ioc-district-{unit.code}", f"{unit.name_vi} / {unit.short_name}"


def cadence_of(ind: Indicator) -> str:
    return min(ind.cadences, key=CADENCE_ORDER.index)


class _Builder:
    """Builds one dashboard, keeping each target's SQL and expected columns."""

    def __init__(self, built: BuiltBoard, dash: dashboard.Dashboard) -> None:
        self.built, self.dash, self.ref = built, dash, 0

    def target(self, panel: str, sql: str, columns: tuple[str, ...], query_type: str = "table") -> _Target:
        self.built.queries.append(PanelQuery(self.built.board.id, panel, sql, columns))
        self.ref += 1
        return _Target(ClickHouseQuery(chr(ord("A") + (self.ref - 1) % 26), sql, query_type))

    def add(self, panel: Any, title: str, sql: str, columns: tuple[str, ...], *, query_type="table") -> None:
        self.ref = 0
        panel.title(title).datasource(DATASOURCE).with_target(self.target(title, sql, columns, query_type))
        self.dash.with_panel(panel)


def _unit_sql(code_or_variable: str) -> str:
    return (
        f"'{code_or_variable}'" if code_or_variable.startswith("$") else q.in_list([code_or_variable])[1:-1]
    )


class BoardFactory:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.units = {u.code: u for u in catalog.units}
        self.indicators = {i.id: i for i in catalog.indicators}
        self.districts = [u for u in catalog.units if u.level == "district"]
        self.communes = [u for u in catalog.units if u.level == "commune"]

    # -- helpers ------------------------------------------------------------------------------------------
    def _available(self, ids: list[str], level: str) -> list[Indicator]:
        return [
            self.indicators[i] for i in ids if i in self.indicators and level in self.indicators[i].scopes
        ]

    def _children(self, unit: Unit) -> list[Unit]:
        return [u for u in self.catalog.units if u.parent == unit.code]

    def _folder(self, board: Board) -> tuple[str, str]:
        if board.scope.level == "district":
            return district_folder(self.units[board.scope.unit])
        return PROVINCE_FOLDER

    # -- the dashboard ------------------------------------------------------------------------------------
    def build(self, board: Board) -> BuiltBoard:
        unit = self.units[board.scope.unit]
        folder_uid, folder_title = self._folder(board)
        built = BuiltBoard(board, board_uid(board.id), folder_uid, folder_title, {})
        dash = (
            dashboard.Dashboard(f"{board.title_vi} / {board.title_en}")
            .uid(board_uid(board.id))
            .tags(sorted({"ioc", board.kind, board.scope.level, *([board.field] if board.field else [])}))
            .description(board.description or f"{board.title_vi} — {board.title_en} ({board.id})")
            .timezone("Asia/Ho_Chi_Minh")
            .time("now-30d", "now")
            .refresh("5m")
            .readonly()
        )
        b = _Builder(built, dash)
        ids = self.catalog.board_indicator_ids(board)
        field_board = board.kind == "field"
        if field_board:
            self._variables(b, unit)
        level = unit.level
        inds = self._available(ids, level)
        tiles = inds[:MAX_TILES]
        for ind in tiles:
            panel = (
                stat.Panel()
                .height(4)
                .span(4)
                .unit(_grafana_unit(ind))
                .graph_mode(common.BigValueGraphMode.AREA)
                .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]))
                .description(f"{ind.name_en} ({ind.id}, {cadence_of(ind)})")
            )
            b.add(panel, ind.name_vi, q.series(ind.id, cadence_of(ind), _unit_sql(unit.code)), ("time", "value"),
                  query_type="timeseries")  # fmt: skip
        if tiles:
            daily = [i for i in tiles if cadence_of(i) == "day"][:TREND_SERIES]
            trend = daily or tiles[:1]
            cadence = cadence_of(trend[0])
            trend = [i for i in trend if cadence_of(i) == cadence]
            names = {i.id: i.name_vi for i in trend}
            b.add(timeseries.Panel().height(8).span(24), "Xu hướng / Trend",
                  q.trend([i.id for i in trend], cadence, _unit_sql(unit.code), names),
                  ("time", "indicator_name", "value"), query_type="timeseries")  # fmt: skip
        if inds:
            names = {i.id: i.name_vi for i in inds}
            b.add(table.Panel().height(10).span(24), "Các chỉ số / Indicators",
                  q.latest_table([i.id for i in inds], _unit_sql(unit.code), names),
                  ("indicator_name", "cadence", "period", "value", "updated_at"))  # fmt: skip
        self._comparison(b, board, unit, ids)
        if field_board:
            self._drilldown(b, unit, ids)
        for extra in board.panels:
            getattr(self, f"_panel_{extra}")(b, board, unit, ids)
        if board.kind == "alerts" and "alerts_ticker" not in board.panels:
            self._panel_alerts_ticker(b, board, unit, ids)
        if board.kind == "alerts":
            self._alert_stats(b, unit)
        if board.kind == "hotline":
            self._hotline_stats(b, board, unit)
        if board.kind == "timeliness":
            b.add(timeseries.Panel().height(8).span(24), "Bản ghi lỗi / Dead letters",
                  q.dead_letters_by_interval(), ("time", "dead_letters"), query_type="timeseries")  # fmt: skip
        built.model = _plain(dash.build())
        return built

    def _variables(self, b: _Builder, unit: Unit) -> None:
        if unit.level == "province":
            options = ", ".join(f"{d.short_name} : {d.code}" for d in self.districts)
            b.dash.with_variable(
                dashboard.CustomVariable("district").label("Huyện / District").values(options)
                .current(dm.VariableOption(selected=True, text=self.districts[0].short_name,
                                           value=self.districts[0].code))
            )  # fmt: skip
            sql = q.units_variable([(c.code, c.name_vi, c.parent or "") for c in self.communes])
            b.built.queries.append(PanelQuery(b.built.board.id, "variable commune", sql, ("code",)))
            b.dash.with_variable(
                dashboard.QueryVariable("commune").label("Xã / Commune")
                .datasource(DATASOURCE).query(sql).refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
            )  # fmt: skip
        else:
            communes = self._children(unit)
            options = ", ".join(f"{c.short_name} : {c.code}" for c in communes)
            b.dash.with_variable(
                dashboard.CustomVariable("commune").label("Xã / Commune").values(options)
                .current(dm.VariableOption(selected=True, text=communes[0].short_name, value=communes[0].code))
            )  # fmt: skip

    def _comparison(self, b: _Builder, board: Board, unit: Unit, ids: list[str]) -> None:
        """The first indicator available one level down, per child unit (districts, or communes)."""
        children = self._children(unit)
        if not children:
            return
        level = children[0].level
        inds = self._available(ids, level)
        if not inds:
            return
        ind = inds[0]
        label = "Theo huyện / By district" if level == "district" else "Theo xã / By commune"
        b.add(barchart.Panel().height(9).span(24).unit(_grafana_unit(ind)),
              f"{ind.name_vi} – {label}",
              q.by_unit(ind.id, cadence_of(ind), {c.code: c.short_name for c in children}),
              ("unit_name", "value"))  # fmt: skip

    def _drilldown(self, b: _Builder, unit: Unit, ids: list[str]) -> None:
        """Field boards: the chosen district's and commune's indicators (variables)."""
        if unit.level == "province":
            inds = self._available(ids, "district")
            if inds:
                b.add(table.Panel().height(10).span(12), "Huyện đã chọn / Selected district",
                      q.latest_table([i.id for i in inds], "'$district'", {i.id: i.name_vi for i in inds}),
                      ("indicator_name", "cadence", "period", "value", "updated_at"))  # fmt: skip
        inds = self._available(ids, "commune")
        if inds:
            b.add(table.Panel().height(10).span(12), "Xã đã chọn / Selected commune",
                  q.latest_table([i.id for i in inds], "'$commune'", {i.id: i.name_vi for i in inds}),
                  ("indicator_name", "cadence", "period", "value", "updated_at"))  # fmt: skip
            ind = inds[0]
            b.add(timeseries.Panel().height(8).span(24), f"{ind.name_vi} – xã đã chọn / selected commune",
                  q.series(ind.id, cadence_of(ind), "'$commune'"), ("time", "value"),
                  query_type="timeseries")  # fmt: skip

    # -- panels the catalog names -------------------------------------------------------------------------
    def _district_of(self, unit: Unit) -> str | None:
        return unit.code if unit.level == "district" else None

    def _panel_alerts_ticker(self, b: _Builder, board: Board, unit: Unit, ids: list[str]) -> None:
        b.add(table.Panel().height(10).span(24), "Cảnh báo đang mở / Open alerts",
              q.open_alerts(self._district_of(unit)),
              ("opened_at", "updated_at", "severity", "state", "district", "unit", "title_vi", "indicator",
               "value", "threshold", "assignee"))  # fmt: skip

    def _panel_hotline_feed(self, b: _Builder, board: Board, unit: Unit, ids: list[str]) -> None:
        line = "115" if (board.field == "emergency_115" or "emergency_115" in board.id) else "1022"
        b.add(table.Panel().height(10).span(24), f"Cuộc gọi {line} mới nhất / Latest {line} calls",
              q.calls_feed(line, self._district_of(unit)),
              ("received_at", "state", "caller_masked", "district", "unit", "field", "topic", "focal_point",
               "hospital", "wait_s", "overdue"))  # fmt: skip

    def _panel_map(self, b: _Builder, board: Board, unit: Unit, ids: list[str]) -> None:
        children = self._children(unit)
        level = children[0].level if children else unit.level
        inds = self._available(ids, level)
        if not inds or not children:
            return
        ind = inds[0]
        points = {c.code: (c.name_vi, c.lat, c.lon) for c in children}
        b.add(geomap.Panel().height(12).span(24), f"Bản đồ: {ind.name_vi} / Map",
              q.map_points(ind.id, cadence_of(ind), points), ("unit", "name", "lat", "lon", "value"))  # fmt: skip

    def _panel_timeliness_table(self, b: _Builder, board: Board, unit: Unit, ids: list[str]) -> None:
        b.add(table.Panel().height(12).span(24), "Cập nhật theo hệ thống nguồn / Updates per source system",
              q.timeliness(), ("source", "events", "last_event", "last_received", "hours_since_last"))  # fmt: skip

    def _alert_stats(self, b: _Builder, unit: Unit) -> None:
        district = self._district_of(unit)
        b.add(barchart.Panel().height(8).span(8), "Cảnh báo mở theo mức độ / Open alerts by severity",
              q.alerts_by_severity(district), ("severity", "alerts"))  # fmt: skip
        b.add(timeseries.Panel().height(8).span(16), "Diễn biến cảnh báo / Alert transitions",
              q.alert_transitions(district), ("time", "transition", "events"), query_type="timeseries")  # fmt: skip

    def _hotline_stats(self, b: _Builder, board: Board, unit: Unit) -> None:
        line = "115" if "emergency_115" in board.id else "1022"
        b.add(timeseries.Panel().height(8).span(24), f"Cuộc gọi {line} theo thời gian / {line} calls over time",
              q.calls_by_interval(line, self._district_of(unit)), ("time", "calls", "overdue"),
              query_type="timeseries")  # fmt: skip


_UNITS = {"%": "percent", "VND": "currency:VND", "tỷ đồng": "short", "giờ": "h", "phút": "m", "ms": "ms"}


def _grafana_unit(ind: Indicator) -> str:
    return _UNITS.get(ind.unit, "short")


def _plain(obj: Any) -> Any:
    """The SDK's model as plain JSON data (what the encoder would write)."""
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.loads(json.dumps(obj, cls=JSONEncoder))


def build_all(catalog: Catalog) -> list[BuiltBoard]:
    factory = BoardFactory(catalog)
    return [factory.build(board) for board in catalog.boards]
