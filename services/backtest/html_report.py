"""`quantmesh backtest --html`: one self-contained interactive page (report.html), like backtesting.py's.

The same three panels as equity.png (services/backtest/charts.py: price with entries and exits,
equity against buy-and-hold, drawdown) drawn by a small script in the page itself: no CDN, no
library, nothing fetched, so the file opens offline and can be mailed. Hover shows the time and
every panel's value there; drag across a panel zooms the time axis of all three; double-click
resets; a click on a row of the trades table zooms to that trade. The report's figures head the
page, as the terminal shows them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from services.backtest.charts import Chart, Series
from services.common.wire import decimal_text
from services.position.currency import quote_currency


def _points(series: Series | None) -> list:
    if series is None:
        return []
    return [[round(t.timestamp() * 1000), round(v, 6)] for t, v in zip(series.times, series.values)]


def page_data(chart: Chart) -> dict:
    """What the page draws, as JSON: times in milliseconds since the epoch (UTC)."""
    return {
        "title": chart.title, "period": chart.period(), "instrument": chart.instrument,
        "currency": chart.currency or quote_currency(chart.instrument),
        "price": _points(chart.prices), "equity": _points(chart.equity()), "hold": _points(chart.buy_and_hold()),
        "drawdown": _points(chart.drawdown()),
        "trades": [{"direction": t.direction, "size": decimal_text(t.size),
                    "entry": round(t.entry_time.timestamp() * 1000), "entryPrice": float(t.entry_price),
                    "exit": round(t.exit_time.timestamp() * 1000), "exitPrice": float(t.exit_price),
                    "entryText": decimal_text(t.entry_price), "exitText": decimal_text(t.exit_price),
                    "net": decimal_text(t.net_pnl), "currency": quote_currency(t.instrument), "won": t.net_pnl > 0}
                   for t in chart.trades],
    }


def write_html_report(chart: Chart, rows: Sequence[tuple[str, str]], path: Path) -> None:
    """`rows`: the report's figures (report.summary_rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    data = json.dumps(page_data(chart), separators=(",", ":")).replace("</", "<\\/")
    path.write_text(_PAGE.replace("{{title}}", html.escape(chart.title)).replace("{{figures}}", figures)
                    .replace("{{data}}", data), encoding="utf-8")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222}
