// The operator's console: one page over the console's JSON API and its server-sent events.
// Every value from the planes is put on the page as text (textContent), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ANALYSIS_REFRESH_MS = 3000;
const $ = (selector) => document.querySelector(selector);
const state = {session: null, flags: null, overview: null, positions: null, lastFillSeq: -1,
               orders: [], ordersToken: "", ordersFilter: {}, audit: [], auditToken: "", auditFilter: {}};

// ---- talking to the console ------------------------------------------------------------------

async function get(path) {
  const response = await fetch(path, {credentials: "same-origin"});
  if (response.status === 401) { location.assign("/login"); throw new Error("signed out"); }
  const data = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) { throw new Error(data.error || `HTTP ${response.status}`); }
  return data;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": (state.session && state.session.csrf_token) || ""},
  });
  const data = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  return response.ok ? {ok: true, body: data} : {ok: false, error: data.error || `HTTP ${response.status}`};
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) { if (value) search.set(name, value); }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function problem(message) {
  const box = $("#problem");
  box.textContent = message || "";
  box.hidden = !message;
}

function notice(message) {
  const box = $("#notice");
  box.textContent = message || "";
  box.hidden = !message;
}

function actionSummary(answer) {
  const parts = [];
  if (answer.canceled) { parts.push(`${answer.canceled.length} open order(s) canceled`); }
  if (answer.orders) { parts.push(`${answer.orders.length} closing order(s) sent`); }
  if (answer.failures && answer.failures.length) { parts.push(`could not: ${answer.failures.join("; ")}`); }
  return parts.join(", ");
}

// ---- building the page from values ------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) { td.className = className; }
  return td;
}

function fillTable(selector, rows) {
  const body = $(`${selector} tbody`);
  body.replaceChildren(...rows);
}

function tableRow(cells, data) {
  const tr = document.createElement("tr");
  for (const [name, value] of Object.entries(data || {})) { tr.dataset[name] = value; }
  tr.append(...cells);
  return tr;
}

function when(text) {
  return text ? text.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "";
}

function percent(fraction) {
  const value = Number(fraction);
  return Number.isFinite(value) ? `${(value * 100).toFixed(2)}%` : "";
}

function onOff(value) { return value ? "on" : "off"; }

// ---- overview -----------------------------------------------------------------------------------

function renderOverview(overview) {
  state.overview = overview;
  if (!state.flags) { showTradingState(overview.trading_state); }
  fillTable("#planes-table", overview.planes.map((p) => tableRow(
    [cell(p.plane), cell(p.address), cell(p.status, p.serving ? "good" : "bad")], {plane: p.plane})));
  fillTable("#workers-table", overview.workers.map((w) => {
    const last = w.last_decision;
    const decision = last ? `${last.action}: ${last.reason} (${when(last.time)})` : (w.problem || "");
    return tableRow([cell(w.name), cell(w.state, `state state-${w.state}`), cell(w.events), cell(w.intents_submitted),
                     cell(w.intents_rejected), cell(w.skipped_by_flags), cell(decision, "decision")],
                    {worker: w.name});
  }));
  const actions = new Set(overview.capabilities || []);
  $("#order-actions").hidden = actions.size === 0;
  for (const button of document.querySelectorAll("#order-actions button")) {
    button.hidden = !actions.has(button.dataset.action);
  }
  renderStrategies();
}

function showTradingState(tradingState) {
  const badge = $("#trading-state");
  badge.textContent = tradingState;
  badge.dataset.state = tradingState;
}

function renderAccount(account) {
  const list = $("#account");
  const items = [["balance", account.balance], ["equity", account.equity], ["peak equity", account.peak_equity],
                 ["drawdown", `${account.drawdown} (${percent(account.drawdown_fraction)})`],
                 ["max drawdown", account.max_drawdown], ["currency", account.currency], ["account", account.account]];
  list.replaceChildren(...items.flatMap(([name, value]) => {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    detail.dataset.figure = name.replace(" ", "_");
    return [term, detail];
  }));
}

// ---- control ------------------------------------------------------------------------------------

