// The operators' dashboard: reads /api/stats every few seconds and draws it, charts as SVG.
// No libraries and nothing from the internet. Values are written with textContent only.
"use strict";

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "vssid-token";

function takeTokenFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
  }
}

function formatCount(value) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 2 });
}

function formatSeconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return (value * 1000).toFixed(value < 0.01 ? 1 : 0) + " ms";
  if (value < 120) return value.toFixed(1) + " s";
  return formatDuration(value);
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  seconds = Math.floor(seconds);
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + s + "s";
  return s + "s";
}

function lookup(doc, path) {
  return path.split(".").reduce((node, key) => (node == null ? undefined : node[key]), doc);
}

function show(element, value, format) {
  element.dataset.value = value === null || value === undefined ? "" : String(value);
  if (format === "duration") element.textContent = value ? formatDuration(value) : "–";
  else if (format === "seconds") element.textContent = formatSeconds(value);
  else if (typeof value === "number") element.textContent = formatCount(value);
  else element.textContent = value === null || value === undefined ? "–" : String(value);
}

function cell(row, value, options = {}) {
  const td = document.createElement(options.header ? "th" : "td");
  if (options.stat) td.dataset.stat = options.stat;
  if (options.className) td.className = options.className;
  show(td, value, options.format);
  row.appendChild(td);
  return td;
}

function svg(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function lineChart(times, series, windowSeconds, now) {
  const width = 520, height = 170, left = 40, right = 22, top = 8, bottom = 20;
  const plotW = width - left - right, plotH = height - top - bottom;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (t) => left + plotW * (1 - Math.min(Math.max((now - t) / windowSeconds, 0), 1));
  const y = (v) => top + plotH * (1 - v / max);
  for (const fraction of [0, 0.5, 1]) {
    svg("line", { x1: left, x2: width - right, y1: y(max * fraction), y2: y(max * fraction), class: "axis" }, chart);
    svg("text", { x: left - 4, y: y(max * fraction) + 4, "text-anchor": "end", class: "label" }, chart)
      .textContent = formatCount(max * fraction);
  }
  for (const minutesAgo of [15, 10, 5, 0]) {
    const label = svg("text", { x: x(now - minutesAgo * 60), y: height - 4, "text-anchor": "middle", class: "label" }, chart);
    label.textContent = minutesAgo ? `-${minutesAgo} min` : "now";
  }
  for (const s of series) {
    if (!times.length) continue;
    const points = times.map((t, i) => `${x(t).toFixed(1)},${y(s.values[i]).toFixed(1)}`);
    svg("polyline", { points: points.join(" "), class: s.className }, chart);
    const last = times.length - 1;
    svg("circle", { cx: x(times[last]).toFixed(1), cy: y(s.values[last]).toFixed(1), r: 3, class: "dot-" + s.className }, chart);
  }
  return chart;
}

function renderThroughput(doc) {
  const box = document.getElementById("throughput");
  const t = doc.throughput;
  box.replaceChildren();
  const names = Object.keys(t.peers);
  if (!names.length) {
    box.textContent = "No SMPP peer configured.";
    box.className = "charts empty";
    return;
  }
  box.className = "charts";
  for (const name of names) {
    const figure = document.createElement("div");
    figure.className = "chart";
    const title = document.createElement("h3");
    const totals = t.window_totals[name];
    title.textContent = `${name}: ${formatCount(totals.in)} in, ${formatCount(totals.out)} out`;
    figure.appendChild(title);
    figure.appendChild(lineChart(t.times, [
      { values: t.peers[name].in, className: "in" },
      { values: t.peers[name].out, className: "out" },
    ], 900, doc.now));
    box.appendChild(figure);
  }
}

function renderBinds(doc) {
  const body = document.querySelector("#binds tbody");
  body.replaceChildren();
  for (const peer of doc.smpp.peers) {
    const binds = peer.binds.length ? peer.binds : [null];
    binds.forEach((bind, index) => {
      const row = body.insertRow();
      cell(row, index ? "" : peer.name, { header: true });
      cell(row, index ? "" : peer.state, { className: index ? "" : "state-" + peer.state });
      if (index) cell(row, "");
      else cell(row, peer.binds.length, { stat: `smpp.${peer.name}.binds` });
      cell(row, bind ? bind.type : "–");
      cell(row, bind ? bind.address : "–");
      cell(row, bind ? bind.uptime_seconds : null, { format: "duration" });
      cell(row, bind && bind.window ? `${bind.window_in_use} / ${bind.window}` : "–");
    });
  }
}

function renderSms(doc) {
  const body = document.querySelector("#sms tbody");
  body.replaceChildren();
  const keys = ["received", "duplicates", "refused", "sent", "acknowledged", "failed", "expired", "deferred"];
  for (const [peer, counts] of Object.entries(doc.sms)) {
    const row = body.insertRow();
    cell(row, peer, { header: true });
    for (const key of keys) cell(row, counts[key], { stat: `sms.${peer}.${key}` });
  }
}

function renderBars(id, counts, statPrefix) {
  const box = document.getElementById(id);
  box.replaceChildren();
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  if (!entries.length) {
    const none = document.createElement("span");
    none.className = "empty";
    none.textContent = "none yet";
    box.appendChild(none);
    return;
  }
  const max = Math.max(...entries.map(([, value]) => value), 1);
  for (const [name, value] of entries) {
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * value / max).toFixed(1) + "%";
    track.appendChild(bar);
    const number = document.createElement("span");
    number.className = "value";
    number.dataset.stat = `${statPrefix}.${name}`;
    show(number, value);
    box.append(label, track, number);
  }
}

