// Draws the panels of grafana/dashboard.json from what clima dev computes
// (GET /api/panels): the server runs the queries, transformations and field
// config; this file only draws, the way Grafana's panels look.
"use strict";

(function () {
  const board = JSON.parse(document.getElementById("board").textContent);
  const svgNS = "http://www.w3.org/2000/svg";
  const plots = {}; // time series panels: uPlot instance and kept points

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(svgNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function panelEl(id) {
    return document.getElementById("panel-" + id);
  }

  function showMessage(body, text) {
    body.replaceChildren(el("div", "panel-message", text));
  }

  function showError(section, error) {
    const badge = section.querySelector(".panel-error");
    badge.hidden = !error;
    badge.title = error || "";
  }

  // stat: one big value per field, coloured as colorMode says.
  function drawStat(body, view) {
    const wrap = el("div", "stat");
    const h = body.clientHeight, w = body.clientWidth / view.stat.values.length;
    const many = view.stat.values.length > 1;
    for (const v of view.stat.values) {
      const item = el("div", "stat-item");
      if (many && v.title) item.appendChild(el("div", "stat-title", v.title));
      const value = el("div", "stat-value", v.text);
      value.style.fontSize = Math.max(14, Math.min(h * (many ? 0.45 : 0.6), (w / Math.max(2, v.text.length)) * 1.6)) + "px";
      const mode = view.stat.colorMode;
      if (mode === "background" || mode === "background_solid") {
        item.style.background = v.color;
        value.style.color = "#fff";
      } else if (mode !== "none") {
        value.style.color = v.color;
      }
      item.appendChild(value);
      wrap.appendChild(item);
    }
    body.replaceChildren(wrap);
  }

  // A step for axis ticks: 1, 2 or 5 times a power of ten.
  function niceStep(max, ticks) {
    const raw = max / ticks;
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * pow) return m * pow;
    return 10 * pow;
  }

  // bar chart: vertical bars, the value above each (showValue auto), the
  // category below, the series in a legend under the chart.
  function drawBars(body, view) {
    const bars = view.bars;
    const wrap = el("div", "bars");
    const width = Math.max(0, body.clientWidth), height = Math.max(0, body.clientHeight - 22);
    const left = 48, bottom = 22, top = 16;
    const plotH = Math.max(1, height - bottom - top), plotW = Math.max(1, width - left - 8);
    let max = 0;
    for (const s of bars.series) for (const v of s.values) if (v.number > max) max = v.number;
    const step = niceStep(max || 1, 4);
    const top_ = Math.ceil((max || 1) / step) * step;
    const chart = svg("svg", { width: width, height: height });
    for (let t = 0; t <= top_ + step / 2; t += step) {
      const y = top + plotH - (t / top_) * plotH;
      chart.appendChild(svg("line", { class: "grid-line", x1: left, x2: left + plotW, y1: y, y2: y }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, String(t)));
    }
    const n = bars.categories.length, group = plotW / Math.max(1, n);
    const barW = (group * 0.7) / bars.series.length;
    bars.categories.forEach((cat, i) => {
      const x0 = left + i * group + group * 0.15;
      bars.series.forEach((s, j) => {
        const v = s.values[i];
        const g = svg("g", { class: "bar", "data-category": cat, "data-series": s.name });
        const num = Math.max(0, v.number || 0); // the axis starts at 0
        const bh = (num / top_) * plotH;
        const x = x0 + j * barW;
        g.appendChild(svg("rect", { x: x, y: top + plotH - bh, width: Math.max(1, barW * 0.97), height: bh, fill: s.color, "fill-opacity": 0.8, stroke: s.color }));
        g.appendChild(svg("text", { class: "bar-value", x: x + barW / 2, y: top + plotH - bh - 4, "text-anchor": "middle" }, v.text));
        chart.appendChild(g);
      });
      // Grafana shortens labels that would overlap their neighbours.
      const fits = Math.max(3, Math.floor(group / 7));
      const label = cat.length > fits ? cat.slice(0, fits - 1) + "…" : cat;
      const text = svg("text", { class: "bar-label", x: x0 + (group * 0.7) / 2, y: top + plotH + 16, "text-anchor": "middle" }, label);
      text.appendChild(svg("title", {}, cat));
      chart.appendChild(text);
    });
    wrap.appendChild(chart);
    const legend = el("div", "legend");
    for (const s of bars.series) {
      const item = el("span", "legend-item");
      const sw = el("span", "swatch");
      sw.style.background = s.color;
      item.append(sw, s.name);
      legend.appendChild(item);
    }
    wrap.appendChild(legend);
    body.replaceChildren(wrap);
  }

  function drawTable(body, view) {
    const t = view.table;
    const table = el("table");
    const head = el("tr");
    t.columns.forEach((c, i) => head.appendChild(el("th", t.numeric[i] ? "num" : "", c)));
    table.appendChild(el("thead")).appendChild(head);
    const tbody = table.appendChild(el("tbody"));
    for (const row of t.rows) {
      const tr = el("tr");
      row.forEach((cell, i) => tr.appendChild(el("td", t.numeric[i] ? "num" : "", cell)));
      tbody.appendChild(tr);
    }
    const wrap = el("div", "table-wrap");
    wrap.appendChild(table);
    body.replaceChildren(wrap);
  }

  function unitText(v, unit) {
    if (v == null) return "";
    let s = v, i = 0;
    const steps = unit === "ops" ? ["", "K", "M", "B"] : ["", " K", " Mil", " Bil"];
    if (unit === "ops" || unit === "short") {
      while (Math.abs(s) >= 1000 && i < steps.length - 1) { s /= 1000; i++; }
    }
    const n = Number.isInteger(s) ? String(s) : s.toFixed(Math.abs(s) >= 10 ? 1 : 2);
    return n + steps[i] + (unit === "ops" ? " ops" : unit && unit !== "none" && unit !== "short" ? " " + unit : "");
  }

  // time series: uPlot, as Grafana; streaming series keep their last
  // `capacity` points, as the plugin's frontend does.
  function drawSeries(section, body, view) {
    const id = view.id;
    let p = plots[id];
    const names = view.series.map((s) => s.name).join("|");
    if (!p || p.names !== names) {
      forgetPlot(id);
      body.replaceChildren();
      const opts = {
        width: body.clientWidth, height: body.clientHeight - 30,
        legend: { show: true, live: false },
        cursor: { show: true },
        axes: [
          { stroke: "#ccccdc", grid: { stroke: "#2c3235" }, ticks: { stroke: "#2c3235" }, space: 90,
            values: (u, vals) => vals.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour12: false })) },
          { stroke: "#ccccdc", grid: { stroke: "#2c3235" }, ticks: { stroke: "#2c3235" }, size: 80,
            values: (u, vals) => vals.map((v) => unitText(v, view.series[0].unit)) },
        ],
        series: [{}].concat(view.series.map((s) => ({
          label: s.name, stroke: s.color, width: 1, fill: /^#[0-9a-f]{6}$/i.test(s.color) ? s.color + "1a" : undefined,
          value: (u, v) => unitText(v, s.unit),
        }))),
      };
      p = plots[id] = { names: names, times: [], values: view.series.map(() => []), plot: null };
      p.plot = new uPlot(opts, [[]].concat(view.series.map(() => [])), body);
    }
    // The series of one reply share its arrival time (series 0's), and
    // all keep the smallest capacity, so that x and y stay aligned.
    const streaming = view.series.every((s) => s.streaming);
    if (streaming) {
      const cap = Math.min(...view.series.map((s) => s.capacity));
      p.times.push(view.series[0].times[0] / 1000);
      view.series.forEach((s, i) => p.values[i].push(s.values[0]));
      const extra = p.times.length - cap;
      if (extra > 0) {
        p.times.splice(0, extra);
        for (const vs of p.values) vs.splice(0, extra);
      }
    } else {
      p.times = view.series[0].times.map((t) => t / 1000);
      p.values = view.series.map((s) => s.values.slice());
    }
    p.plot.setData([p.times].concat(p.values));
  }

  function forgetPlot(id) {
    if (plots[id]) {
      plots[id].plot.destroy();
      delete plots[id];
    }
  }

  function draw(view) {
    const section = panelEl(view.id);
    if (!section) return;
    const body = section.querySelector(".panel-body");
    showError(section, view.error);
    if (view.unsupported && view.unsupported.length) return; // the page says so already
    if (view.error || view.message) {
      forgetPlot(view.id);
      return showMessage(body, view.error ? "No data" : view.message);
    }
    switch (view.type) {
      case "stat": return drawStat(body, view);
      case "barchart": return drawBars(body, view);
      case "table": return drawTable(body, view);
      case "timeseries": return drawSeries(section, body, view);
    }
  }

  async function refreshAll() {
    try {
      const resp = await fetch("/api/panels", { cache: "no-store" });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.error || resp.statusText);
      for (const view of data.panels) {
        const section = panelEl(view.id);
        // streaming panels draw on their own timer
        if (section && section.dataset.streamMs && plots[view.id]) continue;
        draw(view);
      }
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      document.getElementById("updated").textContent = "clima dev does not answer (" + e.message + ")";
    }
  }

  // A streaming panel asks again only once its last answer is drawn, so
  // points arrive in order.
  async function streamPanel(id, ms) {
    try {
      const resp = await fetch("/api/panels/" + id, { cache: "no-store" });
      if (resp.ok) draw(await resp.json());
    } catch (e) {
      // the next turn tries again; the header says when clima dev is gone
    }
    setTimeout(() => streamPanel(id, ms), ms);
  }

  async function refreshLoop() {
    await refreshAll();
    if (board.refreshMs > 0) setTimeout(refreshLoop, board.refreshMs);
  }

  refreshLoop();
  for (const section of document.querySelectorAll(".panel[data-stream-ms]")) {
    const ms = Number(section.dataset.streamMs);
    setTimeout(() => streamPanel(section.dataset.panelId, ms), ms);
  }
})();