function renderFlags(flags) {
  state.flags = flags;
  showTradingState(flags.state);
  $("#flags-version").textContent = flags.version;
  const labels = {
    global_lock: [flags.global_lock ? "ON (HALTED)" : "off", flags.global_lock ? "Lift the kill switch" : "Pull the kill switch"],
    global_entry_enabled: [onOff(flags.global_entry_enabled), flags.global_entry_enabled ? "Turn entries off" : "Turn entries on"],
    global_exit_enabled: [onOff(flags.global_exit_enabled), flags.global_exit_enabled ? "Hold exits" : "Turn exits on"],
  };
  for (const [name, [now, action]] of Object.entries(labels)) {
    const row = document.querySelector(`tr[data-global="${name}"]`);
    row.querySelector(".now").textContent = now;
    row.querySelector("button").textContent = action;
  }
  renderStrategies();
}

function renderStrategies() {
  const flags = state.flags;
  if (!flags) { return; }
  const bySlug = new Map(flags.strategies.map((s) => [s.slug, s]));
  for (const worker of (state.overview && state.overview.workers) || []) {
    if (worker.strategy && !bySlug.has(worker.strategy)) {
      bySlug.set(worker.strategy, {slug: worker.strategy, entry_enabled: true, exit_enabled: true, note: "", updated_time: ""});
    }
  }
  const slugs = [...bySlug.keys()].sort();
  fillTable("#strategies-table", slugs.map((slug) => {
    const flagsOf = bySlug.get(slug);
    const switchCell = (name, label) => {
      const td = cell("");
      const enabled = flagsOf[name];
      const status = document.createElement("span");
      status.textContent = onOff(enabled);
      status.className = enabled ? "good" : "bad";
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.switch = name;
      button.textContent = enabled ? `Turn ${label} off` : `Turn ${label} on`;
      button.disabled = !mayAct();
      button.addEventListener("click", () => confirmChange(
        `${enabled ? "Turn off" : "Turn on"} the ${label} of ${slug}?`,
        (reason) => ({slug, [name]: !enabled, reason, expected_version: flags.version})));
      td.append(status, " ", button);
      return td;
    };
    return tableRow([cell(slug), switchCell("entry_enabled", "entries"), switchCell("exit_enabled", "exits"),
                     cell(flagsOf.note), cell(when(flagsOf.updated_time))], {strategy: slug});
  }));
}

function mayAct() { return Boolean(state.session && state.session.may_act); }

function setUpGlobalSwitches() {
  for (const button of document.querySelectorAll("#global-table button")) {
    button.addEventListener("click", () => {
      const flags = state.flags;
      if (!flags) { return; }
      const name = button.dataset.switch;
      const value = !flags[name];
      const what = name === "global_lock"
        ? (value ? "Pull the kill switch? Trading becomes HALTED: no new orders of any kind." : "Lift the kill switch?")
        : `${value ? "Turn on" : "Turn off"} ${name === "global_entry_enabled" ? "entries" : "exits"} for every strategy?`;
      confirmChange(what, (reason) => ({[name]: value, reason, expected_version: flags.version}));
    });
  }
  for (const button of document.querySelectorAll("#order-actions button")) {
    button.addEventListener("click", () => confirmChange(`${button.textContent}?`, (reason) => ({reason}),
                                                         `/api/${button.dataset.action}`));
  }
}

function confirmChange(what, bodyFor, path = "/api/strategy-control") {
  const dialog = $("#confirm");
  const reason = $("#confirm-reason");
  $("#confirm-what").textContent = what;
  $("#confirm-problem").textContent = "";
  reason.value = "";
  dialog.querySelector("form").onsubmit = async (event) => {
    event.preventDefault();
    const text = reason.value.trim();
    if (!text) { $("#confirm-problem").textContent = "A reason is required."; return; }
    const result = await post(path, bodyFor(text));
    if (!result.ok) { $("#confirm-problem").textContent = result.error; return; }
    dialog.close();
    if (result.body.flags) {
      renderFlags(result.body.flags);
    } else if (result.body.settings) {
      const settings = result.body.settings;
      notice(`${settings.strategy}: settings ${settings.frozen ? "frozen" : "no longer frozen"} (version ${settings.version})`);
      loadAnalysis();
    } else {
      notice(actionSummary(result.body));
    }
    loadAudit(false);
  };
  dialog.showModal();
}

