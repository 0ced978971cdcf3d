// Shared by the wall and the console: token, API calls, live stream, Vietnamese/English text.
const T = {
  vi: {
    title: "Trung tâm Giám sát, Điều hành thông minh", province: "Tỉnh Bình Dương", districts: "Cảnh báo theo huyện",
    ticker: "Cảnh báo mới", hotline: "Tổng đài 1022 / 115", signin: "Đăng nhập", token: "Mã truy cập (JWT)",
    inbox: "Hộp cảnh báo", severity: "Mức độ", state: "Trạng thái", field: "Lĩnh vực", age: "Thời gian", sla: "Hạn xử lý",
    unit: "Đơn vị", all: "Tất cả", acknowledge: "Xác nhận", assign: "Giao việc", comment: "Ghi chú", resolve: "Đã xử lý",
    silence: "Tạm ẩn", sop: "Quy trình xử lý", timeline: "Diễn biến", overdue: "Quá hạn", ontime: "Trong hạn",
    applied: "Đã áp dụng", rejected: "Bị từ chối", live: "Trực tiếp", offline: "Mất kết nối", none: "Không có",
    critical: "Nghiêm trọng", warning: "Cảnh báo", info: "Thông tin", firing: "Đang kích hoạt",
    acknowledged: "Đã xác nhận", assigned: "Đã giao", resolved: "Đã xử lý", assignee: "Người được giao",
    note: "Nội dung", until: "Tạm ẩn đến", select: "Chọn một cảnh báo", signout: "Đăng xuất", value: "Giá trị",
    threshold: "Ngưỡng", target: "Mục tiêu", nodata: "Chưa có dữ liệu", open: "Đang mở", raised: "Phát sinh",
    reopened: "Mở lại", commented: "Ghi chú", escalated: "Chuyển cấp trên", silenced: "Tạm ẩn",
  },
  en: {
    title: "Intelligent Operations Center", province: "Bình Dương province", districts: "Alerts by district",
    ticker: "Latest alerts", hotline: "Hotlines 1022 / 115", signin: "Sign in", token: "Access token (JWT)",
    inbox: "Alert inbox", severity: "Severity", state: "State", field: "Field", age: "Age", sla: "SLA",
    unit: "Unit", all: "All", acknowledge: "Acknowledge", assign: "Assign", comment: "Comment", resolve: "Resolve",
    silence: "Silence", sop: "Standard operating procedure", timeline: "Timeline", overdue: "Overdue", ontime: "On time",
    applied: "Applied", rejected: "Rejected", live: "Live", offline: "Disconnected", none: "None",
    critical: "Critical", warning: "Warning", info: "Info", firing: "Firing", acknowledged: "Acknowledged",
    assigned: "Assigned", resolved: "Resolved", assignee: "Assignee", note: "Note", until: "Silence until",
    select: "Select an alert", signout: "Sign out", value: "Value", threshold: "Threshold", target: "Target",
    nodata: "No data yet", open: "Open", raised: "Raised", reopened: "Reopened", commented: "Commented",
    escalated: "Escalated", silenced: "Silenced",
  },
};

export let lang = localStorage.getItem("ioc.lang") || "vi";
export const t = (k) => (T[lang] && T[lang][k]) || T.vi[k] || k;
export const pick = (o, base) => (lang === "en" && o[base + "_en"]) || o[base + "_vi"] || o[base] || "";

export function applyI18n(root = document) {
  document.documentElement.lang = lang;
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
}

export function langSwitch(onChange) {
  const b = document.getElementById("lang");
  b.textContent = lang === "vi" ? "English" : "Tiếng Việt";
  b.onclick = () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("ioc.lang", lang);
    b.textContent = lang === "vi" ? "English" : "Tiếng Việt";
    applyI18n();
    onChange();
  };
}

export function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("ioc.token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("ioc.token");
}

export function claims(tok) {
  try { return JSON.parse(atob(tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch { return null; }
}

export async function api(path, opts = {}) {
  const r = await fetch(path, {
    ...opts,
    headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json", ...(opts.headers || {}) },
  });
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  if (!r.ok && !opts.allowError) throw Object.assign(new Error(`${r.status}`), { status: r.status, body });
  return { status: r.status, body };
}

// One EventSource; reconnects itself (the browser sends Last-Event-ID); `reset` means reload state.
export function live(params, handlers, statusEl) {
  const q = new URLSearchParams({ ...params, access_token: token() });
  const es = new EventSource(`/v1/stream?${q}`);
  for (const kind of ["indicators", "alerts", "calls"]) {
    es.addEventListener(kind, (e) => { for (const ev of JSON.parse(e.data)) handlers[kind] && handlers[kind](ev); });
  }
  es.addEventListener("reset", () => handlers.reset && handlers.reset());
  es.onopen = () => { if (statusEl) { statusEl.textContent = "● " + t("live"); statusEl.className = "live ok"; } };
  es.onerror = () => { if (statusEl) { statusEl.textContent = "● " + t("offline"); statusEl.className = "live bad"; } };
  return es;
}

export function fmt(v) {
  if (v === null || v === undefined || v === "") return "—";
  const n = Number(v), loc = lang === "vi" ? "vi-VN" : "en-US";
  const big = [[1e9, lang === "vi" ? " tỷ" : " bn"], [1e6, lang === "vi" ? " triệu" : " M"]];
  for (const [div, suffix] of big) {
    if (Math.abs(n) >= div) return (n / div).toLocaleString(loc, { maximumFractionDigits: 1 }) + suffix;
  }
  return n.toLocaleString(loc, { maximumFractionDigits: Number.isInteger(n) || Math.abs(n) >= 1000 ? 0 : 2 });
}

export function age(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z")) / 1000);
  if (s < 3600) return `${Math.round(s / 60)}′`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, "0")}`;
  return `${Math.floor(s / 86400)}d`;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k.startsWith("on")) e[k] = v; else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c.nodeType ? c : String(c));
  return e;
}

export function sparkline(values, w = 120, h = 32) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "spark");
  if (values.length > 1) {
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${h - 2 - ((v - lo) / span) * (h - 4)}`);
    const p = document.createElementNS(ns, "polyline");
    p.setAttribute("points", pts.join(" "));
    svg.append(p);
  }
  return svg;
}
