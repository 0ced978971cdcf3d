// The wall: 27 field tiles, alerts by district, a live alert ticker and hotline feed, all kept live by /v1/stream.
import { api, applyI18n, age, el, fmt, langSwitch, live, pick, sparkline, t, token } from "./common.js";

const districtCode = (location.pathname.match(/^\/wall\/(\d{3})$/) || [])[1] || null;
const scope = districtCode || "74";
const state = { tiles: [], byIndicator: new Map(), units: new Map(), alertFields: new Map(), alerts: [], calls: new Map() };

function unitName(code) { const u = state.units.get(code); return u ? u.short_name || u.name_vi : code; }

function renderTile(tile) {
  const sev = state.alertFields.get(tile.field) || {};
  const cls = ["tile", tile.status || "neutral"];
  if (sev.critical) cls.push("alert-critical"); else if (sev.warning) cls.push("alert-warning");
  const badges = el("span", { class: "badges" },
    ...["critical", "warning"].filter((s) => sev[s]).map((s) => el("span", { class: `sev ${s}` }, sev[s])));
  const node = el("div", { class: cls.join(" "), "data-field": tile.field, "data-value": tile.value ?? "" },
    badges,
    el("div", { class: "f" }, pick(tile, "name")),
    el("div", { class: "i" }, tile.indicator ? pick(tile, "indicator_name") : t("nodata")),
    el("div", {}, el("span", { class: "v" }, fmt(tile.value)), el("span", { class: "u" }, tile.unit_of_measure || "")),
    sparkline(tile.trend || []));
  return node;
}

function renderTiles() {
  const box = document.getElementById("tiles");
  box.replaceChildren(...state.tiles.map(renderTile));
}

function updateTile(tile, flash) {
  const old = document.querySelector(`.tile[data-field="${tile.field}"]`);
  const node = renderTile(tile);
  if (flash) node.classList.add("flash");
  if (old) old.replaceWith(node);
  if (flash) setTimeout(() => node.classList.remove("flash"), 700);
}

async function loadDistricts() {
  const { body } = await api("/v1/alerts/open-by-district");
  const counts = new Map();
  for (const r of body) { const c = counts.get(r.district) || {}; c[r.severity] = r.count; counts.set(r.district, c); }
  const districts = [...state.units.values()].filter((u) => u.level === "district" && (!districtCode || u.code === districtCode));
  // Province-level alerts (unit 74) have no district: a row of their own on the province wall.
  const provinceRow = !districtCode && state.units.has("74")
    ? [el("div", { class: "district province", "data-province": "74" }, el("b", {}, t("province")),
        el("span", {}, ...["critical", "warning", "info"].map((s) => {
          const n = ((counts.get("74") || counts.get("") || {})[s]) || 0;
          return el("span", { class: `sev ${n ? s : "zero"}`, title: t(s), "data-severity": s }, n);
        })))]
    : [];
  document.getElementById("districts").replaceChildren(...provinceRow, ...districts.map((d) => {
    const c = counts.get(d.code) || {};
    return el("div", { class: "district", "data-district": d.code },
      el("a", { href: `/wall/${d.code}` }, d.short_name),
      el("span", {}, ...["critical", "warning", "info"].map((s) =>
        el("span", { class: `sev ${c[s] ? s : "zero"}`, title: t(s), "data-severity": s }, c[s] || 0))));
  }));
}

async function loadAlertFields() {
  const { body } = await api(`/v1/alerts/open-by-field?unit=${scope}`);
  state.alertFields = new Map();
  for (const r of body) { const c = state.alertFields.get(r.field) || {}; c[r.severity] = r.count; state.alertFields.set(r.field, c); }
}

function tickerItem(a, isNew) {
  return el("li", { class: isNew ? "new" : "", "data-alert-id": a.alert_id },
    el("span", { class: `sev ${a.severity}` }, t(a.severity)), " ",
    `${unitName(a.unit)} · ${a.title_vi || a.indicator} · ${t(a.state)}`);
}