// ---- positions and equity ---------------------------------------------------------------------

function renderPositions(positions) {
  state.positions = positions;
  renderAccount(positions.account);
  $("#positions-seq").textContent = positions.last_fill_seq;
  $("#positions-as-of").textContent = when(positions.as_of);
  fillTable("#positions-table", positions.positions.map((p) => tableRow(
    [cell(p.strategy), cell(p.instrument), cell(p.quantity, "number"), cell(p.average_price, "number"),
     cell(p.mark_price, "number"), cell(p.unrealized_pnl, "number"), cell(p.realized_pnl, "number"),
     cell(p.commission, "number"), cell(when(p.opened_time))], {position: `${p.strategy}/${p.instrument}`})));
  fillTable("#strategy-pnl-table", positions.strategies.map((s) => tableRow(
    [cell(s.slug), cell(s.realized_pnl, "number"), cell(s.unrealized_pnl, "number"), cell(s.wins, "number"),
     cell(s.losses, "number"), cell(s.consecutive_losses, "number")], {strategy: s.slug})));
  if (positions.last_fill_seq !== state.lastFillSeq) {
    state.lastFillSeq = positions.last_fill_seq;
    loadEquity();
    loadFills();
    loadAnalysis();
  }
}

async function loadEquity() {
  try {
    drawEquity((await get("/api/equity")).samples);
  } catch (error) { problem(`equity: ${error.message}`); }
}

function svgNode(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) { node.setAttribute(key, value); }
  if (text !== undefined) { node.textContent = text; }
  return node;
}

function drawEquity(samples) {
  const chart = $("#equity-chart");
  chart.replaceChildren();
  chart.dataset.samples = samples.length;
  if (!samples.length) {
    chart.append(svgNode("text", {x: 400, y: 130, "text-anchor": "middle", class: "empty"}, "no equity samples yet"));
    $("#equity-summary").textContent = "";
    return;
  }
  // Plotting only: the exact figures stay decimal strings in the tables and the summary.
  const width = 800, height = 260, left = 90, right = 12, top = 12, bottom = 30;
  const values = samples.map((s) => Number(s.equity));
  const times = samples.map((s) => Date.parse(s.time));
  let low = Math.min(...values), high = Math.max(...values);
  if (low === high) { low -= 1; high += 1; }
  const first = times[0], last = times[times.length - 1];
  const x = (t) => (last === first ? (left + width - right) / 2 : left + (t - first) / (last - first) * (width - left - right));
  const y = (v) => top + (high - v) / (high - low) * (height - top - bottom);
  chart.append(
    svgNode("line", {x1: left, y1: top, x2: left, y2: height - bottom, class: "axis"}),
    svgNode("line", {x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, class: "axis"}),
    svgNode("text", {x: left - 6, y: top + 10, "text-anchor": "end", class: "label"}, high.toFixed(0)),
    svgNode("text", {x: left - 6, y: height - bottom, "text-anchor": "end", class: "label"}, low.toFixed(0)),
    svgNode("text", {x: left, y: height - 8, class: "label"}, when(samples[0].time)),
    svgNode("text", {x: width - right, y: height - 8, "text-anchor": "end", class: "label"},
            when(samples[samples.length - 1].time)),
    svgNode("polyline", {class: "equity", points: samples.map((s, i) => `${x(times[i]).toFixed(1)},${y(values[i]).toFixed(1)}`).join(" ")}),
  );
  const end = samples[samples.length - 1];
  chart.append(svgNode("circle", {cx: x(last), cy: y(Number(end.equity)), r: 4, class: "equity-end"}));
  chart.dataset.lastEquity = end.equity;
  $("#equity-summary").textContent =
    `${samples.length} samples; last equity ${end.equity}, balance ${end.balance}, drawdown ${end.drawdown} (${when(end.time)})`;
}

// ---- orders and fills -------------------------------------------------------------------------

function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form).entries()) { values[name] = String(value).trim(); }
  return values;
}

async function loadOrders(more) {
  try {
    const data = await get(`/api/orders${query({...state.ordersFilter, limit: "100", page_token: more ? state.ordersToken : ""})}`);
    state.orders = more ? state.orders.concat(data.orders) : data.orders;
    state.ordersToken = data.next_page_token;
    renderOrders();
    problem("");
  } catch (error) { problem(`orders: ${error.message}`); }
}

