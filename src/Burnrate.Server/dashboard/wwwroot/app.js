// Burnrate dashboard: a small single-page app over the REST API (docs/dashboard.md).
// Pages (hash routes): #/ overview, #/workload/<id>, #/chargeback/<team|project|user>, #/drill/<dimension>/<value>, #/fleet, #/billing.
// Every number comes from the API as an exact decimal string: it is shown rounded to cents and kept whole in the
// element's data-value attribute.
(function () {
  "use strict";

  const params = new URLSearchParams(location.search);
  // Live updates: every 5 s; ?refresh=<seconds> (at least 1) changes it.
  const refreshSeconds = Math.max(1, Number(params.get("refresh")) || 5);
  const KEY_STORAGE = "burnrate.apiKey";
  const main = document.getElementById("main");
  const charts = new Map();
  let timer = null;
  let generation = 0;

  // ---- API access: every request goes through api(), which adds the stored key and asks for one on 401 ----

  class ApiError extends Error {
    constructor(status, detail) { super(detail || ("HTTP " + status)); this.status = status; }
  }

  let loginWaiters = null;

  function askForKey(message) {
    if (!loginWaiters) {
      loginWaiters = [];
      const dialog = document.getElementById("login");
      document.getElementById("login-error").textContent = message || "";
      document.getElementById("api-key").value = "";
      if (!dialog.open) dialog.showModal();
    }
    return new Promise(resolve => loginWaiters.push(resolve));
  }

  document.getElementById("login-form").addEventListener("submit", () => {
    const key = document.getElementById("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    const waiters = loginWaiters || [];
    loginWaiters = null;
    waiters.forEach(w => w());
  });

  async function api(path, options) {
    const allow404 = options && options.allow404;
    for (let attempt = 0; attempt < 3; attempt++) {
      const headers = { "Accept": "application/json" };
      const key = sessionStorage.getItem(KEY_STORAGE);
      if (key) headers["Authorization"] = "Bearer " + key;
      const response = await fetch(path, { headers: headers, cache: "no-store" });
      if (response.status === 401) {
        if (key) sessionStorage.removeItem(KEY_STORAGE);
        await askForKey(key ? "That key was refused." : "");
        continue;
      }
      if (response.status === 404 && allow404) return null;
      if (!response.ok) {
        let detail = "";
        try { const problem = await response.json(); detail = problem.detail || problem.title || ""; } catch (e) { /* not JSON */ }
        throw new ApiError(response.status, path.split("?")[0] + ": " + (detail || ("HTTP " + response.status)));
      }
      return response.json();
    }
    throw new ApiError(401, "no valid API key");
  }

  // ---- exact money: decimal strings <-> BigInt nano-dollars ----

  function nanos(text) {
    if (text === null || text === undefined || text === "") return 0n;
    const s = String(text).trim();
    const negative = s.startsWith("-");
    const [whole, fraction = ""] = (negative ? s.slice(1) : s).split(".");
    const value = BigInt(whole || "0") * 1000000000n + BigInt((fraction + "000000000").slice(0, 9));
    return negative ? -value : value;
  }

  function exact(n) {
    const negative = n < 0n;
    const a = negative ? -n : n;
    return (negative ? "-" : "") + (a / 1000000000n).toString() + "." + (a % 1000000000n).toString().padStart(9, "0");
  }

  const usdFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function usd(text) {
    if (text === null || text === undefined || text === "") return "—";
    const n = Number(text);
    if (!Number.isFinite(n)) return String(text);
    // Sub-cent amounts (cost per token or step) keep three significant digits instead of showing $0.00.
    if (n !== 0 && Math.abs(n) < 0.01) return (n < 0 ? "-$" : "$") + Math.abs(n).toPrecision(3);
    return usdFormat.format(n);
  }

  // ---- DOM helpers ----

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // A money element: rounded to cents on screen, the exact API string in data-value.
  function money(text, attrs, suffix) {
    const a = Object.assign({}, attrs || {});
    a["data-value"] = text === null || text === undefined ? "" : String(text);
    a.class = ((a.class || "") + " money").trim();
    return h("span", a, usd(text) + (suffix || ""));
  }

  // GPU hours: one decimal on screen, the API's number in data-value.
  function hours(value) {
    const n = Number(value);
    return h("span", { "data-value": String(value) }, Number.isFinite(n) ? n.toFixed(1) : "");
  }

  function card(label, valueElement, attrs) {
    return h("div", Object.assign({ class: "card" }, attrs || {}), h("div", { class: "label" }, label), h("div", { class: "value" }, valueElement));
  }

  function link(href, text, attrs) { return h("a", Object.assign({ href: href }, attrs || {}), text); }

  function workloadHref(id) { return "#/workload/" + encodeURIComponent(id); }

  function isMoneyKey(k) { return /(^|_)usd($|_)/.test(k); }

  // A table of objects whose keys are not known in advance (used for API shapes that may grow).
  function genericTable(rows, testid, linkKey) {
    if (!Array.isArray(rows) || rows.length === 0) return h("p", { class: "muted", "data-testid": testid }, "none");
    const keys = [];
    rows.forEach(r => Object.keys(r || {}).forEach(k => { if (!keys.includes(k)) keys.push(k); }));
    return h("table", { "data-testid": testid },
      h("thead", {}, h("tr", {}, keys.map(k => h("th", { class: isMoneyKey(k) || rows.some(r => typeof (r || {})[k] === "number") ? "num" : "" }, k.replace(/_/g, " "))))),
      h("tbody", {}, rows.map(r => h("tr", {}, keys.map(k => cell(k, r[k], linkKey))))));
  }

  function cell(k, v, linkKey) {
    if (isMoneyKey(k) && (typeof v === "string" || typeof v === "number")) return h("td", { class: "num" }, money(v));
    if (k === linkKey && typeof v === "string") return h("td", {}, link(workloadHref(v), v));
    if (v !== null && typeof v === "object") return h("td", {}, Array.isArray(v) && v.every(x => typeof x !== "object") ? v.join(", ") : JSON.stringify(v));
    return h("td", { class: typeof v === "number" ? "num" : "" }, v === null || v === undefined ? "" : String(v));
  }

  function keyValues(obj, testid) {
    const entries = Object.entries(obj || {}).filter(([, v]) => v === null || typeof v !== "object");
    if (entries.length === 0) return null;
    return h("table", { "data-testid": testid }, h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", {}, k.replace(/_/g, " ")), cell(k, v)))));
  }

  // ---- time: always the server's clock (burn.at), so a server replaying a scenario shows its own day ----

  function startOfDay(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())); }
  function startOfMonth(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)); }
  function startOfNextMonth(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)); }
  function iso(d) { return d.toISOString().replace(".000Z", "Z"); }

  async function serverNow() {
    const burn = await api("/api/v1/burn").catch(e => { if (e.status === 503) return null; throw e; });
    return { burn: burn, now: burn ? new Date(burn.at) : new Date() };
  }

  // Costs over [from, to); an empty range (at midnight) is zero without asking.
  async function costs(from, to, extra) {
    if (from >= to) return { rows: [], total_usd: "0.000000000", idle_usd: "0.000000000", gpu_hours: 0 };
    const q = new URLSearchParams(extra || {});
    q.set("from", iso(from));
    q.set("to", iso(to));
    return api("/api/v1/costs?" + q.toString());
  }

  function costsFiltered(from, to, by, filters, step) {
    if (from >= to) return Promise.resolve({ rows: [], total_usd: "0.000000000", idle_usd: "0.000000000", gpu_hours: 0 });
    const q = new URLSearchParams();
    q.set("from", iso(from));
    q.set("to", iso(to));
    if (by) q.set("by", by);
    if (step) q.set("step", step);
    (filters || []).forEach(f => q.append("filter", f));
    return api("/api/v1/costs?" + q.toString());
  }

  // ---- charts (uPlot) ----

  // A time chart over [xMin, xMax] (seconds); the axes and legend are in UTC like the rest of the page.
  function lineChart(id, container, series, data, xMin, xMax) {
    const width = Math.max(320, container.clientWidth - 16 || 600);
    if (!(xMax > xMin)) xMax = xMin + 60;
    const existing = charts.get(id);
    if (existing && existing.root.isConnected) {
      existing.setData(data, false);
      existing.setScale("x", { min: xMin, max: xMax });
      return;
    }
    if (existing) existing.destroy();
    const opts = {
      width: width,
      height: 220,
      tzDate: ts => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true, auto: false, range: (u, min, max) => [min, max] } },
      series: [{}].concat(series),
      axes: [{}, { size: 70, values: (u, ticks) => ticks.map(t => usdFormat.format(t)) }]
        .concat(series.some(s => s.scale === "gpus") ? [{ side: 1, scale: "gpus", grid: { show: false } }] : []),
    };
    const chart = new uPlot(opts, data, container);
    chart.setScale("x", { min: xMin, max: xMax });
    charts.set(id, chart);
  }

  // Dollars per bucket, drawn as bars (one bar per bucket of the cost API).
  function dollarSeries(label, color) {
    return { label: label, stroke: color, fill: color + "55", width: 1, paths: uPlot.paths.bars({ size: [0.8, 60], align: 1 }), points: { show: false },
      value: (u, v) => v === null || v === undefined ? "—" : usdFormat.format(v) };
  }

  // ---- pages ----

  async function overview(gen) {
    const { burn, now } = await serverNow();
    const dayFrom = new Date(Math.floor(now.getTime() / 3600000) * 3600000 - 23 * 3600000);
    const [today, month, alerts, fleet, day] = await Promise.all([
      costs(startOfDay(now), now),
      costs(startOfMonth(now), now),
      api("/api/v1/alerts"),
      api("/api/v1/fleet", { allow404: true }).catch(() => null),
      costsFiltered(dayFrom, now, null, null, "1h"),
    ]);
    if (gen !== generation) return;

    const rate = burn ? burn.total_usd_per_hour : null;
    const monthEnd = startOfNextMonth(now);
    const msLeft = BigInt(Math.max(0, monthEnd.getTime() - now.getTime()));
    const forecast = nanos(month.total_usd) + nanos(rate) * msLeft / 3600000n;
    const firing = (alerts.alerts || []).filter(a => a.state === "firing");
    const idleRate = fleet && (fleet.idle_usd_per_hour || (fleet.totals && fleet.totals.idle_usd_per_hour));

    const page = h("section", { id: "overview", "data-testid": "overview", "data-at": burn ? burn.at : iso(now) },
      h("h1", {}, "Overview"),
      h("div", { class: "cards" },
        card("Burn rate now", money(rate, { id: "burn-rate", "data-testid": "burn-rate" }, "/h"), { class: "card hot" }),
        card("Spent today (UTC)", money(today.total_usd, { id: "spend-today", "data-testid": "spend-today", "data-from": iso(startOfDay(now)) })),
        card("Spent this month", money(month.total_usd, { id: "spend-month", "data-testid": "spend-month", "data-from": iso(startOfMonth(now)) })),
        card("Month-end forecast", money(exact(forecast), { id: "forecast", "data-testid": "forecast" }),
          { title: "This month's spend so far plus the current burn rate × the hours left until " + iso(monthEnd) + " — a straight-line forecast." }),
        card("Idle cost today", money(today.idle_usd, { id: "idle-today", "data-testid": "idle-today" })),
        idleRate ? card("Idle now", money(idleRate, { id: "idle-rate", "data-testid": "idle-rate" }, "/h")) : null,
        card("Firing alerts", h("span", { id: "firing-count", "data-testid": "firing-count", "data-value": String(firing.length), class: firing.length ? "firing" : "" }, String(firing.length)))),
      h("div", { class: "grid2" },
        h("div", {},
          h("h2", {}, "Top workloads by burn rate"),
          topWorkloads(burn)),
        h("div", {},
          h("h2", {}, "Firing alerts"),
          alertList(firing, "overview-alerts"))),
      h("h2", {}, "Spend per hour, last 24 hours"),
      h("div", { id: "overview-chart", class: "chart", "data-testid": "overview-chart" }));
    show(page, "overview");
    const buckets = (day.rows || []).filter(r => r.bucket);
    lineChart("overview", document.getElementById("overview-chart"),
      [dollarSeries("spend in the hour", "#d9480f"), dollarSeries("of which idle", "#868e96")],
      [buckets.map(r => Date.parse(r.bucket) / 1000), buckets.map(r => Number(r.cost_usd)), buckets.map(r => Number(r.idle_usd))],
      dayFrom.getTime() / 1000, now.getTime() / 1000);
  }

  function topWorkloads(burn) {
    const rows = burn ? burn.workloads.slice().sort((a, b) => Number(nanos(b.usd_per_hour) - nanos(a.usd_per_hour)) || (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0)).slice(0, 10) : [];
    if (rows.length === 0) return h("p", { class: "muted", "data-testid": "top-workloads" }, burn ? "no workload is running" : "this server does not rate live input");
    return h("table", { id: "top-workloads", "data-testid": "top-workloads" },
      h("thead", {}, h("tr", {}, h("th", {}, "workload"), h("th", {}, "team"), h("th", {}, "user"), h("th", {}, "clouds"), h("th", { class: "num" }, "$/h"), h("th", { class: "num" }, "so far"))),
      h("tbody", {}, rows.map(w => h("tr", { "data-workload": w.workload },
        h("td", {}, link(workloadHref(w.workload), w.name || w.workload)),
        h("td", {}, w.team ? link("#/drill/team/" + encodeURIComponent(w.team), w.team) : ""),
        h("td", {}, w.user || ""),
        h("td", {}, w.clouds || ""),
        h("td", { class: "num" }, money(w.usd_per_hour, { "data-testid": "workload-rate" })),
        h("td", { class: "num" }, money(w.total_usd))))));
  }

  function alertList(alerts, testid) {
    if (!alerts || alerts.length === 0) return h("p", { class: "muted", "data-testid": testid }, "nothing firing");
    return h("table", { "data-testid": testid },
      h("thead", {}, h("tr", {}, h("th", {}, "rule"), h("th", {}, "state"), h("th", {}, "workload"), h("th", {}, "summary"), h("th", { class: "num" }, "$/h"), h("th", {}, "since"))),
      h("tbody", {}, alerts.map(a => {
        const labels = a.labels || {};
        const notes = a.annotations || {};
        return h("tr", { "data-rule": a.rule },
          h("td", {}, a.rule),
          h("td", { class: a.state }, a.state),
          h("td", {}, labels.workload ? link(workloadHref(labels.workload), labels.workload) : (labels.team || "")),
          h("td", {}, notes.summary || ""),
          h("td", { class: "num" }, notes.usd_per_hour ? money(notes.usd_per_hour) : ""),
          h("td", {}, a.starts_at));
      })));
  }

  const RANGES = { today: "today", "7d": "last 7 days", month: "this month" };

  function rangeOf(name, now) {
    if (name === "today") return startOfDay(now);
    if (name === "7d") return new Date(now.getTime() - 7 * 24 * 3600 * 1000);
    return startOfMonth(now);
  }

  function currentRange() { return new URLSearchParams(location.hash.split("?")[1] || "").get("range") || "month"; }

  function rangeTabs(base) {
    const range = currentRange();
    return h("p", { class: "tabs", "data-testid": "range" }, Object.entries(RANGES).map(([k, label]) =>
      link(base + "?range=" + k, label, { class: k === range ? "active" : "" })));
  }

  async function chargeback(gen, dimension) {
    if (!["team", "project", "user"].includes(dimension)) dimension = "team";
    const { now } = await serverNow();
    const range = currentRange();
    const from = rangeOf(range, now);
    const report = await costsFiltered(from, now, dimension);
    if (gen !== generation) return;
    const total = nanos(report.total_usd);
    const rows = (report.rows || []).slice().sort((a, b) => Number(nanos(b.cost_usd) - nanos(a.cost_usd)));
    const page = h("section", { id: "chargeback", "data-testid": "chargeback", "data-dimension": dimension, "data-from": iso(from), "data-to": iso(now) },
      h("h1", {}, "Chargeback by " + dimension),
      h("p", { class: "tabs" }, ["team", "project", "user"].map(d => link("#/chargeback/" + d + "?range=" + range, "by " + d, { class: d === dimension ? "active" : "", "data-testid": "by-" + d }))),
      rangeTabs("#/chargeback/" + dimension),
      h("div", { class: "cards" }, card("Total", money(report.total_usd, { id: "chargeback-total", "data-testid": "chargeback-total" })), card("of which idle", money(report.idle_usd, { "data-testid": "chargeback-idle" }))),
      h("h2", {}, "Cost by " + dimension + " from " + iso(from) + " to " + iso(now)),
      h("table", { id: "chargeback-table", "data-testid": "chargeback-table" },
        h("thead", {}, h("tr", {}, h("th", {}, dimension), h("th", { class: "num" }, "cost"), h("th", { class: "num" }, "idle"), h("th", { class: "num" }, "GPU hours"), h("th", { class: "num" }, "share"))),
        h("tbody", {}, rows.map(r => {
          const key = (r.keys || {})[dimension] || "";
          const share = total > 0n ? (Number(nanos(r.cost_usd) * 10000n / total) / 100).toFixed(2) + " %" : "";
          return h("tr", { "data-key": key },
            // Cost with no team (project, user) cannot be filtered on by the API, so "(none)" is not a link.
            h("td", {}, key ? link("#/drill/" + dimension + "/" + encodeURIComponent(key) + "?range=" + range, key, { "data-testid": "drill-" + key })
              : h("span", { class: "muted", title: "cost not attributed to any " + dimension + " (idle capacity, unlabelled workloads)" }, "(none)")),
            h("td", { class: "num" }, money(r.cost_usd, { "data-testid": "row-cost" })),
            h("td", { class: "num" }, money(r.idle_usd)),
            h("td", { class: "num" }, hours(r.gpu_hours)),
            h("td", { class: "num" }, share));
        }))));
    show(page, "chargeback");
  }

  async function drill(gen, dimension, value) {
    const { burn, now } = await serverNow();
    const range = currentRange();
    const from = rangeOf(range, now);
    const report = await costsFiltered(from, now, "workload", [dimension + ":" + value]);
    if (gen !== generation) return;
    const live = new Map(((burn && burn.workloads) || []).map(w => [w.workload, w]));
    const rows = (report.rows || []).slice().sort((a, b) => Number(nanos(b.cost_usd) - nanos(a.cost_usd)));
    const page = h("section", { id: "drill", "data-testid": "drill", "data-dimension": dimension, "data-value": value },
      h("h1", {}, dimension + ": " + value),
      h("p", {}, link("#/chargeback/" + dimension + "?range=" + range, "← chargeback by " + dimension)),
      rangeTabs("#/drill/" + dimension + "/" + encodeURIComponent(value)),
      h("div", { class: "cards" }, card("Cost", money(report.total_usd, { id: "drill-total", "data-testid": "drill-total" })), card("of which idle", money(report.idle_usd))),
      h("h2", {}, "Workloads"),
      h("table", { id: "drill-workloads", "data-testid": "drill-workloads" },
        h("thead", {}, h("tr", {}, h("th", {}, "workload"), h("th", {}, "name"), h("th", { class: "num" }, "cost"), h("th", { class: "num" }, "burning now"), h("th", { class: "num" }, "GPU hours"))),
        h("tbody", {}, rows.map(r => {
          const id = (r.keys || {}).workload || "";
          const w = live.get(id);
          return h("tr", { "data-workload": id },
            h("td", {}, id ? link(workloadHref(id), id, { "data-testid": "workload-link" }) : "(unattributed)"),
            h("td", {}, w ? w.name : ""),
            h("td", { class: "num" }, money(r.cost_usd)),
            h("td", { class: "num" }, w ? money(w.usd_per_hour, {}, "/h") : ""),
            h("td", { class: "num" }, hours(r.gpu_hours)));
        }))));
    show(page, "chargeback");
  }

  const STEP_SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800 };

  // GET /api/v1/workloads/{id} when the server has it (timeline, GPUs, nodes, work, estimate, alerts); otherwise the
  // page makes do with /api/v1/burn and a workload-filtered /api/v1/costs.
  async function workload(gen, id) {
    const [{ burn, now }, detail, alerts] = await Promise.all([
      serverNow(),
      api("/api/v1/workloads/" + encodeURIComponent(id), { allow404: true }).catch(() => null),
      api("/api/v1/alerts"),
    ]);
    const live = ((burn && burn.workloads) || []).find(w => w.workload === id) || null;
    const d = detail || {};
    let points = d.timeline && Array.isArray(d.timeline.points) ? d.timeline : null;
    let from;
    if (points) {
      from = new Date(points.from);
    } else {
      const started = d.started ? new Date(d.started) : null;
      from = started && started < now ? started : new Date(now.getTime() - 24 * 3600 * 1000);
      if (now - from > 30 * 24 * 3600 * 1000) from = new Date(now.getTime() - 30 * 24 * 3600 * 1000);
      const span = now - from;
      const step = span <= 6 * 3600 * 1000 ? "5m" : span <= 48 * 3600 * 1000 ? "1h" : "1d";
      from = new Date(Math.floor(from.getTime() / 300000) * 300000);
      const series = await costsFiltered(from, now, null, ["workload:" + id], step);
      points = { step: step, to: iso(now), total_usd: series.total_usd,
        points: (series.rows || []).filter(r => r.bucket).map(r => ({ at: r.bucket, cost_usd: r.cost_usd, gpu_hours: r.gpu_hours })) };
    }
    if (gen !== generation) return;
    const to = points.to ? new Date(points.to) : now;
    const mine = Array.isArray(d.alerts) ? d.alerts : (alerts.alerts || []).filter(a => (a.labels || {}).workload === id);
    const rate = d.usd_per_hour || (live && live.usd_per_hour) || null;
    const total = d.total_usd || (live && live.total_usd) || points.total_usd || null;
    const est = d.estimate && typeof d.estimate === "object" ? d.estimate : null;
    const estimate = d.estimate_usd_per_hour || (est && est.estimate_usd_per_hour) || null;
    const work = Array.isArray(d.work) ? d.work : null;
    const team = d.team || (live && live.team) || "";
    const user = d.user || (live && live.user) || "";
    const page = h("section", { id: "workload", "data-testid": "workload", "data-workload": id },
      h("h1", {}, "Workload " + (d.name || (live && live.name) || id)),
      h("p", { class: "muted" }, id,
        team ? [" · team ", link("#/drill/team/" + encodeURIComponent(team), team)] : null,
        d.project ? [" · project ", link("#/drill/project/" + encodeURIComponent(d.project), d.project)] : null,
        user ? [" · user ", link("#/drill/user/" + encodeURIComponent(user), user)] : null,
        d.model ? " · model " + d.model : null,
        d.started ? " · started " + d.started : null,
        d.state ? " · " + d.state : null),
      h("div", { class: "cards" },
        card("Burn rate now", money(rate, { id: "workload-rate", "data-testid": "workload-rate" }, "/h"), { class: "card hot" }),
        card("Cost so far", money(total, { id: "workload-total", "data-testid": "workload-total" })),
        card("Launch estimate", estimate ? money(estimate, { id: "workload-estimate", "data-testid": "workload-estimate" }, "/h") : h("span", { class: "muted" }, "none")),
        estimate && rate ? card("Now vs estimate", h("span", { "data-testid": "workload-vs-estimate" },
          (nanos(estimate) > 0n ? (Number(nanos(rate) * 1000n / nanos(estimate)) / 10).toFixed(1) + " %" : "—"))) : null),
      h("h2", {}, "Cost and GPUs held over time (" + points.step + " buckets)"),
      h("div", { id: "workload-chart", class: "chart", "data-testid": "workload-chart" }),
      h("div", { class: "grid2" },
        h("div", {}, h("h2", {}, "Cost per unit of work"),
          work ? genericTable(work, "workload-per-unit") : h("p", { class: "muted", "data-testid": "workload-per-unit" }, "no work counters reported")),
        h("div", {}, h("h2", {}, "Estimate vs actual"), est ? keyValues(est, "workload-estimate-table") : h("p", { class: "muted" }, "no launch estimate"))),
      Array.isArray(d.nodes) ? [h("h2", {}, "Nodes"), genericTable(d.nodes, "workload-nodes")] : null,
      h("h2", {}, "GPUs"),
      Array.isArray(d.gpus) && d.gpus.length > 0
        ? h("details", { "data-testid": "workload-gpus-details" }, h("summary", {}, d.gpus.length + " GPUs held now"), genericTable(d.gpus, "workload-gpus"))
        : h("p", { class: "muted", "data-testid": "workload-gpus" }, detail ? "none held now" : "not known to this server"),
      h("h2", {}, "Alerts"),
      alertList(mine, "workload-alerts"),
      detail ? null : h("p", { class: "muted" }, "GPUs, cost per unit of work and the estimate come from /api/v1/workloads/{id}, which this server does not offer."));
    show(page, "overview");
    // Bars: dollars per bucket; line: GPUs held on average in the bucket (GPU hours / bucket hours); and GPU
    // utilisation when the timeline carries it.
    const ps = points.points.filter(p => Number.isFinite(Date.parse(p.at)));
    const stepHours = (STEP_SECONDS[points.step] || 3600) / 3600;
    const series = [dollarSeries("cost in the bucket", "#d9480f"),
      { label: "GPUs held", stroke: "#1c7ed6", scale: "gpus", width: 2, value: (u, v) => v === null || v === undefined ? "—" : v.toFixed(2) }];
    const data = [ps.map(p => Date.parse(p.at) / 1000), ps.map(p => Number(p.cost_usd)), ps.map(p => p.gpu_hours === undefined ? null : Number(p.gpu_hours) / stepHours)];
    if (ps.some(p => p.utilization !== undefined)) {
      series.push({ label: "GPU utilisation", stroke: "#2b8a3e", scale: "gpus", width: 1 });
      data.push(ps.map(p => p.utilization === undefined || p.utilization === null ? null : Number(p.utilization)));
    }
    lineChart("workload-cost", document.getElementById("workload-chart"), series, data, from.getTime() / 1000, to.getTime() / 1000);
  }

  async function fleetPage(gen) {
    const { now } = await serverNow();
    const [fleet, spend] = await Promise.all([
      api("/api/v1/fleet", { allow404: true }).catch(() => null),
      costsFiltered(startOfDay(now), now, "cloud,gpu,capacity"),
    ]);
    if (gen !== generation) return;
    const sections = [];
    if (fleet) {
      const scalars = Object.entries(fleet).filter(([k, v]) => k !== "at" && (typeof v === "string" || typeof v === "number"));
      sections.push(h("div", { class: "cards", "data-testid": "fleet-summary" }, scalars.map(([k, v]) =>
        card(k.replace(/_/g, " "), isMoneyKey(k) ? money(v, { "data-testid": "fleet-" + k }, k.endsWith("per_hour") ? "/h" : "")
          : h("span", { "data-testid": "fleet-" + k, "data-value": String(v) }, String(v))))));
      const arrays = Object.entries(fleet).filter(([, v]) => Array.isArray(v))
        .sort(([a], [b]) => (a.startsWith("by_") ? 0 : 1) - (b.startsWith("by_") ? 0 : 1));
      for (const [k, v] of arrays)
        sections.push(h("h2", {}, k.startsWith("by_") ? "By " + k.slice(3).replace(/_/g, " ") : "All " + k.replace(/_/g, " ")), genericTable(v, "fleet-" + k));
    } else {
      sections.push(h("p", { class: "muted", "data-testid": "fleet-unavailable" }, "The fleet inventory (/api/v1/fleet) is not offered by this server; below is today's spend by cloud and GPU type."));
    }
    const rows = (spend.rows || []).slice().sort((a, b) => Number(nanos(b.cost_usd) - nanos(a.cost_usd)));
    const page = h("section", { id: "fleet", "data-testid": "fleet" },
      h("h1", {}, "Fleet"),
      sections,
      h("h2", {}, "Spend today by cloud, GPU type and capacity type"),
      h("table", { "data-testid": "fleet-spend" },
        h("thead", {}, h("tr", {}, h("th", {}, "cloud"), h("th", {}, "GPU"), h("th", {}, "capacity"), h("th", { class: "num" }, "cost"), h("th", { class: "num" }, "idle"), h("th", { class: "num" }, "GPU hours"))),
        h("tbody", {}, rows.map(r => h("tr", {},
          h("td", {}, r.keys.cloud), h("td", {}, r.keys.gpu), h("td", {}, r.keys.capacity),
          h("td", { class: "num" }, money(r.cost_usd)), h("td", { class: "num" }, money(r.idle_usd)), h("td", { class: "num" }, hours(r.gpu_hours)))))));
    show(page, "fleet");
  }

  // ---- bills: estimate vs bill per reconciled period, and the calibration learned (admin key) ----

  function ratioText(effective, estimated) {
    const est = Number(estimated), eff = Number(effective);
    if (!Number.isFinite(est) || est === 0) return "";
    const pct = (eff - est) / est * 100;
    return (pct >= 0 ? "+" : "") + pct.toFixed(2) + " %";
  }

  async function billingPage(gen) {
    let data;
    try {
      data = await api("/api/v1/billing/calibration");
    } catch (e) {
      if (e.status !== 403) throw e;
      if (gen !== generation) return;
      show(h("section", { id: "billing", "data-testid": "billing" }, h("h1", {}, "Bills"),
        h("p", { class: "muted", "data-testid": "billing-forbidden" }, "Bills cover every team: the estimate-vs-bill report needs an admin key.")), "billing");
      return;
    }
    if (gen !== generation) return;
    const periods = data.reconciled_periods || [];
    const factors = data.factors || [];
    const unspent = Object.entries(data.unspent_commitments_usd_per_hour || {});
    const page = h("section", { id: "billing", "data-testid": "billing" },
      h("h1", {}, "Bills"),
      h("p", { class: "muted" }, "Each bill imported (burnrate reconcile, POST /api/v1/billing/focus) against the estimate over its period; "
        + "ledger rows in these periods are reconciled, later ones provisional. Factors learned from the bills are applied to live rates."),
      h("h2", {}, "Estimate vs bill"),
      periods.length === 0 ? h("p", { class: "muted", "data-testid": "billing-periods" }, "No bill reconciled yet.") :
      h("table", { "data-testid": "billing-periods" },
        h("thead", {}, h("tr", {}, h("th", {}, "provider"), h("th", {}, "from"), h("th", {}, "to"), h("th", { class: "num" }, "estimated"),
          h("th", { class: "num" }, "bill (effective)"), h("th", { class: "num" }, "bill vs estimate"), h("th", {}, "reconciled"))),
        h("tbody", {}, periods.map(p => h("tr", { "data-provider": p.provider },
          h("td", {}, p.provider), h("td", {}, p.from), h("td", {}, p.to),
          h("td", { class: "num" }, money(p.estimated_cost, { "data-testid": "period-estimated" })),
          h("td", { class: "num" }, money(p.effective_cost, { "data-testid": "period-effective" })),
          h("td", { class: "num", "data-testid": "period-ratio" }, ratioText(p.effective_cost, p.estimated_cost)),
          h("td", {}, p.reconciled_at))))),
      h("h2", {}, "Calibration in force"),
      factors.length === 0 ? h("p", { class: "muted", "data-testid": "billing-factors" }, "No factors: live rates are list and spot prices with the configured commitments.") :
      h("table", { "data-testid": "billing-factors" },
        h("thead", {}, h("tr", {}, h("th", {}, "provider"), h("th", {}, "usage"), h("th", {}, "instance type"), h("th", {}, "capacity"),
          h("th", { class: "num" }, "estimated"), h("th", { class: "num" }, "effective"), h("th", { class: "num" }, "factor"), h("th", {}, "learned from"))),
        h("tbody", {}, factors.map(f => h("tr", {},
          h("td", {}, f.provider), h("td", {}, f.usage), h("td", {}, f.instance_type || "-"), h("td", {}, f.capacity_type),
          h("td", { class: "num" }, money(f.estimated_cost)), h("td", { class: "num" }, money(f.effective_cost)),
          h("td", { class: "num", "data-testid": "factor", "data-value": f.factor }, Number(f.factor).toFixed(4)),
          h("td", {}, f.from + " – " + f.to))))),
      unspent.length === 0 ? null : h("div", {}, h("h2", {}, "Savings plans: commitment unspent in the last minute"),
        h("table", { "data-testid": "billing-unspent" }, h("tbody", {}, unspent.map(([plan, usdPerHour]) =>
          h("tr", {}, h("th", {}, plan), h("td", { class: "num" }, money(usdPerHour, {}, "/h"))))))));
    show(page, "billing");
  }

  // ---- routing and live updates ----

  function show(page, nav) {
    main.replaceChildren(page);
    document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.nav === nav));
    const updated = document.getElementById("updated");
    updated.textContent = "updated " + new Date().toLocaleTimeString("en-GB") + " · every " + refreshSeconds + " s";
  }

  function route() {
    const path = (location.hash.replace(/^#/, "").split("?")[0] || "/").split("/").filter(Boolean).map(decodeURIComponent);
    switch (path[0]) {
      case "workload": return gen => workload(gen, path.slice(1).join("/"));
      case "chargeback": return gen => chargeback(gen, path[1] || "team");
      case "drill": return gen => drill(gen, path[1] || "team", path.slice(2).join("/"));
      case "fleet": return gen => fleetPage(gen);
      case "billing": return gen => billingPage(gen);
      default: return gen => overview(gen);
    }
  }

  let current = null;
  let running = false;

  async function refresh() {
    if (running || !current) return;
    running = true;
    const gen = generation;
    try {
      await current(gen);
    } catch (e) {
      if (gen === generation) {
        main.replaceChildren(h("section", { "data-testid": "error" }, h("h1", {}, "Cannot load this page"), h("p", { class: "error" }, e.message)));
      }
    } finally {
      running = false;
    }
  }

  function navigate() {
    generation++;
    charts.forEach(c => c.destroy());
    charts.clear();
    current = route();
    running = false;
    refresh();
    if (timer) clearInterval(timer);
    timer = setInterval(refresh, refreshSeconds * 1000);
  }

  window.addEventListener("hashchange", navigate);
  navigate();
})();
