/* gitxp UI helpers shared by the app and the static report.
 *
 * Safety rule: every string that comes from a run (names, params, tags,
 * notes, paths) reaches the page through textContent or createTextNode,
 * never through innerHTML. Strings handed to plotly are entity-escaped,
 * because plotly interprets a few HTML-like tags in labels.
 */
"use strict";

const GX = (() => {
  /* h("tag.class", {attrs}, children...) builds an element; strings become text nodes. */
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split(".");
    const el = document.createElement(tag || "div");
    if (classes.length) el.className = classes.join(" ");
    if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
      children.unshift(attrs);
      attrs = null;
    }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = String(v);
      else if (k === "href") el.setAttribute("href", safeHref(String(v)));
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "value") el.value = v;
      else if (k === "checked" || k === "selected" || k === "disabled") el[k] = !!v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  /* Only in-app (#...), relative API paths and http(s) links may become hrefs. */
  function safeHref(url) {
    if (url.startsWith("#") || url.startsWith("/") || url.startsWith("?")) return url;
    try {
      const u = new URL(url);
      if (u.protocol === "http:" || u.protocol === "https:") return u.href;
    } catch (e) { /* not a URL */ }
    return "#";
  }

  /* For plotly labels: plotly understands <b>, <br>, &lt; ... so escape. */
  function plotText(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // -- formatting: values read as the CLI prints them (gitxp.present.output) --
  const NONFINITE = { NaN: "nan", Infinity: "inf", "-Infinity": "-inf" }; // their JSON spelling

  /* Python's "{:.6g}": 6 significant digits, exponent below 1e-4 and from 1e6, no trailing 0s. */
  function g6(v) {
    const [mantissa, exp] = v.toExponential(5).split("e");
    const e = Number(exp);
    const trim = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
    if (e < -4 || e >= 6) return `${trim(mantissa)}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
    return trim(v.toFixed(5 - e));
  }

  /* A metric (or any number): integers whole, others as g6, NaN/inf as nan/inf/-inf. */
  function num(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "string") return NONFINITE[v] || v;
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    return g6(v);
  }

  function value(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return num(v);
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function time(ms) {
    if (!ms) return "";
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function ago(ms) {
    if (!ms) return "";
    const s = (Date.now() - ms) / 1000;
    if (s < 60) return "just now";
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
    return time(ms).slice(0, 10);
  }

  function duration(sec) {
    if (sec === null || sec === undefined || sec === "") return "";
    if (sec < 60) return `${sec.toFixed(1)}s`;
    const m = Math.floor(sec / 60);
    if (m < 60) return `${m}m${String(Math.floor(sec % 60)).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
  }

  /* count(3, "file") is "3 files", count(1, "file") is "1 file". */
  function count(n, noun) {
    return `${Number(n).toLocaleString()} ${noun}${n === 1 ? "" : "s"}`;
  }

  /* A byte count as the CLI prints it (gitxp._text.size): 512 B, 4.1 KiB, 1.3 GiB. */
  function bytes(n) {
    if (n === null || n === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function badge(status) {
    return h(`span.badge.s-${String(status).toLowerCase()}`, { title: status }, status);
  }

  // -- notes: escape-by-construction Markdown subset --------------------------
  function inline(text) {
    const out = [];
    const re = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)|(\[[^\]]+\]\((https?:\/\/[^\s)]+)\))/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) out.push(text.slice(last, m.index));
      const t = m[0];
      if (m[1]) out.push(h("code", null, t.slice(1, -1)));
      else if (m[2]) out.push(h("strong", null, t.slice(2, -2)));
      else if (m[3]) out.push(h("em", null, t.slice(1, -1)));
      else out.push(h("a", { href: m[5], target: "_blank", rel: "noopener noreferrer" },
        t.slice(1, t.indexOf("]"))));
      last = re.lastIndex;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function markdown(src) {
    const root = h("div.md");
    const lines = String(src).replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (/^```/.test(line)) {
        const body = [];
        i++;
        while (i < lines.length && !/^```/.test(lines[i])) body.push(lines[i++]);
        i++;
        root.appendChild(h("pre", null, body.join("\n")));
      } else if (/^#{1,6}\s/.test(line)) {
        root.appendChild(h("h4", null, inline(line.replace(/^#+\s*/, ""))));
        i++;
      } else if (/^\s*[-*]\s+/.test(line)) {
        const ul = h("ul");
        while (i < lines.length && /^\s*[-*]\s+/.test(lines[i])) {
          ul.appendChild(h("li", null, inline(lines[i].replace(/^\s*[-*]\s+/, ""))));
          i++;
        }
        root.appendChild(ul);
      } else if (!line.trim()) {
        i++;
      } else {
        const para = [];
        while (i < lines.length && lines[i].trim() && !/^(```|#{1,6}\s|\s*[-*]\s+)/.test(lines[i])) {
          para.push(lines[i++]);
        }
        const p = h("p");
        para.forEach((t, j) => { if (j) p.appendChild(h("br")); append(p, inline(t)); });
        root.appendChild(p);
      }
    }
    return root;
  }

  // -- charts -------------------------------------------------------------------
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
    "#db2777", "#65a30d", "#4f46e5", "#b45309", "#0d9488", "#7c3aed"];

  function color(i) { return COLORS[i % COLORS.length]; }

  function smooth(values, weight) {
    if (!weight) return values;
    const out = new Array(values.length);
    let last = null, debias = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      last = last === null ? 0 : last;
      last = last * weight + (1 - weight) * v;
      debias = debias * weight + (1 - weight);
      out[i] = last / debias;
    }
    return out;
  }

  function baseLayout(title, opts) {
    opts = opts || {};
    return {
      title: title ? { text: plotText(title), font: { size: 12, color: "#334155" }, x: 0.01, xanchor: "left", y: 0.97 } : undefined,
      margin: { l: 48, r: 12, t: title ? 26 : 8, b: 30 },
      font: { family: "ui-sans-serif, system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#334155" },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      xaxis: { gridcolor: "#eef2f7", zeroline: false, linecolor: "#cbd5e1", automargin: true,
        type: opts.xtype || "linear", title: opts.xtitle ? { text: opts.xtitle, standoff: 4, font: { size: 10 } } : undefined },
      yaxis: { gridcolor: "#eef2f7", zeroline: false, linecolor: "#cbd5e1", automargin: true,
        type: opts.logy ? "log" : "linear", exponentformat: "SI" },
      showlegend: !!opts.legend,
      legend: { orientation: "h", y: -0.2, font: { size: 10 } },
      hovermode: opts.hovermode || "x unified",
      hoverlabel: { font: { size: 11 } },
      uirevision: opts.uirevision || "keep",
    };
  }

  const PLOT_CONFIG = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"], toImageButtonOptions: { format: "png", scale: 2 } };

  /* One line trace from an API series answer. */
  function lineTrace(series, opts) {
    const xs = opts.xaxis === "timestamp" ? series.timestamp.map((t) => new Date(t))
      : opts.xaxis === "relative" ? series.timestamp.map((t) => (t - (opts.start || 0)) / 1000) : series.step;
    return {
      type: "scatter", mode: series.value.length === 1 ? "markers" : "lines",
      name: plotText(opts.name || series.key),
      x: xs, y: smooth(series.value, opts.smoothing || 0),
      line: { width: 1.5, color: opts.color },
      marker: { size: 5, color: opts.color },
      hovertemplate: "%{y:.5g}<extra>" + plotText(opts.name || series.key) + "</extra>",
    };
  }

  return { h, append, clear, plotText, num, value, time, ago, duration, bytes, count, badge,
    markdown, color, smooth, baseLayout, PLOT_CONFIG, lineTrace };
})();