function orderMatches(order, filter) {
  return (!filter.strategy || order.strategy === filter.strategy) &&
         (!filter.instrument || order.instrument === filter.instrument) &&
         (!filter.state || order.state === filter.state);
}

function onOrderEvent(order) {
  const index = state.orders.findIndex((o) => o.order_id === order.order_id);
  if (!orderMatches(order, state.ordersFilter)) {
    if (index >= 0) { state.orders.splice(index, 1); renderOrders(); }
    return;
  }
  if (index >= 0) { state.orders[index] = order; } else { state.orders.unshift(order); }
  state.orders = state.orders.slice(0, 500);
  renderOrders();
}

function renderOrders() {
  fillTable("#orders-table", state.orders.map((o) => tableRow(
    [cell(when(o.created_time)), cell(o.order_id), cell(o.strategy), cell(o.role), cell(o.side),
     cell(o.quantity, "number"), cell(o.order_type), cell(o.state, `state order-${o.state}`),
     cell(o.filled_quantity, "number"), cell(o.average_fill_price, "number"), cell(o.reject_rule, "rule"),
     cell(o.reason, "reason")], {orderId: o.order_id})));
  $("#orders-more").hidden = !state.ordersToken;
}

async function loadFills() {
  try {
    const data = await get(`/api/fills${query(formValues($("#fills-filter")))}`);
    fillTable("#fills-table", data.fills.map((f) => tableRow(
      [cell(when(f.time)), cell(f.fill_id), cell(f.order_id), cell(f.strategy), cell(f.instrument), cell(f.side),
       cell(f.quantity, "number"), cell(f.price, "number"), cell(f.commission, "number")], {fillId: f.fill_id})));
  } catch (error) { problem(`fills: ${error.message}`); }
}

// ---- analysis -----------------------------------------------------------------------------------

function ratio(value, digits) {
  return value === null || value === undefined ? "n/a" : Number(value).toFixed(digits);
}

// No settings from analysis yet: the workers trade full size with entries on.
function sizing(allocation) {
  return allocation ? `×${allocation.size_multiplier}` : "×1";
}

function entries(allocation) {
  return allocation ? onOff(allocation.entries_enabled) : "on";
}

function recommendation(r) {
  if (!r.recommended) { return "not judged yet"; }
  return `${sizing(r.recommended)} ${entries(r.recommended)}: ${r.recommended.reason}`;
}

// Frozen: analysis changes neither the strategy's parameters nor its allocation until thawed.
function freezeCell(r) {
  const td = cell("");
  const status = document.createElement("span");
  status.textContent = r.frozen ? "frozen" : "follows analysis";
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.freeze = r.frozen ? "thaw" : "freeze";
  button.textContent = r.frozen ? "Thaw" : "Freeze";
  button.disabled = !mayAct();
  button.addEventListener("click", () => confirmChange(
    r.frozen ? `Let analysis change the settings of ${r.strategy} again?`
      : `Freeze the settings of ${r.strategy}? Analysis then changes neither its parameters nor its allocation.`,
    (reason) => ({strategy: r.strategy, frozen: !r.frozen, reason}), "/api/analysis/freeze"));
  td.append(status, " ", button);
  return td;
}

async function loadAnalysis() {
  try {
    const data = await get("/api/analysis");
    const note = $("#analysis-note");
    note.textContent = data.configured
      ? `Policy: ${data.policy || "?"}; as of fill ${data.last_fill_seq}.` : data.problem;
    fillTable("#analysis-table", data.strategies.map((r) => {
      const all = r.overall || {}, rolling = r.rolling || {};
      return tableRow(
        [cell(r.strategy), cell(r.instrument), cell(all.trades, "number"),
         cell(r.overall ? percent(all.win_rate) : "", "number"), cell(all.net_pnl, "number"),
         cell(r.overall ? ratio(all.expectancy, 2) : "", "number"),
         cell(r.overall ? ratio(all.profit_factor, 2) : "", "number"),
         cell(r.overall ? ratio(all.sharpe, 2) : "", "number"), cell(all.max_drawdown, "number"),
         cell(r.rolling ? `${rolling.trades} of last ${r.rolling_trades}` : "", "number"),
         cell(rolling.net_pnl, "number"), cell(r.open_quantity, "number"),
         cell(sizing(r.applied)), cell(entries(r.applied)), cell(recommendation(r), "reason"),
         freezeCell(r), cell(r.settings_version, "number")],
        {strategy: r.strategy, instrument: r.instrument});
    }));
  } catch (error) { problem(`analysis: ${error.message}`); }
}