function chip(id, state, text) {
  const element = document.getElementById(id);
  element.className = "chip " + state;
  element.textContent = text;
}

function renderStatus(doc) {
  const smpp = doc.smpp;
  if (!smpp.enabled) chip("chip-smpp", "off", "SMPP off");
  else chip("chip-smpp", smpp.listening ? "ok" : "bad", smpp.listening ? "SMPP listening" : "SMPP down");
  const ivr = doc.ivr;
  if (!ivr.enabled) chip("chip-ami", "off", "IVR off");
  else chip("chip-ami", ivr.ami_up ? "ok" : "bad", ivr.ami_up ? "AMI up" : "AMI down");
  const db = doc.database.ok;
  chip("chip-db", db === null ? "" : db ? "ok" : "bad", db === null ? "Database ?" : db ? "Database up" : "Database down");
  document.getElementById("uptime").textContent = formatDuration(doc.uptime_seconds);
  document.getElementById("updated").textContent = new Date(doc.now * 1000).toLocaleTimeString();
}

function render(doc) {
  for (const element of document.querySelectorAll("[data-stat]")) {
    const value = lookup(doc, element.dataset.stat);
    if (value !== undefined) {
      const isLatency = element.dataset.stat.startsWith("latency.") && !element.dataset.stat.endsWith(".count");
      show(element, value, element.dataset.format || (isLatency ? "seconds" : undefined));
    }
  }
  renderStatus(doc);
  renderThroughput(doc);
  renderBinds(doc);
  renderSms(doc);
  renderBars("resets-outcome", doc.resets.by_outcome, "resets.by_outcome");
  renderBars("resets-carrier", doc.resets.by_carrier, "resets.by_carrier");
  renderBars("calls-outcome", doc.ivr.calls_by_outcome, "ivr.calls_by_outcome");
  document.body.dataset.loaded = "yes";
}

function problem(text) {
  const element = document.getElementById("problem");
  element.hidden = !text;
  element.textContent = text || "";
}

async function refresh() {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  try {
    const response = await fetch("/api/stats", { headers, cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => ({}));
      problem("Not allowed: " + (body.error || response.status));
      document.getElementById("login").hidden = response.status !== 401;
      return;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    document.getElementById("login").hidden = true;
    problem("");
    render(await response.json());
  } catch (error) {
    problem("The gateway does not answer (" + error.message + "); showing the last data.");
  }
}

function start() {
  takeTokenFromUrl();
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    refresh();
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", start);
