// The operator console: the district's alert inbox, one alert's timeline and SOP, and the actions; live.
import { age, api, applyI18n, claims, el, langSwitch, live, pick, t, token } from "./common.js";

const SLA_S = { critical: 3600, warning: 4 * 3600, info: 24 * 3600 }; // time to handle, by severity
const OPEN = ["firing", "acknowledged", "assigned"];
const state = { alerts: new Map(), units: new Map(), fields: new Map(), selected: null };

const $ = (id) => document.getElementById(id);
const unitName = (c) => (state.units.get(c) || {}).name_vi || c;

function sla(a) {
  if (a.state === "resolved") return el("span", {}, "—");
  const s = (Date.now() - Date.parse(a.opened_at + "Z")) / 1000;
  return s > (SLA_S[a.severity] || SLA_S.info)
    ? el("span", { class: "overdue" }, t("overdue")) : el("span", { class: "ontime" }, t("ontime"));
}

function visible(a) {
  const sev = $("f-severity").value, st = $("f-state").value, f = $("f-field").value;
  return (!sev || a.severity === sev) && (!f || a.field === f) &&
    (st === "open" ? OPEN.includes(a.state) : !st || a.state === st);
}

function renderInbox() {
  const rows = [...state.alerts.values()].filter(visible)
    .sort((a, b) => (b.opened_at > a.opened_at ? 1 : -1));
  $("inbox").replaceChildren(...rows.map((a) => el("tr", {
      class: `row${a.alert_id === state.selected ? " sel" : ""}`, "data-alert-id": a.alert_id, "data-state": a.state,
      onclick: () => select(a.alert_id) },
    el("td", {}, el("span", { class: `sev ${a.severity}` }, t(a.severity))),
    el("td", {}, a.title_vi || a.indicator), el("td", {}, unitName(a.unit)),
    el("td", { class: "state" }, t(a.state)), el("td", {}, age(a.opened_at)), el("td", {}, sla(a)))));
}

async function loadInbox() {
  const { body } = await api("/v1/alerts?limit=500");
  state.alerts = new Map(body.map((a) => [a.alert_id, a]));
  renderInbox();
}

async function select(id) {
  state.selected = id;
  renderInbox();
  const { body } = await api(`/v1/alerts/${encodeURIComponent(id)}`);
  const a = body.alert;
  state.alerts.set(a.alert_id, a);
  const last = state.outcome && state.outcome.id === a.alert_id ? state.outcome : null;
  const out = el("div", { id: "outcome", class: last ? last.cls : "" }, last ? last.text : "");
  const note = el("textarea", { id: "note", placeholder: t("note") });
  const assignee = el("input", { id: "assignee", placeholder: t("assignee") });
  const until = el("input", { id: "until", type: "datetime-local" });
  const act = (action, extra = {}) => async () => {
    const payload = { expected_version: a.version, ...extra };
    if (note.value.trim()) payload.note = note.value.trim();
    const r = await api(`/v1/alerts/${encodeURIComponent(a.alert_id)}/${action}`,
      { method: "POST", body: JSON.stringify(payload), allowError: true });
    const b = r.body || {};
    const ok = r.status === 200;
    state.outcome = { id: a.alert_id, cls: `outcome ${ok ? "applied" : "rejected"}`,
      text: ok ? `${t("applied")}: ${t(b.state)}` : `${t("rejected")}: ${b.reason || b.detail || r.status}` };
    out.className = state.outcome.cls;
    out.textContent = state.outcome.text;
    if (ok) select(a.alert_id);
  };
  $("detail").replaceChildren(
    el("h2", {}, `${t(a.severity)} · ${a.title_vi}`),
    el("p", {}, `${unitName(a.unit)} · ${t("state")}: `, el("b", { id: "detail-state" }, t(a.state)),
      ` · ${t("value")}: ${a.value} / ${t("threshold")}: ${a.threshold} · ${a.period}`),
    el("div", { class: "actions" },
      el("button", { id: "btn-acknowledge", onclick: act("acknowledge") }, t("acknowledge")),
      el("button", { id: "btn-resolve", onclick: act("resolve") }, t("resolve")),
      assignee, el("button", { id: "btn-assign", onclick: () => act("assign", { assignee: assignee.value.trim() })() }, t("assign")),
      el("button", { id: "btn-comment", onclick: act("comment") }, t("comment")),
      until, el("button", { id: "btn-silence", onclick: () => {
        const when = until.value ? new Date(until.value) : new Date(Date.now() + 3600e3);
        return act("silence", { silence: { until: when.toISOString() } })();
      } }, t("silence"))),
    note, out,
    el("h2", {}, t("sop")), el("div", { class: "sop" },
      (a.sop_vi || "—").replaceAll("{unit}", unitName(a.unit)).replaceAll("{period}", a.period)),
    el("h2", {}, t("timeline")),
    el("ul", { id: "timeline" }, ...body.timeline.map((e) =>
      el("li", {}, `${e.at || e.time || ""} · ${t(e.transition || e.type || "")} · ${e.actor || ""} ${e.reason || ""}`))));
}

function onAlert(ev) {
  const d = ev.data;
  const cur = state.alerts.get(d.alert_id) || { opened_at: new Date().toISOString().slice(0, 19) };
  if (cur.version && d.version < cur.version) return;
  state.alerts.set(d.alert_id, { ...cur, ...d });
  renderInbox();
  if (state.selected === d.alert_id) select(d.alert_id);
}

async function start() {
  const c = claims(token());
  if (!c) throw new Error("bad token");
  $("signin").classList.add("hidden");
  $("console").classList.remove("hidden");
  $("who").textContent = `${c.name || c.sub} · ${c.role}${c.district ? " · " + c.district : ""}`;
  const [units, fields] = await Promise.all([api("/v1/units"), api("/v1/catalog/fields")]);
  state.units = new Map(units.body.map((u) => [u.code, u]));
  for (const f of fields.body) $("f-field").append(el("option", { value: f.code }, pick(f, "name")));
  for (const id of ["f-severity", "f-state", "f-field"]) $(id).onchange = renderInbox;
  await loadInbox();
  live({ kinds: "alerts" }, { alerts: onAlert, reset: loadInbox }, $("live"));
  setInterval(renderInbox, 30000);
  document.body.dataset.ready = "1";
}

applyI18n();
langSwitch(() => { renderInbox(); if (state.selected) select(state.selected); });
$("signout").onclick = () => { sessionStorage.removeItem("ioc.token"); location.reload(); };
if (token()) start().catch((e) => { document.body.dataset.error = e.message; console.error(e); });
else {
  $("signin").classList.remove("hidden");
  $("signin-btn").onclick = () => { sessionStorage.setItem("ioc.token", $("token-input").value.trim()); start(); };
}