// ---- audit --------------------------------------------------------------------------------------

function auditFilter(form) {
  const values = formValues(form);
  for (const name of ["since", "until"]) {
    if (values[name]) { values[name] = new Date(values[name]).toISOString(); }
  }
  return values;
}

async function loadAudit(more) {
  try {
    const data = await get(`/api/audit${query({...state.auditFilter, limit: "100", page_token: more ? state.auditToken : ""})}`);
    state.audit = more ? state.audit.concat(data.entries) : data.entries;
    state.auditToken = data.next_page_token;
    fillTable("#audit-table", state.audit.map((e) => tableRow(
      [cell(when(e.time)), cell(e.version, "number"), cell(e.operator ? `${e.operator} (via ${e.actor})` : e.actor),
       cell(e.role), cell(e.source), cell(e.strategy || "global"), cell(e.flag, "flag"),
       cell(`${e.old_value} → ${e.new_value}`, "change"), cell(e.reason, "reason")],
      {auditId: e.id, flag: e.flag, strategy: e.strategy})));
    $("#audit-more").hidden = !state.auditToken;
  } catch (error) { problem(`audit: ${error.message}`); }
}

// ---- wiring ------------------------------------------------------------------------------------

function showTab() {
  const shown = (location.hash || "#overview").slice(1);
  for (const section of document.querySelectorAll("main > section")) {
    section.classList.toggle("shown", section.id === shown);
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#${shown}`);
  }
  // Analysis catches up with fills on its own schedule: looking at it asks again.
  if (shown === "analysis" && state.session) { loadAnalysis(); }
}

function follow() {
  const events = new EventSource("/api/events");
  const connection = $("#connection");
  events.onopen = () => { connection.textContent = "live"; connection.dataset.live = "true"; };
  events.onerror = () => { connection.textContent = "reconnecting…"; connection.dataset.live = "false"; };
  events.addEventListener("overview", (e) => renderOverview(JSON.parse(e.data)));
  events.addEventListener("flags", (e) => { renderFlags(JSON.parse(e.data)); loadAudit(false); });
  events.addEventListener("positions", (e) => renderPositions(JSON.parse(e.data)));
  events.addEventListener("order", (e) => onOrderEvent(JSON.parse(e.data)));
}

function onSubmit(selector, action) {
  $(selector).addEventListener("submit", (event) => { event.preventDefault(); action(event.target); });
}

async function start() {
  showTab();
  window.addEventListener("hashchange", showTab);
  state.session = await get("/api/session");
  $("#operator").textContent = state.session.operator;
  $("#role").textContent = state.session.role;
  $("#logout").hidden = !state.session.login_required;
  $("#logout").addEventListener("click", async () => { await post("/logout", {}); location.assign("/login"); });
  $("#confirm-cancel").addEventListener("click", () => $("#confirm").close());
  for (const button of document.querySelectorAll("#global-table button, #order-actions button")) {
    button.disabled = !mayAct();
  }
  setUpGlobalSwitches();
  onSubmit("#orders-filter", (form) => { state.ordersFilter = formValues(form); loadOrders(false); });
  onSubmit("#fills-filter", () => loadFills());
  onSubmit("#audit-filter", (form) => { state.auditFilter = auditFilter(form); loadAudit(false); });
  $("#orders-more").addEventListener("click", () => loadOrders(true));
  $("#audit-more").addEventListener("click", () => loadAudit(true));
  follow();
  loadOrders(false);
  loadAudit(false);
  loadEquity();
  loadAnalysis();
  // Analysis follows the fills on its own stream, a moment behind the positions: while its tab is
  // open, ask again every few seconds.
  setInterval(() => { if (location.hash === "#analysis") { loadAnalysis(); } }, ANALYSIS_REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => { start().catch((error) => problem(error.message)); });