function callItem(c, isNew) {
  const line = c.line || "";
  return el("li", { class: isNew ? "new" : "", "data-call-id": c.call_id },
    el("b", {}, line), ` ${unitName(c.unit)} · ${c.topic || c.field || ""} · ${c.state}`,
    c.received_at ? ` · ${age(c.received_at)}` : "", c.overdue ? el("span", { class: "overdue" }, ` ${t("overdue")}`) : "");
}

let refreshTimer = null;
function refreshCountsSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => { await Promise.all([loadDistricts(), loadAlertFields()]); renderTiles(); }, 500);
}

async function load() {
  const [units, tiles, alerts, calls] = await Promise.all([
    api("/v1/units"), api(`/v1/wall/tiles?unit=${scope}`), api(`/v1/alerts?unit=${scope}&limit=30`),
    api(`/v1/hotline/calls/live?unit=${scope}&limit=30`),
  ]);
  state.units = new Map(units.body.map((u) => [u.code, u]));
  document.getElementById("scope-name").textContent = districtCode ? unitName(districtCode) : t("province");
  state.tiles = tiles.body;
  state.byIndicator = new Map(state.tiles.filter((x) => x.indicator).map((x) => [x.indicator, x]));
  await Promise.all([loadDistricts(), loadAlertFields()]);
  renderTiles();
  document.getElementById("ticker").replaceChildren(...alerts.body.map((a) => tickerItem(a, false)));
  calls.body.forEach((c) => state.calls.set(c.call_id, c));
  document.getElementById("feed").replaceChildren(...calls.body.map((c) => callItem(c, false)));
}

// One values.updated event: a unit's changed values, many rows (indicator, cadence, period, value, ...).
function onIndicator(ev) {
  const d = ev.data;
  if (!d || d.unit !== scope || !Array.isArray(d.values)) return;
  const changed = new Set();
  for (const r of d.values) {
    const tile = state.byIndicator.get(r.indicator);
    if (!tile || r.cadence !== tile.cadence) continue;
    // a late value of an older period (one cadence's labels sort by time): not the tile's latest
    if (tile.period && r.period < tile.period) continue;
    if (tile.period === r.period) tile.trend[tile.trend.length - 1] = r.value; else { tile.trend.push(r.value); tile.trend = tile.trend.slice(-14); }
    tile.period = r.period; tile.value = r.value;
    if (tile.target !== null && tile.target !== undefined) {
      const better = tile.direction === "lower_is_better" ? r.value <= tile.target : r.value >= tile.target;
      tile.status = better ? "good" : "bad";
    }
    changed.add(tile);
  }
  for (const tile of changed) updateTile(tile, true);
}

function onAlert(ev) {
  const a = ev.data;
  const ticker = document.getElementById("ticker");
  ticker.querySelector(`[data-alert-id="${CSS.escape(a.alert_id)}"]`)?.remove();
  ticker.prepend(tickerItem(a, true));
  while (ticker.children.length > 40) ticker.lastChild.remove();
  refreshCountsSoon();
}

function onCall(ev) {
  const c = ev.data;
  const feed = document.getElementById("feed");
  feed.querySelector(`[data-call-id="${CSS.escape(c.call_id)}"]`)?.remove();
  if (c.state !== "closed") feed.prepend(callItem(c, true));
  while (feed.children.length > 40) feed.lastChild.remove();
}

async function start() {
  document.getElementById("signin").classList.add("hidden");
  document.getElementById("wall").classList.remove("hidden");
  await load();
  live({ unit: scope }, { indicators: onIndicator, alerts: onAlert, calls: onCall, reset: load },
    document.getElementById("live"));
  setInterval(() => { document.getElementById("clock").textContent = new Date().toLocaleTimeString("vi-VN"); }, 1000);
  document.body.dataset.ready = "1";
}

applyI18n();
langSwitch(() => { renderTiles(); loadDistricts(); });
if (token()) start().catch((e) => { document.body.dataset.error = e.message; console.error(e); });
else {
  document.getElementById("signin").classList.remove("hidden");
  document.getElementById("signin-btn").onclick = () => {
    sessionStorage.setItem("ioc.token", document.getElementById("token-input").value.trim());
    start();
  };
}
