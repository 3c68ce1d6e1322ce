/* gitxp static report: renders the inlined JSON (no network, no server). */
"use strict";

(() => {
  const { h, clear, num, value, time, duration, badge, color, baseLayout, PLOT_CONFIG, plotText } = GX;
  const data = JSON.parse(document.getElementById("gitxp-data").textContent);
  const main = document.getElementById("main");
  document.getElementById("repo").textContent = data.repo;

  const runs = data.runs;
  const metrics = data.columns.metrics;
  const params = data.columns.params;
  const colorOf = new Map(runs.map((r, i) => [r.id, color(i)]));
  let sort = { key: null, desc: true };

  const table = h("table.runs");
  table.id = "runs-table";
  function get(r, key) {
    if (!key) return r.start_time;
    const [kind, ...rest] = key.split(".");
    return rest.length ? (r[kind] || {})[rest.join(".")] : r[kind];
  }
  function drawTable() {
    const rows = [...runs];
    if (sort.key) {
      rows.sort((a, b) => {
        const x = get(a, sort.key), y = get(b, sort.key);
        if (x === undefined || x === null) return 1;
        if (y === undefined || y === null) return -1;
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return sort.desc ? -c : c;
      });
    }
    const th = (label, key, cls) => h(`th.sortable${cls ? "." + cls : ""}`, { onclick: () => { sort = { key, desc: sort.key === key ? !sort.desc : true }; drawTable(); } },
      label, sort.key === key ? (sort.desc ? " ↓" : " ↑") : "");
    clear(table).append(
      h("thead", null, h("tr", null, h("th", null, ""), th("Status", "status"), th("Name", "name"), th("Experiment", "experiment"), th("Started", "start_time"), th("Duration", "duration"),
        metrics.map((m) => th(m, "metrics." + m, "metrics")), params.map((p) => th(p, "params." + p, "params")))),
      h("tbody", null, rows.map((r) => h("tr", null,
        h("td", null, h("span.swatch", { style: `background:${colorOf.get(r.id)}` })),
        h("td", null, badge(r.status)), h("td.name", { title: r.id }, r.name || r.id.slice(0, 12)), h("td.muted", null, r.experiment || ""),
        h("td.muted", null, time(r.start_time)), h("td.n.muted", null, duration(r.duration)),
        metrics.map((m) => h("td.n.metrics", null, num((r.metrics || {})[m]))),
        params.map((p) => h("td.n.params", null, value((r.params || {})[p])))))));
  }

  const charts = h("div.charts");
  const showLegend = false; // the swatches in the runs table are the legend
  for (const key of metrics) {
    const div = h("div.plot");
    const card = h("div.chart", { dataset: { key } }, h("div.chart-head", null, h("b", null, key)), div);
    charts.appendChild(card);
    const traces = runs.filter((r) => data.series[r.id] && data.series[r.id][key]).map((r) => {
      const s = data.series[r.id][key];
      const name = plotText(r.name || r.id.slice(0, 12));
      return { type: "scatter", mode: s.value.length === 1 ? "markers" : "lines", name, x: s.step, y: s.value,
        line: { width: 1.5, color: colorOf.get(r.id) }, marker: { color: colorOf.get(r.id) }, hovertemplate: `%{y:.5g}<extra>${name}</extra>` };
    });
    requestAnimationFrame(() => Plotly.newPlot(div, traces, baseLayout(null, { legend: showLegend, hovermode: traces.length > 1 ? "x" : "x unified" }), PLOT_CONFIG));
  }

  const numeric = params.filter((p) => runs.every((r) => r.params[p] === undefined || typeof r.params[p] === "number"));
  const par = h("div.plot.tall");
  if (numeric.length && metrics.length && runs.length > 1) {
    const m = metrics[0];
    const mv = runs.map((r) => (typeof (r.metrics || {})[m] === "number" ? r.metrics[m] : NaN));
    const dims = numeric.map((p) => ({ label: plotText(p), values: runs.map((r) => (typeof r.params[p] === "number" ? r.params[p] : NaN)) }));
    dims.push({ label: plotText(m), values: mv });
    requestAnimationFrame(() => Plotly.newPlot(par, [{ type: "parcoords", dimensions: dims, line: { color: mv, colorscale: "Viridis", showscale: true } }],
      Object.assign(baseLayout(null, {}), { margin: { l: 60, r: 60, t: 40, b: 20 } }), PLOT_CONFIG));
  }

  const subtitle = [`${runs.length} run${runs.length === 1 ? "" : "s"}`];
  if (data.truncated) subtitle.push(`(newest ${runs.length} of ${data.total.toLocaleString()})`);
  if (data.filter) subtitle.push(`filter: ${data.filter}`);
  subtitle.push(`generated ${data.generated}`);
  drawTable();
  GX.append(main, [
    h("div.runhead", null, h("div.title", null, h("h1", null, data.title)), h("div.facts", null, subtitle.map((s) => h("span.fact", null, s)))),
    h("section.card.wide", null, h("h3", null, "Runs"), h("div.tablewrap", null, table)),
    metrics.length ? h("section.card.wide", null, h("h3", null, "Metrics"), charts) : null,
    numeric.length && metrics.length && runs.length > 1 ? h("section.card.wide", null, h("h3", null, `Params against ${metrics[0]}`), par) : null]);
})();