h1{font-size:18px;margin:0}#period{color:#666;margin:2px 0 12px}
.figures{border-collapse:collapse;margin-bottom:12px}.figures th{text-align:left;font-weight:normal;color:#555;padding:1px 16px 1px 0}
.figures td{font-variant-numeric:tabular-nums}
canvas{display:block;width:100%;border-top:1px solid #ddd;cursor:crosshair}
#readout{font:12px monospace;color:#333;min-height:16px;margin:6px 0}
#help{color:#777;font-size:12px}
table.trades{border-collapse:collapse;font-size:12px;margin-top:12px}
table.trades th,table.trades td{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}
table.trades tr:hover td{background:#f2f6fb;cursor:pointer}.won{color:#2a9d4b}.lost{color:#c0392b}
</style></head><body>
<h1>{{title}}</h1><div id="period"></div>
<table class="figures">{{figures}}</table>
<div id="help">Hover to read the values; drag across a chart to zoom the time axis; double-click to reset;
click a trade below to zoom to it.</div>
<div id="readout">&nbsp;</div>
<canvas id="price" height="300"></canvas><canvas id="equity" height="220"></canvas>
<canvas id="drawdown" height="120"></canvas>
<table class="trades"><thead><tr><th>#</th><th>direction</th><th>size</th><th>entry (UTC)</th><th>entry price</th>
<th>exit (UTC)</th><th>exit price</th><th>net PnL (the instrument's quote currency)</th></tr></thead><tbody id="rows"></tbody></table>
<script id="data" type="application/json">{{data}}</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
document.getElementById("period").textContent = D.period + "  (times in UTC)";
const money = v => v.toLocaleString("en-US", {maximumFractionDigits: 0});
const fixed = (v, n) => v.toLocaleString("en-US", {minimumFractionDigits: n, maximumFractionDigits: n});
const when = ms => new Date(ms).toISOString().replace("T", " ").slice(0, 19);
const all = [D.price, D.equity, D.drawdown].filter(s => s.length);
const full = [Math.min(...all.map(s => s[0][0])), Math.max(...all.map(s => s[s.length - 1][0]))];
let view = full.slice(), hover = null, drag = null;
const panels = [
  {id: "price", lines: [{s: D.price, c: "#444", w: 1, name: D.instrument + " mid"}], fmt: v => fixed(v, 3),
   unit: "", markers: true},
  {id: "equity", lines: [{s: D.equity, c: "#1f5fa8", w: 1.5, name: "equity"},
                         {s: D.hold, c: "#8a8a8a", w: 1, dash: [5, 4], name: "buy and hold"}],
   fmt: money, unit: " " + D.currency},
  {id: "drawdown", lines: [{s: D.drawdown, c: "#c0392b", w: 1, fill: true, name: "drawdown"}],
   fmt: v => fixed(v, 2), unit: " %"},
];
function at(series, t) {  // the last point at or before t
  let lo = 0, hi = series.length - 1;
  if (hi < 0 || t < series[0][0]) return null;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (series[mid][0] <= t) lo = mid; else hi = mid - 1; }
  return series[lo][1];
}
function draw(panel) {
  const canvas = document.getElementById(panel.id), ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.height / (canvas.dataset.ratio || 1);
  canvas.dataset.ratio = ratio; canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d"); g.setTransform(ratio, 0, 0, ratio, 0, 0); g.clearRect(0, 0, width, height);
  const left = 90, right = width - 10, top = 8, bottom = height - 20;
  const x = t => left + (t - view[0]) / (view[1] - view[0] || 1) * (right - left);
  let lo = Infinity, hi = -Infinity;
  for (const line of panel.lines) for (const [t, v] of line.s) if (t >= view[0] && t <= view[1]) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (panel.markers) for (const tr of D.trades) for (const [t, v] of [[tr.entry, tr.entryPrice], [tr.exit, tr.exitPrice]])
    if (t >= view[0] && t <= view[1]) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (panel.id === "drawdown") hi = Math.max(hi, 0);
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  const y = v => bottom - (v - lo) / (hi - lo) * (bottom - top);
  panel.x = x; panel.y = y; panel.left = left; panel.right = right;
  g.font = "11px sans-serif"; g.fillStyle = "#666"; g.strokeStyle = "#eee"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, yy = y(v);
    g.beginPath(); g.moveTo(left, yy); g.lineTo(right, yy); g.stroke();
    g.fillText(panel.fmt(v) + panel.unit, 4, yy + 4);
  }
  if (panel.id === "drawdown") for (let i = 0; i <= 4; i++) {
    const t = view[0] + (view[1] - view[0]) * i / 4;
    g.fillText(when(t).slice(0, 16), Math.min(x(t), right - 100), height - 4);
  }
  for (const line of panel.lines) {
    if (!line.s.length) continue;
    g.beginPath(); g.strokeStyle = line.c; g.lineWidth = line.w; g.setLineDash(line.dash || []);
    let started = false;
    for (const [t, v] of line.s) {
      if (t < view[0] || t > view[1]) continue;
      if (!started) { g.moveTo(x(t), y(v)); started = true; } else g.lineTo(x(t), y(v));
    }
    g.stroke(); g.setLineDash([]);
    if (line.fill && started) { g.lineTo(x(Math.min(view[1], line.s[line.s.length - 1][0])), y(0));
      g.lineTo(x(Math.max(view[0], line.s[0][0])), y(0)); g.fillStyle = "rgba(192,57,43,0.3)"; g.fill(); }
  }
  if (panel.markers) {
    const size = D.trades.length < 50 ? 5 : D.trades.length < 300 ? 3.5 : 2.5;
    for (const tr of D.trades) {
      if (tr.entry >= view[0] && tr.entry <= view[1]) {
        const cx = x(tr.entry), cy = y(tr.entryPrice), up = tr.direction === "long";
        g.beginPath(); g.fillStyle = up ? "#1f5fa8" : "#e67e22";
        g.moveTo(cx, cy + (up ? -size : size)); g.lineTo(cx - size, cy + (up ? size : -size));
        g.lineTo(cx + size, cy + (up ? size : -size)); g.fill();
      }
      if (tr.exit >= view[0] && tr.exit <= view[1]) {
        g.beginPath(); g.fillStyle = tr.won ? "#2a9d4b" : "#c0392b";
        g.arc(x(tr.exit), y(tr.exitPrice), size * 0.7, 0, 2 * Math.PI); g.fill();
      }
    }
  }
  let lx = left + 8;
  for (const line of panel.lines) if (line.s.length) {
    g.fillStyle = line.c; g.fillRect(lx, top + 4, 12, 3); g.fillStyle = "#333";
    g.fillText(line.name, lx + 16, top + 9); lx += g.measureText(line.name).width + 36;
  }
  if (drag && drag.to !== undefined) {
    g.fillStyle = "rgba(31,95,168,0.12)";
    g.fillRect(Math.min(drag.from, drag.to), top, Math.abs(drag.to - drag.from), bottom - top);
  }
  if (hover !== null && hover >= view[0] && hover <= view[1]) {
    g.strokeStyle = "#999"; g.beginPath(); g.moveTo(x(hover), top); g.lineTo(x(hover), bottom); g.stroke();
  }
}
function redraw() { panels.forEach(draw); }
function timeAt(panel, px) { return view[0] + (px - panel.left) / (panel.right - panel.left) * (view[1] - view[0]); }
function readout() {
  if (hover === null) return;
  const parts = [when(hover)];
  for (const p of panels) for (const line of p.lines) {
    const v = at(line.s, hover); if (v !== null) parts.push(line.name + " " + p.fmt(v) + p.unit);
  }
  document.getElementById("readout").textContent = parts.join("   ");
}
for (const panel of panels) {
  const canvas = document.getElementById(panel.id);
  canvas.addEventListener("mousemove", e => {
    const px = e.offsetX; hover = timeAt(panel, px);
    if (drag) drag.to = px;
    readout(); redraw();
  });
  canvas.addEventListener("mousedown", e => { drag = {panel, from: e.offsetX}; });
  canvas.addEventListener("mouseup", e => {
    if (drag && drag.to !== undefined && Math.abs(drag.to - drag.from) > 5) {
      const a = timeAt(panel, Math.min(drag.from, drag.to)), b = timeAt(panel, Math.max(drag.from, drag.to));
      view = [a, b];
    }
    drag = null; redraw();
  });
  canvas.addEventListener("mouseleave", () => { hover = null; drag = null; redraw(); });
  canvas.addEventListener("dblclick", () => { view = full.slice(); redraw(); });
}
const rows = document.getElementById("rows");
D.trades.forEach((tr, i) => {
  const row = document.createElement("tr");
  const cells = [i + 1, tr.direction, Number(tr.size).toLocaleString("en-US"), when(tr.entry), tr.entryText,
                 when(tr.exit), tr.exitText, Number(tr.net).toLocaleString("en-US", {maximumFractionDigits: 2}) + " " +
                 tr.currency];
  cells.forEach((c, j) => { const td = document.createElement("td"); td.textContent = c;
    if (j === 7) td.className = tr.won ? "won" : "lost"; row.appendChild(td); });
  row.addEventListener("click", () => {
    const span = Math.max(tr.exit - tr.entry, 60000); view = [tr.entry - span, tr.exit + span]; redraw();
    window.scrollTo({top: 0, behavior: "smooth"});
  });
  rows.appendChild(row);
});
window.addEventListener("resize", redraw);
redraw();
</script></body></html>
"""
