/* gitxp web UI: runs table, run page, compare view. Read-only; talks to /api/. */
"use strict";

(() => {
  const { h, clear, num, value, time, ago, duration, bytes, badge, markdown, color,
    baseLayout, PLOT_CONFIG, lineTrace, plotText } = GX;
  const main = document.getElementById("main");
  const crumbs = document.getElementById("crumbs");
  let timers = [];
  let routeToken = 0;

  // -- plumbing ------------------------------------------------------------
  /* Polls are conditional: the server tags each answer with an ETag, a poll sends it back
     (If-None-Match), and an unchanged answer is an empty 304. */
  const UNCHANGED = Symbol("unchanged");
  const validators = new Map(); // url -> [etag, body] of the last answer a poll had

  async function api(path, params, opts) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else q.set(k, v);
    }
    const url = `/api/${path}${q.toString() ? "?" + q : ""}`;
    const poll = opts && opts.poll;
    const known = poll ? validators.get(url) : null;
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store",
      headers: known ? { "If-None-Match": known[0] } : {} });
    if (res.status === 304 && known) return opts.ifChanged ? UNCHANGED : known[1];
    const type = res.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await res.json() : await res.text();
    if (!res.ok) throw new Error(body && body.error ? body.error : `HTTP ${res.status}`);
    const etag = res.headers.get("ETag");
    if (poll && etag) {
      if (validators.size > 50) validators.clear();
      validators.set(url, [etag, body]);
    }
    return body;
  }

  /* plotly.js (4.6 MB) is loaded only when a page draws charts, so the runs table opens first. */
  let plotlyLoading = null;
  function ensurePlotly() {
    if (window.Plotly) return Promise.resolve();
    if (!plotlyLoading) {
      plotlyLoading = new Promise((resolve, reject) => {
        const s = h("script", { src: "/vendor/plotly.min.js" });
        s.addEventListener("load", () => resolve());
        s.addEventListener("error", () => { plotlyLoading = null; reject(new Error("could not load plotly.js")); });
        document.head.appendChild(s);
      });
    }
    return plotlyLoading;
  }

  function every(ms, fn) { timers.push(setInterval(fn, ms)); }
  let cleanups = [];
  function stopTimers() {
    timers.forEach(clearInterval); timers = [];
    cleanups.forEach((f) => f()); cleanups = [];
    lazyObserver.disconnect();
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const [path, query] = raw.split("?");
    return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), q: new URLSearchParams(query || "") };
  }

  function setQuery(q) {
    const { parts } = parseHash();
    const path = "/" + parts.map(encodeURIComponent).join("/");
    const text = q.toString();
    history.replaceState(null, "", "#" + path + (text ? "?" + text : ""));
  }

  function setCrumbs(...items) {
    clear(crumbs);
    items.forEach((it, i) => {
      if (i) crumbs.appendChild(h("span.sep", null, "/"));
      crumbs.appendChild(typeof it === "string" ? h("span", null, it) : it);
    });
  }

  function errorBox(err) {
    return h("div.error", null, String(err && err.message ? err.message : err));
  }

  function store(key, val) {
    try {
      if (val === undefined) return JSON.parse(localStorage.getItem("gitxp." + key) || "null");
      localStorage.setItem("gitxp." + key, JSON.stringify(val));
    } catch (e) { return null; }
    return val;
  }

  async function route() {
    stopTimers();
    const token = ++routeToken;
    const { parts, q } = parseHash();
    window.scrollTo(0, 0);
    try {
      if (parts[0] === "run" && parts[1]) await runPage(parts[1], q, token);
      else if (parts[0] === "models") await modelsPage(parts[1], token);
      else if (parts[0] === "compare" && parts[1]) await comparePage(parts[1].split(","), q, token);
      else await runsPage(q, token);
    } catch (err) {
      if (token === routeToken) { clear(main).appendChild(errorBox(err)); }
    }
  }

  // -- runs table ------------------------------------------------------------
  const selected = new Set(store("selected") || []);

  async function runsPage(q, token) {
    setCrumbs(h("span", null, "Runs"));
    const state = {
      experiment: q.get("experiment") || "",
      filter: q.get("filter") || "",
      sort: q.get("sort") || "start_time",
      order: q.get("order") || "desc",
      page: Math.max(0, parseInt(q.get("page") || "0", 10) || 0),
      size: parseInt(store("pageSize") || "100", 10),
    };
    const experiments = await api("experiments");
    if (token !== routeToken) return;

    const expSelect = h("select", { title: "Experiment", onchange: () => { state.experiment = expSelect.value; state.page = 0; load(); } },
      h("option", { value: "" }, `All experiments (${experiments.reduce((a, e) => a + e.runs, 0).toLocaleString()})`),
      experiments.map((e) => h("option", { value: e.name, selected: e.name === state.experiment }, `${e.name} (${e.runs.toLocaleString()})`)));
    expSelect.id = "exp";
    const filterInput = h("input.filter", { type: "search", placeholder: "Filter: params.lr > 0.01 and metrics.acc >= 0.9 or tags.best = 'yes'", value: state.filter, spellcheck: "false" });
    filterInput.id = "filter";
    filterInput.title = "Filter runs (press / to focus, Enter to apply)";
    filterInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { state.filter = filterInput.value.trim(); state.page = 0; load(); } });
    const filterError = h("div.filter-error");
    const compareBtn = h("button.primary", { onclick: () => { if (selected.size >= 2) location.hash = "#/compare/" + [...selected].map(encodeURIComponent).join(","); } });
    compareBtn.id = "compare";
    const clearBtn = h("button", { onclick: () => { selected.clear(); persistSel(); load(); } }, "Clear selection");
    const columnsBtn = h("button", { onclick: (e) => { e.stopPropagation(); chooser.classList.toggle("open"); } }, "Columns ▾");
    const chooser = h("div.chooser");
    chooser.addEventListener("click", (e) => e.stopPropagation());
    const closeChooser = () => chooser.classList.remove("open");
    document.addEventListener("click", closeChooser);
    cleanups.push(() => document.removeEventListener("click", closeChooser));
    const summary = h("div.summary");
    const table = h("table.runs");
    table.id = "runs-table";
    const pager = h("div.pager");
    const live = h("span.live", { title: "Runs in progress refresh every few seconds" });

    clear(main).append(
      h("div.toolbar", null, expSelect, h("div.filterwrap", null, filterInput, filterError),
        h("div.chooserwrap", null, columnsBtn, chooser), compareBtn, clearBtn),
      h("div.subbar", null, summary, live, h("span.spacer"), pager),
      h("div.tablewrap", null, table));

    function persistSel() { store("selected", [...selected]); updateCompare(); }
    function updateCompare() {
      compareBtn.textContent = `Compare (${selected.size})`;
      compareBtn.disabled = selected.size < 2;
      clearBtn.disabled = selected.size === 0;
    }
    updateCompare();

    let lastData = null;

    function columnsFor(data) {
      const key = "columns." + (state.experiment || "*");
      let chosen = store(key);
      const all = [
        ...data.columns.metrics.map((k) => "metrics." + k),
        ...data.columns.params.map((k) => "params." + k),
        ...data.columns.tags.map((k) => "tags." + k),
      ];
      if (!chosen) {
        chosen = [...data.columns.metrics.slice(0, 8).map((k) => "metrics." + k),
          ...data.columns.params.slice(0, 8).map((k) => "params." + k)];
      }
      return { all, shown: chosen.filter((c) => all.includes(c)), key, chosen };
    }

    function renderChooser(cols) {
      clear(chooser);
      const groups = { metrics: "Metrics", params: "Params", tags: "Tags" };
      for (const [prefix, label] of Object.entries(groups)) {
        const items = cols.all.filter((c) => c.startsWith(prefix + "."));
        if (!items.length) continue;
        chooser.appendChild(h("div.group", null, label));
        for (const c of items) {
          const box = h("input", { type: "checkbox", checked: cols.shown.includes(c), onchange: () => {
            const next = box.checked ? [...cols.shown, c] : cols.shown.filter((x) => x !== c);
            store(cols.key, next);
            render(lastData);
          } });
          chooser.appendChild(h("label", null, box, c.slice(prefix.length + 1)));
        }
      }
      if (!cols.all.length) chooser.appendChild(h("div.muted", null, "No params, metrics or tags yet"));
    }

    function header(label, sortKey, cls) {
      const active = state.sort === sortKey;
      const arrow = active ? (state.order === "desc" ? " ↓" : " ↑") : "";
      return h(`th${cls ? "." + cls : ""}`, {
        class: (cls || "") + (sortKey ? " sortable" : "") + (active ? " sorted" : ""),
        title: sortKey ? `Sort by ${sortKey}` : null,
        onclick: sortKey ? () => {
          if (state.sort === sortKey) state.order = state.order === "desc" ? "asc" : "desc";
          else { state.sort = sortKey; state.order = sortKey.startsWith("metrics.") || sortKey === "start_time" ? "desc" : "asc"; }
          state.page = 0; load();
        } : null,
      }, label, arrow);
    }

    function render(data) {
      lastData = data;
      const cols = columnsFor(data);
      renderChooser(cols);
      clear(table);
      const pageIds = data.rows.map((r) => r.id);
      const allBox = h("input", { type: "checkbox", title: "Select this page",
        checked: pageIds.length > 0 && pageIds.every((id) => selected.has(id)),
        onchange: () => { pageIds.forEach((id) => (allBox.checked ? selected.add(id) : selected.delete(id))); persistSel(); render(lastData); } });
      const head = h("tr", null, h("th.check", null, allBox), header("Status", "status"), header("Name", "name"),
        header("Experiment", "experiment"), header("Started", "start_time"), header("Duration", "duration"),
        cols.shown.map((c) => header(c.replace(/^(metrics|params|tags)\./, ""), c, c.split(".")[0])));
      const groupRow = h("tr.groups", null, h("th", { colspan: 6 }),
        cols.shown.map((c) => h(`th.${c.split(".")[0]}`, null, c.split(".")[0])));
      table.appendChild(h("thead", null, groupRow, head));
      const body = h("tbody");
      for (const r of data.rows) {
        const box = h("input", { type: "checkbox", checked: selected.has(r.id), onchange: () => {
          box.checked ? selected.add(r.id) : selected.delete(r.id); persistSel(); tr.classList.toggle("sel", box.checked); } });
        const cells = cols.shown.map((c) => {
          const [kind, ...rest] = c.split(".");
          const v = (r[kind] || {})[rest.join(".")];
          const cut = (r.truncated || []).includes(c) ? " (cut short here; the run page has the whole value)" : "";
          const shown = kind === "metrics" ? num(v) : value(v);
          return h(`td.${kind}${kind === "tags" ? "" : ".n"}`, { title: v === undefined ? null : shown + cut }, v === undefined ? "" : shown);
        });
        const tr = h("tr", { class: selected.has(r.id) ? "sel" : null, dataset: { id: r.id } },
          h("td.check", null, box),
          h("td", null, badge(r.status)),
          h("td.name", null, h("a", { href: `#/run/${encodeURIComponent(r.id)}`, title: r.id }, r.name || r.id.slice(0, 12)),
            r.dirty ? h("span.dirty", { title: "ran on uncommitted changes (snapshot recorded)" }, "±") : null),
          h("td.muted", null, r.experiment || ""),
          h("td.muted", { title: time(r.start_time) }, ago(r.start_time)),
          h("td.n.muted", null, duration(r.duration)),
          cells);
        body.appendChild(tr);
      }
      table.appendChild(body);
      if (!data.rows.length) {
        table.appendChild(h("tbody", null, h("tr", null, h("td.empty", { colspan: 6 + cols.shown.length },
          state.filter || state.experiment ? "No runs match." : "No runs yet. Record one with gitxp.start_run() or `gitxp run -- python train.py`."))));
      }
      const first = data.total ? data.offset + 1 : 0;
      const lastIdx = Math.min(data.offset + data.rows.length, data.total);
      GX.append(clear(summary), [
        h("b", null, data.total.toLocaleString()), data.total === 1 ? " run" : " runs",
        ...Object.entries(data.status).map(([s, n]) => h("span.stat", null, badge(s), " ", n.toLocaleString())),
        Object.keys(data.broken || {}).length ? h("span.warn", { title: Object.entries(data.broken).map(([r, why]) => `${r}: ${why}`).join("\n") },
          `⚠ ${GX.count(Object.keys(data.broken).length, "unreadable run ref")} skipped`) : null]);
      const pages = Math.max(1, Math.ceil(data.total / state.size));
      const sizeSel = h("select", { title: "Rows per page", onchange: () => { state.size = parseInt(sizeSel.value, 10); store("pageSize", state.size); state.page = 0; load(); } },
        [50, 100, 250, 500].map((n) => h("option", { value: n, selected: n === state.size }, `${n} / page`)));
      clear(pager).append(
        `${first.toLocaleString()}–${lastIdx.toLocaleString()} of ${data.total.toLocaleString()}`,
        h("button", { disabled: state.page === 0, onclick: () => { state.page--; load(); }, title: "Previous page" }, "‹"),
        h("span.muted", null, `page ${state.page + 1} / ${pages}`),
        h("button", { disabled: state.page >= pages - 1, onclick: () => { state.page++; load(); }, title: "Next page" }, "›"),
        sizeSel);
      const running = data.rows.some((r) => r.status === "RUNNING");
      live.textContent = running ? "● live" : "";
    }

    async function load(quiet) {
      const qs = new URLSearchParams();
      if (state.experiment) qs.set("experiment", state.experiment);
      if (state.filter) qs.set("filter", state.filter);
      if (state.sort !== "start_time") qs.set("sort", state.sort);
      if (state.order !== "desc") qs.set("order", state.order);
      if (state.page) qs.set("page", state.page);
      setQuery(qs);
      try {
        const data = await api("runs", { experiment: state.experiment, filter: state.filter, sort: state.sort,
          order: state.order, offset: state.page * state.size, limit: state.size }, { poll: true, ifChanged: quiet });
        if (token !== routeToken || data === UNCHANGED) return; // a poll that found nothing new
        filterError.textContent = "";
        filterInput.classList.remove("bad");
        render(data);
      } catch (err) {
        if (quiet) return;
        filterError.textContent = err.message;
        filterInput.classList.add("bad");
      }
    }
    const slash = (e) => {
      if (e.key === "/" && document.activeElement.tagName !== "INPUT") { e.preventDefault(); filterInput.focus(); }
    };
    document.addEventListener("keydown", slash);
    cleanups.push(() => document.removeEventListener("keydown", slash));
    await load();
    setTimeout(() => ensurePlotly().catch(() => {}), 300); // warm the cache for the chart pages
    // Live: re-read the page every 4 s while a run on it is running, else every 16 s (new
    // runs appear); never while the tab is hidden. Cheap: served from the listing cache.
    let ticks = 0;
    every(4000, () => {
      if (document.hidden || !lastData) return;
      ticks++;
      if (lastData.rows.some((r) => r.status === "RUNNING") || ticks % 4 === 0) load(true);
    });
  }

  // -- one run -------------------------------------------------------------------
  const TABS = ["overview", "charts", "code", "artifacts", "environment", "log"];

  async function runPage(ref, q, token) {
    const run = await api("run", { run: ref });
    if (token !== routeToken) return;
    document.title = `${run.name} · gitxp`;
    setCrumbs(h("a", { href: "#/" }, "Runs"), h("a", { href: `#/?experiment=${encodeURIComponent(run.experiment)}` }, run.experiment || "default"), h("span", null, run.name));
    const tab = TABS.includes(q.get("tab")) ? q.get("tab") : "overview";
    const head = runHeader(run);
    const tabs = h("div.tabs", null, TABS.map((t) => h("a", { class: t === tab ? "active" : null, href: `#/run/${encodeURIComponent(run.id)}?tab=${t}` },
      t[0].toUpperCase() + t.slice(1),
      t === "charts" ? h("span.count", null, Object.keys(run.summary).length) : null,
      t === "artifacts" ? h("span.count", null, run.artifacts.length) : null)));
    const body = h("div.tabbody");
    clear(main).append(head, tabs, body);
    if (tab === "overview") overview(run, body);
    else if (tab === "charts") await runCharts(run, body, q, token);
    else if (tab === "code") await codeTab(run, body, q, token);
    else if (tab === "artifacts") artifactsTab(run, body);
    else if (tab === "environment") envTab(run, body);
    else logTab(run, body);
    if (run.status === "RUNNING" && tab !== "charts") every(5000, async () => {
      const fresh = await api("head", { run: run.id });
      if (fresh.commit !== run.commit && token === routeToken) route();
    });
  }

  function runHeader(run) {
    const facts = [
      ["id", h("span.mono", null, run.id)],
      ["started", `${time(run.start_time)} (${ago(run.start_time)})`],
      ["duration", duration(run.end_time && run.start_time ? (run.end_time - run.start_time) / 1000 : null) || "—"],
      ["by", `${run.user || "?"} on ${run.host || "?"}`],
      ["code", h("a.mono", { href: `#/run/${encodeURIComponent(run.id)}?tab=code` }, (run.code_commit || "").slice(0, 12), run.dirty ? " (snapshot)" : "")],
    ];
    return h("div.runhead", null,
      h("div.title", null, badge(run.status), h("h1", null, run.name || run.id), h("span.exp", null, run.experiment)),
      h("div.facts", null, facts.map(([k, v]) => h("span.fact", null, h("span.k", null, k), v))),
      run.error ? h("div.error", null, run.error) : null);
  }

  function kvTable(obj, cls) {
    const keys = Object.keys(obj || {});
    if (!keys.length) return h("p.muted", null, "None");
    return h(`table.kv${cls ? "." + cls : ""}`, null, h("tbody", null, keys.map((k) => h("tr", null, h("th", null, k), h("td", null, value(obj[k]))))));
  }

  function overview(run, body) {
    const metrics = Object.entries(run.summary || {});
    const mtable = metrics.length ? h("table.grid", null,
      h("thead", null, h("tr", null, ["metric", "last", "step", "min", "max", "points"].map((c) => h(c === "metric" ? "th" : "th.n", null, c)))),
      h("tbody", null, metrics.map(([k, s]) => h("tr", null, h("td", null, h("a", { href: `#/run/${encodeURIComponent(run.id)}?tab=charts&key=${encodeURIComponent(k)}` }, k)),
        h("td.n", null, num(s.last)), h("td.n", null, num(s.step)), h("td.n", null, num(s.min)), h("td.n", null, num(s.max)), h("td.n", null, num(s.count))))))
      : h("p.muted", null, "No metrics logged");
    const cmd = run.command && run.command.argv ? h("pre.cmd", null, run.command.argv.join(" ")) : null;
    body.append(h("div.cols", null,
      h("section.card", null, h("h3", null, "Params ", h("span.count", null, Object.keys(run.params).length)), kvTable(run.params, "params")),
      h("section.card", null, h("h3", null, "Metrics"), mtable),
      h("section.card", null, h("h3", null, "Tags"), kvTable(run.tags),
        cmd ? [h("h3", null, "Command"), cmd] : null),
      registeredCard(run),
      h("section.card.wide", { id: "notes" }, h("h3", null, "Notes"), run.notes ? markdown(run.notes) : h("p.muted", null, "No notes"))));
  }

  // -- the model registry ----------------------------------------------------------
  function stages(list) { return (list || []).map((s) => h("span.stage", null, s)); }
  function modelLink(name, label) { return h("a", { href: `#/models/${encodeURIComponent(name)}` }, label || name); }

  /* The model versions registered from this run (a card on its overview). */
  function registeredCard(run) {
    const versions = run.models || [];
    if (!versions.length) return null;
    return h("section.card", { id: "registered" }, h("h3", null, "Registered as ", h("span.count", null, versions.length)),
      h("table.grid", null, h("tbody", null, versions.map((v) => h(`tr${v.active ? "" : ".inactive"}`, null,
        h("td", null, modelLink(v.model, `${v.model}@${v.version}`)),
        h("td", null, stages(v.stages), v.deprecated ? h("span.muted", null, " deprecated") : null),
        h("td.muted", null, time(v.created_at * 1000)))))));
  }

  async function modelsPage(only, token) {
    const data = await api("models");
    if (token !== routeToken) return;
    document.title = "Models · gitxp";
    if (only) setCrumbs(h("a", { href: "#/" }, "Runs"), h("a", { href: "#/models" }, "Models"), h("span", null, only));
    else setCrumbs(h("a", { href: "#/" }, "Runs"), h("span", null, "Models"));
    const models = only ? data.models.filter((m) => m.name === only) : data.models;
    const page = h("div.pad", { id: "models" });
    clear(main).appendChild(page);
    if (!models.length) {
      page.appendChild(h("p.muted", null, only ? `No model named ${only}.` : "No registered models yet: `gitxp model register RUN NAME` registers one."));
      return;
    }
    if (data.total > data.models.length) page.appendChild(h("p.muted", null, `${data.models.length} of ${data.total} models shown`));
    for (const m of models) page.appendChild(modelCard(m));
  }

  function modelCard(m) {
    const metricKeys = [...new Set(m.versions.flatMap((v) => Object.keys(v.metrics || {})))].slice(0, 6);
    const head = ["version", "stages", "run", "status", ...metricKeys, "registered", "by"];
    return h("section.card.wide.model-card", { dataset: { model: m.name } },
      h("h2", null, modelLink(m.name), m.deprecated ? h("span.muted", null, " (deprecated)") : null),
      h("p.muted", null, `latest ${m.latest || "—"}`, Object.keys(m.stages).length ? " · stages: " : "",
        Object.entries(m.stages).map(([s, v]) => h("span.stage", null, `${s}: ${v}`))),
      h("table.grid.versions", null,
        h("thead", null, h("tr", null, head.map((c) => h("th", null, c)))),
        h("tbody", null, m.versions.map((v) => h(`tr${v.active ? "" : ".inactive"}`, { dataset: { version: v.version } },
          h("td.mono", null, v.version, v.registered ? null : h("span.muted", null, " (stage only)")),
          h("td", null, stages(v.stages)),
          h("td", null, v.run_id ? h("a.run", { href: `#/run/${encodeURIComponent(v.run_id)}` }, v.run_name || v.run_id.slice(0, 12)) : h("span.muted", null, (v.commit || "").slice(0, 12)),
            v.removed ? h("span.muted", null, " (removed)") : null),
          h("td", null, v.status ? badge(v.status) : "—"),
          metricKeys.map((k) => h("td.n", null, k in (v.metrics || {}) ? num(v.metrics[k]) : "—")),
          h("td.muted", null, time(v.created_at * 1000)),
          h("td.muted", { title: v.message || "" }, v.author || ""))))),
      m.more_versions ? h("p.muted", null, `${m.more_versions} older versions not shown`) : null);
  }

  /* Metric keys ordered by their prefix ("train/loss" -> "train"), TensorBoard-style. */
  function grouped(keys) {
    const group = (k) => (k.includes("/") ? k.slice(0, k.indexOf("/")) : "");
    const sorted = [...keys].sort((a, b) => group(a).localeCompare(group(b)) || a.localeCompare(b));
    const many = new Set(sorted.map(group)).size > 1;
    return sorted.map((k, i) => ({ key: k, head: many && (i === 0 || group(sorted[i - 1]) !== group(k)) ? group(k) || "other" : null }));
  }

  /* Run fn once the element comes near the viewport: pages with 100 metrics stay quick. */
  const lazyObserver = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      lazyObserver.unobserve(e.target);
      const fn = e.target.__draw;
      delete e.target.__draw;
      if (fn) fn();
    }
  }, { rootMargin: "300px" });
  function lazy(el, fn) { el.__draw = fn; lazyObserver.observe(el); }

  /* Charts that fetch downsampled series and refetch finer data when zoomed. */
  function seriesChart(target, specs, opts) {
    // specs: [{run, key, name, color}]
    const div = h("div.plot");
    target.appendChild(div);
    let range = null;
    let busy = false;
    const info = opts.info;
    async function draw() {
      busy = true;
      // relative time is seconds since each run's start: the server filters absolute ms
      const rel = opts.xaxis === "relative";
      const bound = (v, s) => (v === null || v === undefined ? null : rel ? v * 1000 + (s.start || 0) : v);
      const xaxis = opts.xaxis === "step" ? "step" : "timestamp";
      // several runs of one metric come in one bulk read, unless a zoom on relative time
      // needs a range of its own per run
      const together = specs.length > 1 && specs.every((s) => s.key === specs[0].key) && !(range && rel);
      const answers = together
        ? await api("series_many", { runs: specs.map((s) => s.run).join(","), key: specs[0].key, xaxis,
          lo: range ? range[0] : null, hi: range ? range[1] : null, points: opts.points || 2000 })
          .then((a) => { const byRun = new Map(a.series.map((x) => [x.run, x])); return specs.map((s) => byRun.get(s.run) || null); })
          .catch(() => specs.map(() => null))
        : await Promise.all(specs.map((s) => api("series", { run: s.run, key: s.key, xaxis,
          lo: range ? bound(range[0], s) : null, hi: range ? bound(range[1], s) : null, points: opts.points || 2000 }).catch(() => null)));
      const traces = [];
      let total = 0, shown = 0, nonfinite = 0;
      answers.forEach((a, i) => {
        if (!a) return;
        total += a.total; shown += a.value.length; nonfinite += a.nonfinite;
        if (opts.smoothing && a.value.length > 1) {
          // the raw curve stays faintly behind the smoothed one
          traces.push({ ...lineTrace(a, { xaxis: opts.xaxis, start: specs[i].start, name: specs[i].name, color: specs[i].color }), opacity: 0.2, showlegend: false, hoverinfo: "skip", hovertemplate: undefined });
        }
        traces.push(lineTrace(a, { xaxis: opts.xaxis, start: specs[i].start, name: specs[i].name, color: specs[i].color, smoothing: opts.smoothing }));
      });
      const layout = baseLayout(opts.title, { logy: opts.logy, legend: opts.legend, xtype: opts.xaxis === "timestamp" ? "date" : "linear", xtitle: opts.xaxis === "relative" ? "seconds since start" : null,
        hovermode: specs.length > 1 ? "x" : "x unified", uirevision: opts.title });
      if (range) layout.xaxis.range = opts.xaxis === "timestamp" ? range.map((t) => new Date(t)) : range;
      await Plotly.react(div, traces, layout, PLOT_CONFIG);
      div.dataset.points = String(shown);
      div.dataset.total = String(total);
      if (info) info.textContent = total > shown ? `${shown.toLocaleString()} of ${total.toLocaleString()} points${range ? " in view" : ""}` : `${total.toLocaleString()} points`;
      if (info && nonfinite) info.textContent += ` · ${nonfinite} NaN/inf not drawn`;
      busy = false;
    }
    draw().then(() => {
      div.on("plotly_relayout", (ev) => {
        if (busy) return;
        let next = range;
        if (ev["xaxis.autorange"]) next = null;
        else if (ev["xaxis.range[0]"] !== undefined) next = [ev["xaxis.range[0]"], ev["xaxis.range[1]"]];
        else if (ev["xaxis.range"]) next = ev["xaxis.range"];
        else return;
        if (next && opts.xaxis === "timestamp") next = next.map((t) => new Date(t).getTime());
        if (JSON.stringify(next) === JSON.stringify(range)) return;
        range = next;
        draw();
      });
    });
    return { div, redraw: draw };
  }

  function chartControls(q, onchange) {
    const state = { xaxis: ["step", "relative", "timestamp"].includes(store("xaxis")) ? store("xaxis") : "step", smoothing: parseFloat(store("smoothing") || 0) || 0, logy: !!store("logy"), search: "" };
    const xs = h("select", { title: "x axis", onchange: () => { state.xaxis = xs.value; store("xaxis", state.xaxis); onchange(state); } },
      h("option", { value: "step", selected: state.xaxis === "step" }, "x: step"),
      h("option", { value: "relative", selected: state.xaxis === "relative" }, "x: relative time"),
      h("option", { value: "timestamp", selected: state.xaxis === "timestamp" }, "x: wall time"));
    const sm = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: state.smoothing, title: "EMA smoothing" });
    const smv = h("span.mono.muted", null, state.smoothing.toFixed(2));
    sm.addEventListener("input", () => { smv.textContent = parseFloat(sm.value).toFixed(2); });
    sm.addEventListener("change", () => { state.smoothing = parseFloat(sm.value); store("smoothing", state.smoothing); onchange(state); });
    const lg = h("input", { type: "checkbox", checked: state.logy, onchange: () => { state.logy = lg.checked; store("logy", state.logy); onchange(state); } });
    const search = h("input", { type: "search", placeholder: "Filter metrics", oninput: () => { state.search = search.value.toLowerCase(); onchange(state, true); } });
    return { state, el: h("div.toolbar.small", null, search, xs, h("label", null, "smoothing ", sm, " ", smv), h("label", null, lg, " log y")) };
  }

  async function runCharts(run, body, q, token) {
    const keys = Object.keys(run.summary || {}).sort();
    if (!keys.length) { body.appendChild(h("p.muted.pad", null, "This run has no metrics.")); return; }
    await ensurePlotly();
    if (token !== routeToken) return;
    const grid = h("div.charts");
    const controls = chartControls(q, (state, filterOnly) => (filterOnly ? applyFilter(state) : drawAll(state)));
    body.append(controls.el, grid);
    function applyFilter(state) {
      grid.querySelectorAll(".chart").forEach((c) => { c.style.display = c.dataset.key.toLowerCase().includes(state.search) ? "" : "none"; });
      grid.querySelectorAll(".group-head").forEach((g) => { g.style.display = state.search ? "none" : ""; });
    }
    function drawAll(state) {
      grid.querySelectorAll(".plot").forEach((d) => Plotly.purge(d));
      grid.querySelectorAll(".chart").forEach((c) => lazyObserver.unobserve(c));
      clear(grid);
      for (const [i, { key, head }] of grouped(keys).entries()) {
        if (head) grid.appendChild(h("div.group-head", null, head));
        const info = h("span.info");
        const card = h("div.chart", { dataset: { key } }, h("div.chart-head", null, h("b", null, key), info));
        grid.appendChild(card);
        lazy(card, () => seriesChart(card, [{ run: run.id, key, name: key, color: color(i), start: run.start_time }], { xaxis: state.xaxis, smoothing: state.smoothing, logy: state.logy, info }));
      }
      applyFilter(state);
      const focus = q.get("key");
      if (focus) { const el = [...grid.children].find((c) => c.dataset.key === focus); if (el) el.classList.add("focus"); }
    }
    drawAll(controls.state);
    if (run.status === "RUNNING") every(5000, async () => {
      const fresh = await api("head", { run: run.id });
      if (token !== routeToken || fresh.commit === run.commit) return;
      // a new checkpoint: re-read the run (new metrics need new charts), then redraw
      const full = await api("run", { run: run.id });
      if (token !== routeToken) return;
      run.commit = full.commit;
      if (Object.keys(full.summary).length !== keys.length || full.status !== "RUNNING") { route(); return; }
      drawAll(controls.state);
    });
  }

  async function codeTab(run, body, q, token) {
    const against = q.get("against") || "parent";
    const data = await api("code", { run: run.id, against });
    if (token !== routeToken) return;
    const sel = h("select", { onchange: () => { location.hash = `#/run/${encodeURIComponent(run.id)}?tab=code&against=${encodeURIComponent(sel.value)}`; } },
      h("option", { value: "parent", selected: against === "parent" }, run.dirty ? "uncommitted changes (vs HEAD at run time)" : "the commit's own changes"),
      h("option", { value: "HEAD", selected: against === "HEAD" }, "the repository's HEAD now"));
    const other = h("input", { type: "text", placeholder: "or another run: id, prefix or name", value: ["parent", "HEAD"].includes(against) ? "" : against });
    other.addEventListener("keydown", (e) => { if (e.key === "Enter" && other.value.trim()) location.hash = `#/run/${encodeURIComponent(run.id)}?tab=code&against=${encodeURIComponent(other.value.trim())}`; });
    const c = data.commit;
    if (!c) { body.appendChild(h("p.muted.pad", null, "No code commit recorded.")); return; }
    const snap = data.snapshot || {};
    const diffView = h("div.diff");
    const files = h("ul.files", null, data.files.map((f) => h("li", null,
      h(`span.fs.${f.status}`, null, f.status[0].toUpperCase()),
      h("a", { href: "#", onclick: (e) => { e.preventDefault(); showDiff(f.path); } }, f.path),
      f.old_path && f.old_path !== f.path ? h("span.muted", null, ` ← ${f.old_path}`) : null)));
    body.append(
      h("section.card.wide", null,
        h("div.commit", null, h("span.mono", null, c.id), c.snapshot ? h("span.pill", null, "snapshot of uncommitted work") : null),
        h("pre.msg", null, c.message.trim()),
        h("div.muted", null, `${c.author} · ${time(c.time * 1000)}`),
        (snap.excluded || []).length ? h("details", null, h("summary", null, `${GX.count(snap.excluded_count || snap.excluded.length, "file")} left out of the snapshot`),
          h("ul", null, snap.excluded.map((x) => h("li", null, h("span.mono", null, x.path), ` — ${x.reason}`)))) : null),
      h("div.toolbar.small", null, "Diff against ", sel, other, h("span.muted", null, `${GX.count(data.files.length, "changed file")} vs ${data.base_label}${data.base ? " " + data.base.slice(0, 12) : ""}`)),
      h("div.codecols", null, h("div.filelist", null, data.files.length ? files : h("p.muted", null, "No differences")), diffView));
    async function showDiff(path) {
      clear(diffView).appendChild(h("p.muted", null, "Loading diff…"));
      const text = await api("diff", { run: run.id, against, path });
      renderDiff(diffView, text);
    }
    if (data.files.length && data.files.length <= 30) {
      const text = await api("diff", { run: run.id, against });
      renderDiff(diffView, text);
    } else if (data.files.length) showDiff(data.files[0].path);
  }

  function renderDiff(target, text) {
    clear(target);
    const pre = h("pre.difftext");
    for (const line of text.split("\n")) {
      let cls = "";
      if (line.startsWith("+++") || line.startsWith("---")) cls = "fh";
      else if (line.startsWith("+")) cls = "add";
      else if (line.startsWith("-")) cls = "del";
      else if (line.startsWith("@@")) cls = "hunk";
      pre.appendChild(h(cls ? `span.${cls}` : "span", null, line + "\n"));
    }
    target.appendChild(text.trim() ? pre : h("p.muted", null, "No textual differences"));
  }

  function artifactsTab(run, body) {
    if (!run.artifacts.length) { body.appendChild(h("p.muted.pad", null, "No artifacts.")); return; }
    body.appendChild(h("table.grid.artifacts", null,
      h("thead", null, h("tr", null, ["name", "size", "stored", ""].map((c) => h(c === "size" ? "th.n" : "th", null, c)))),
      h("tbody", null, run.artifacts.map((a) => h("tr", null,
        h("td.mono", null, a.name), h("td.n", null, bytes(a.size)),
        h("td.muted", null, a.where === "tree" ? "in the run commit" : a.uri || "artifact store"),
        h("td", null, a.where === "tree" ? h("a", { href: `/api/artifact?run=${encodeURIComponent(run.id)}&name=${encodeURIComponent(a.name)}`, download: a.name.split("/").pop() }, "download")
          : h("span.muted.mono", null, `gitxp artifacts get ${run.id.slice(0, 12)} ${a.name}`)))))));
  }

  function envTab(run, body) {
    const env = run.env || {};
    const py = env.python || {}, plat = env.platform || {};
    const pkgs = Object.entries(env.packages || {});
    const search = h("input", { type: "search", placeholder: `Filter ${pkgs.length} packages` });
    const tbody = h("tbody");
    const fill = () => {
      const s = search.value.toLowerCase();
      GX.append(clear(tbody), pkgs.filter(([n]) => n.toLowerCase().includes(s)).map(([n, v]) => h("tr", null, h("td", null, n), h("td.mono", null, v))));
    };
    search.addEventListener("input", fill);
    fill();
    body.append(h("div.cols", null,
      h("section.card", null, h("h3", null, "System"), kvTable({ python: py.version, executable: py.executable, platform: plat.platform, cpus: env.cpu_count,
        gpus: (env.gpus || []).map((g) => `${g.name} (driver ${g.driver})`).join(", ") || "none", "git remote": (env.git && env.git.remote) || "none",
        redacted: (env.redacted || []).join(", ") || "nothing" })),
      h("section.card", null, h("h3", null, "Environment variables"), kvTable(env.variables || {})),
      h("section.card", null, h("h3", null, "Packages"), search, h("div.scroll", null, h("table.grid", null, tbody)))));
  }

  function logTab(run, body) {
    body.append(
      h("section.card.wide", null, h("h3", null, "Commits on ", h("span.mono", null, run.ref)),
        h("table.grid", null, h("tbody", null, run.history.map((c) => h("tr", null, h("td.mono", null, c.commit.slice(0, 12)), h("td.muted", null, time(c.time * 1000)), h("td", null, c.subject)))))),
      h("section.card.wide", null, h("h3", null, "Captured output (tail)"), run.output_tail ? h("pre.output", null, run.output_tail) : h("p.muted", null, "No captured output (only `gitxp run` captures it)")));
  }

  // -- compare ------------------------------------------------------------------------
  async function comparePage(refs, q, token) {
    const [data] = await Promise.all([api("compare", { runs: refs.join(",") }), ensurePlotly()]);
    if (token !== routeToken) return;
    const runs = data.runs;
    document.title = `Compare ${runs.length} runs · gitxp`;
    setCrumbs(h("a", { href: "#/" }, "Runs"), h("span", null, `Compare ${runs.length} runs`));
    const chips = h("div.chips", null, runs.map((r, i) => h("span.chip", null, h("span.swatch", { style: `background:${color(i)}` }),
      h("a", { href: `#/run/${encodeURIComponent(r.id)}` }, r.name || r.id.slice(0, 12)), h("span.muted.mono", null, r.id.slice(0, 8)), badge(r.status),
      runs.length > 2 ? h("button.x", { title: "Remove from comparison", onclick: () => { location.hash = "#/compare/" + runs.filter((x) => x.id !== r.id).map((x) => x.id).join(","); } }, "×") : null)));
    const charts = h("div.charts");
    const controls = chartControls(q, (state, filterOnly) => (filterOnly ? filter(state) : drawCharts(state)));
    function filter(state) {
      charts.querySelectorAll(".chart").forEach((c) => { c.style.display = c.dataset.key.toLowerCase().includes(state.search) ? "" : "none"; });
      charts.querySelectorAll(".group-head").forEach((g) => { g.style.display = state.search ? "none" : ""; });
    }
    function drawCharts(state) {
      charts.querySelectorAll(".plot").forEach((d) => Plotly.purge(d));
      charts.querySelectorAll(".chart").forEach((c) => lazyObserver.unobserve(c));
      clear(charts);
      for (const { key, head } of grouped(data.metrics)) {
        if (head) charts.appendChild(h("div.group-head", null, head));
        const info = h("span.info");
        const card = h("div.chart", { dataset: { key } }, h("div.chart-head", null, h("b", null, key), info));
        charts.appendChild(card);
        const specs = runs.map((r, i) => ({ run: r.id, key, name: r.name || r.id.slice(0, 12), color: color(i), start: r.start_time })).filter((s, i) => key in runs[i].summary);
        lazy(card, () => seriesChart(card, specs, { xaxis: state.xaxis, smoothing: state.smoothing, logy: state.logy, info, points: runs.length > 8 ? 1000 : 2000 }));
      }
      filter(state);
    }
    const onlyDiff = h("input", { type: "checkbox", checked: store("onlyDiff") !== false });
    const diffTable = h("div.scroll-x");
    const drawDiff = () => {
      store("onlyDiff", onlyDiff.checked);
      const head = h("tr", null, h("th", null, ""), runs.map((r, i) => h("th", null, h("span.swatch", { style: `background:${color(i)}` }), r.name || r.id.slice(0, 12))));
      const rows = [];
      const section = (label) => rows.push(h("tr.section", null, h("td", { colspan: runs.length + 1 }, label)));
      const params = onlyDiff.checked ? data.differing_params : data.params;
      section(`Params${onlyDiff.checked ? ` that differ (${params.length} of ${data.params.length})` : ""}`);
      for (const k of params) {
        const differs = data.differing_params.includes(k);
        rows.push(h("tr", { class: differs ? "differs" : null }, h("th", null, k), runs.map((r) => h("td.n", null, value(r.params[k])))));
      }
      section("Metrics (last value; best in bold)");
      for (const k of data.metrics) {
        const vals = runs.map((r) => (r.summary[k] ? r.summary[k].last : null));
        const nums = vals.filter((v) => typeof v === "number");
        const lower = /loss|err|perplex|mse|mae|rmse/i.test(k);
        const best = nums.length > 1 ? (lower ? Math.min(...nums) : Math.max(...nums)) : null;
        rows.push(h("tr", null, h("th", null, k), vals.map((v) => h(`td.n${v === best ? ".best" : ""}`, null, num(v)))));
      }
      const tagKeys = [...new Set(runs.flatMap((r) => Object.keys(r.tags)))].sort();
      if (tagKeys.length) { section("Tags"); tagKeys.forEach((k) => rows.push(h("tr", null, h("th", null, k), runs.map((r) => h("td", null, r.tags[k] || ""))))); }
      clear(diffTable).appendChild(h("table.grid.diff", null, h("thead", null, head), h("tbody", null, rows)));
    };
    onlyDiff.addEventListener("change", drawDiff);

    const shownParams = data.params.filter((k) => runs.some((r) => r.params[k] !== undefined && r.params[k] !== null));
    const metricSel = h("select", null, data.metrics.map((m, i) => h("option", { value: m, selected: i === 0 }, m)));
    const paramSel = h("select", null, shownParams.map((p, i) => h("option", { value: p, selected: p === (data.differing_params[0] || shownParams[0]) }, p)));
    const metricSel2 = h("select", null, data.metrics.map((m, i) => h("option", { value: m, selected: i === 0 }, m)));
    const parDiv = h("div.plot.tall");
    const scDiv = h("div.plot.tall");
    parDiv.id = "parcoords";
    scDiv.id = "scatter";
    const lastOf = (r, m) => { const s = r.summary[m]; return s && typeof s.last === "number" ? s.last : null; };
    function drawParallel() {
      const m = metricSel.value;
      const dims = shownParams.map((p) => {
        const vals = runs.map((r) => r.params[p]);
        if (vals.every((v) => typeof v === "number" || v === undefined || v === null)) {
          return { label: plotText(p), values: vals.map((v) => (typeof v === "number" ? v : NaN)) };
        }
        const cats = [...new Set(vals.map((v) => value(v)))].sort();
        return { label: plotText(p), values: vals.map((v) => cats.indexOf(value(v))), tickvals: cats.map((_, i) => i), ticktext: cats /* parcoords draws tick text as plain SVG text, no entity decoding */ };
      });
      const mv = runs.map((r) => lastOf(r, m));
      if (m) dims.push({ label: plotText(m), values: mv.map((v) => (v === null ? NaN : v)) });
      const trace = { type: "parcoords", line: { color: mv.map((v) => (v === null ? 0 : v)), colorscale: "Viridis", showscale: true, colorbar: { thickness: 10, title: { text: plotText(m || ""), side: "right" } } }, dimensions: dims };
      const layout = baseLayout(null, {});
      layout.margin = { l: 60, r: 60, t: 40, b: 20 };
      Plotly.react(parDiv, [trace], layout, PLOT_CONFIG);
    }
    function drawScatter() {
      const p = paramSel.value, m = metricSel2.value;
      const traces = runs.map((r, i) => ({ type: "scatter", mode: "markers+text", x: [value(r.params[p]) === "" ? null : r.params[p]], y: [lastOf(r, m)],
        name: plotText(r.name || r.id.slice(0, 12)), text: [plotText(r.name || r.id.slice(0, 8))], textposition: "top center", textfont: { size: 10 },
        marker: { size: 11, color: color(i), line: { width: 1, color: "#fff" } }, hovertemplate: `${plotText(p)}=%{x}<br>${plotText(m)}=%{y:.5g}<extra>${plotText(r.name || r.id)}</extra>` }));
      const layout = baseLayout(null, { hovermode: "closest", xtitle: p });
      layout.yaxis.title = { text: plotText(m), font: { size: 10 } };
      Plotly.react(scDiv, traces, layout, PLOT_CONFIG);
    }
    metricSel.addEventListener("change", drawParallel);
    paramSel.addEventListener("change", drawScatter);
    metricSel2.addEventListener("change", drawScatter);

    clear(main).append(
      h("div.runhead", null, h("div.title", null, h("h1", null, `Comparing ${runs.length} runs`)), chips),
      h("section.card.wide", null, h("h3", null, "Metrics"), controls.el, data.metrics.length ? charts : h("p.muted", null, "No metrics")),
      h("section.card.wide", null, h("h3", null, "Differences ", h("label.muted", null, onlyDiff, " only params that differ")), diffTable),
      h("div.cols2", null,
        h("section.card", null, h("h3", null, "Parallel coordinates: params against ", metricSel), shownParams.length ? parDiv : h("p.muted", null, "No params")),
        h("section.card", null, h("h3", null, "Scatter: ", paramSel, " against ", metricSel2), shownParams.length && data.metrics.length ? scDiv : h("p.muted", null, "Needs a param and a metric"))));
    drawDiff();
    drawCharts(controls.state);
    if (shownParams.length) drawParallel();
    if (shownParams.length && data.metrics.length) drawScatter();
  }

  // -- start ------------------------------------------------------------------------------
  api("info").then((info) => {
    const repo = document.getElementById("repo");
    repo.textContent = `${info.repo}${info.branch ? " · " + info.branch : ""}`;
    repo.title = `gitxp ${info.version} · plotly.js ${info.plotly}`;
  }).catch(() => {});
  window.addEventListener("hashchange", route);
  route();
})();
