// report.html's script (inlined into every page; it fetches nothing).
//
// Every table sorts by a click on its header. With an experiment's data (the JSON in
// #sigprop-data), the page also draws one interactive chart per statistic (hover: the
// configuration, layer and value; click: that configuration alone) and filters the
// configurations by their keys: unchecked values hide their lines, their ranking rows and
// their outcome sentences. The address's hash drives the same state, so a view can be linked:
// #config-3 (one configuration), #filter=activation:relu,tanh;depth:8 (checked values), #all.
// Errors are written to <body data-errors>, and <body data-ready="1"> is set once the page
// is built (both read by the browser test).
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message));
    document.body.setAttribute("data-errors", errors.join(" | "));
  });

  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    return e;
  }
  function fmt(v) {
    if (v === null || !isFinite(v)) { return String(v); }
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) { return v.toExponential(3); }
    return String(Number(v.toPrecision(4)));
  }

  // ---- sortable tables ----
  function cellValue(td) {
    var t = td.textContent.trim();
    var n = parseFloat(t);
    return isNaN(n) ? t.toLowerCase() : n;
  }
  function makeSortable(table) {
    var head = table.tHead;
    if (!head || !table.tBodies.length) { return; }
    var ths = head.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); th.click(); }
      });
      th.addEventListener("click", function () {
        var dir = th.getAttribute("data-sort") === "asc" ? "desc" : "asc";
        Array.prototype.forEach.call(ths, function (o) {
          o.removeAttribute("data-sort");
          o.setAttribute("aria-sort", "none");
        });
        th.setAttribute("data-sort", dir);
        th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
          var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                          : (typeof x === "number" ? -1 : 1);
          return dir === "asc" ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), makeSortable);

  var holder = document.getElementById("sigprop-data");
  var data = holder ? JSON.parse(holder.textContent) : null;
  var tooltip = el("div", { id: "tooltip" });
  document.body.appendChild(tooltip);

  if (!data) {
    // A report without configurations (training, coordinate checks): filter table rows by text.
    var box = el("input", { id: "label-filter", type: "search", placeholder: "filter table rows" });
    var bar = el("div", { id: "controls" });
    bar.appendChild(box);
    var h1 = document.querySelector("h1");
    h1.parentNode.insertBefore(bar, h1.nextSibling);
    box.addEventListener("input", function () {
      var q = box.value.toLowerCase();
      Array.prototype.forEach.call(document.querySelectorAll("tbody tr"), function (r) {
        r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
    document.body.setAttribute("data-ready", "1");
    return;
  }

  // ---- the configurations and their filter ----
  var configs = data.configs;
  var byId = {};
  configs.forEach(function (c) { byId[c.id] = c; });
  var checked = data.keys.map(function () { return {}; });
  configs.forEach(function (c) {
    c.values.forEach(function (v, k) { checked[k][v] = true; });
  });
  var only = null;

  var controls = el("div", { id: "controls" });
  var shown = el("span", { id: "shown" });
  var labelBox = el("input", { id: "label-filter", type: "search", placeholder: "filter by label" });
  data.keys.forEach(function (key, k) {
    var fs = el("fieldset", { "data-key": key });
    fs.appendChild(el("legend", {}, key));
    Object.keys(checked[k]).forEach(function (v) {
      var lab = el("label");
      var cb = el("input", { type: "checkbox", "data-key": key, value: v });
      cb.checked = true;
      cb.addEventListener("change", function () {
        checked[k][v] = cb.checked; only = null; update();
      });
      lab.appendChild(cb);
      lab.appendChild(document.createTextNode(" " + v));
      fs.appendChild(lab);
    });
    var all = el("button", { type: "button" }, "all");
    all.addEventListener("click", function () { setKey(k, null); });
    fs.appendChild(all);
    controls.appendChild(fs);
  });
  controls.appendChild(labelBox);
  var reset = el("button", { type: "button", id: "show-all" }, "show all");
  reset.addEventListener("click", function () { go("all"); });
  controls.appendChild(reset);
  controls.appendChild(shown);
  labelBox.addEventListener("input", function () { only = null; update(); });

  function setKey(k, values, quiet) {
    Object.keys(checked[k]).forEach(function (v) {
      checked[k][v] = values === null || values.indexOf(v) >= 0;
    });
    Array.prototype.forEach.call(
      controls.querySelectorAll('input[data-key="' + data.keys[k] + '"]'),
      function (cb) { cb.checked = checked[k][cb.value]; });
    only = null;
    if (!quiet) { update(); }
  }
  function visible(c) {
    if (only !== null) { return c.id === only; }
    var q = labelBox.value.toLowerCase();
    if (q && c.label.toLowerCase().indexOf(q) < 0) { return false; }
    return c.values.every(function (v, k) { return checked[k][v]; });
  }

  // ---- interactive charts ----
  var W = 560, H = 330, M = { l: 62, r: 12, t: 10, b: 40 };
  var section = el("section", { id: "explore" });
  section.appendChild(el("h2", {}, "Explore"));
  section.appendChild(el("p", {}, "Hover a line for its configuration, layer and value; click " +
    "it to show that configuration alone. The boxes above hide configurations from the " +
    "charts, the ranking and the outcomes. Dashed: the mean-field prediction."));
  var legend = el("div", { id: "legend" });
  section.appendChild(legend);
  var grid = el("div", { "class": "charts-grid" });
  section.appendChild(grid);
  var charts = data.charts.map(function (spec) {
    var fig = el("figure", { "data-stat": spec.stat });
    fig.appendChild(el("figcaption", {}, spec.title));
    var svg = svgEl("svg", { "class": "ichart", width: W, height: H, role: "img",
                             "aria-label": spec.title,
                             viewBox: "0 0 " + W + " " + H, "data-stat": spec.stat });
    fig.appendChild(svg);
    grid.appendChild(fig);
    var series = spec.series.map(function (s) {
      var xs = typeof s[1] === "number"
        ? s[2].map(function (_, i) { return s[1] + i; }) : s[1];
      return { id: s[0], x: xs, y: s[2], t: s[3] };
    });
    var chart = { spec: spec, svg: svg, series: series, pts: [] };
    svg.addEventListener("mousemove", function (ev) { hover(chart, ev); });
    svg.addEventListener("mouseleave", function () { unhover(chart); });
    svg.addEventListener("click", function () {
      if (chart.hot !== undefined) { go("config-" + chart.hot); }
    });
    return chart;
  });

  function ok(spec, v) { return v !== null && isFinite(v) && (!spec.log || v > 0); }
  function ticks(lo, hi, log) {
    var out = [];
    if (log) {
      var a = Math.floor(lo), b = Math.ceil(hi), step = Math.max(1, Math.ceil((b - a) / 8));
      for (var d = a; d <= b; d += step) { out.push(d); }
      return out;
    }
    var span = hi - lo || 1, raw = span / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var st = [1, 2, 5, 10].map(function (m) { return m * mag; })
      .filter(function (s) { return s >= raw; })[0];
    for (var t = Math.ceil(lo / st) * st; t <= hi + 1e-12 * span; t += st) { out.push(t); }
    return out;
  }
  function draw(chart) {
    var spec = chart.spec, svg = chart.svg;
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var vis = chart.series.filter(function (s) { return visible(byId[s.id]); });
    var tr = spec.log ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    vis.forEach(function (s) {
      s.x.forEach(function (x, i) {
        [s.y[i], s.t ? s.t[i] : null].forEach(function (v) {
          if (!ok(spec, v)) { return; }
          x0 = Math.min(x0, x); x1 = Math.max(x1, x);
          y0 = Math.min(y0, tr(v)); y1 = Math.max(y1, tr(v));
        });
      });
    });
    chart.pts = [];
    if (!isFinite(x0)) {
      var none = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
      none.textContent = "nothing to draw for the configurations shown";
      svg.appendChild(none);
      return;
    }
    if (spec.fraction) { y0 = 0; y1 = 1; }
    if (spec.log) { y0 = Math.floor(y0); y1 = Math.ceil(y1); if (y1 === y0) { y1 += 1; } }
    else if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    else if (!spec.fraction) { var pad = 0.05 * (y1 - y0); y0 -= pad; y1 += pad; }
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    var px = function (x) { return M.l + (x - x0) / (x1 - x0) * (W - M.l - M.r); };
    var py = function (v) { return H - M.b - (tr(v) - y0) / (y1 - y0) * (H - M.t - M.b); };
    ticks(y0, y1, spec.log).forEach(function (t) {
      var y = H - M.b - (t - y0) / (y1 - y0) * (H - M.t - M.b);
      svg.appendChild(svgEl("line", { "class": "grid", x1: M.l, x2: W - M.r, y1: y, y2: y }));
      var lab = svgEl("text", { x: M.l - 5, y: y + 4, "text-anchor": "end" });
      lab.textContent = spec.log ? "1e" + t : fmt(t);
      svg.appendChild(lab);
    });
    ticks(x0, x1, false).filter(function (t) { return Math.abs(t - Math.round(t)) < 1e-9; })
      .forEach(function (t) {
        var lab = svgEl("text", { x: px(t), y: H - M.b + 15, "text-anchor": "middle" });
        lab.textContent = String(Math.round(t));
        svg.appendChild(lab);
      });
    svg.appendChild(svgEl("line", { "class": "axis", x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
    svg.appendChild(svgEl("line", { "class": "axis", x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
    var xl = svgEl("text", { x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle" });
    xl.textContent = spec.x;
    svg.appendChild(xl);
    var yl = svgEl("text", { x: 12, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
                              transform: "rotate(-90 12 " + (M.t + H - M.b) / 2 + ")" });
    yl.textContent = spec.y;
    svg.appendChild(yl);
    // Lines stay inside the plot (a cosine below a fraction axis' 0 is cut there).
    var clipId = "clip-" + spec.stat;
    var clip = svgEl("clipPath", { id: clipId });
    clip.appendChild(svgEl("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b }));
    svg.appendChild(clip);
    function path(s, vals, cls) {
      var d = "", pen = false;
      s.x.forEach(function (x, i) {
        var v = vals[i];
        if (!ok(spec, v)) { pen = false; return; }
        var alone = !ok(spec, vals[i - 1]) && !ok(spec, vals[i + 1]);
        var X = px(x).toFixed(1), Y = py(v).toFixed(1);
        // A point with no neighbour is a dot (a zero-length line with round caps).
        d += (pen ? "L" : "M") + X + " " + Y + (alone ? "l0.01 0" : "");
        pen = true;
        if (cls === "series") { chart.pts.push([px(x), py(v), s.id, x, v, s.t ? s.t[i] : null]); }
      });
      if (!d) { return; }
      var p = svgEl("path", { "class": cls, d: d, stroke: byId[s.id].color, "data-config": s.id,
                              "clip-path": "url(#" + clipId + ")" });
      svg.appendChild(p);
    }
    vis.forEach(function (s) { if (s.t) { path(s, s.t, "theory"); } });
    vis.forEach(function (s) { path(s, s.y, "series"); });
  }
  function hover(chart, ev) {
    var r = chart.svg.getBoundingClientRect();
    var mx = (ev.clientX - r.left) * W / r.width, my = (ev.clientY - r.top) * H / r.height;
    var best = null, bd = 400;
    chart.pts.forEach(function (p) {
      var d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
      if (d < bd) { bd = d; best = p; }
    });
    if (!best) { unhover(chart); return; }
    if (chart.hot !== best[2]) {
      unhover(chart);
      chart.hot = best[2];
      Array.prototype.forEach.call(
        chart.svg.querySelectorAll('path.series[data-config="' + best[2] + '"]'),
        function (p) { p.classList.add("hot"); });
    }
    var c = byId[best[2]];
    tooltip.textContent = c.label + " \u2014 " + chart.spec.x + " " + best[3] + ": " +
      fmt(best[4]) + (best[5] !== null && best[5] !== undefined ? " (theory " + fmt(best[5]) + ")" : "");
    tooltip.style.display = "block";
    tooltip.style.left = (ev.clientX + 14) + "px";
    tooltip.style.top = (ev.clientY + 10) + "px";
  }
  function unhover(chart) {
    Array.prototype.forEach.call(chart.svg.querySelectorAll("path.hot"),
      function (p) { p.classList.remove("hot"); });
    chart.hot = undefined;
    tooltip.style.display = "none";
  }

  // Colours by order among the configurations shown: the palette for up to ten, else hues
  // a golden angle apart (which no grid of the keys lines up with).
  function recolor() {
    var vis = configs.filter(visible);
    vis.forEach(function (c, j) {
      c.color = vis.length <= PALETTE.length ? PALETTE[j]
        : "hsl(" + ((j * 137.508) % 360).toFixed(1) + ", 70%, 42%)";
    });
  }

  function update() {
    recolor();
    var n = 0;
    configs.forEach(function (c) {
      var v = visible(c);
      if (v) { n += 1; }
      Array.prototype.forEach.call(
        document.querySelectorAll('[data-config="' + c.id + '"]:not(path)'),
        function (e) { e.hidden = !v; });
    });
    drawLegend();
    shown.textContent = n + " of " + configs.length + " configurations shown" +
      (only !== null ? " (one chosen: \u201cshow all\u201d to return)" : "");
    charts.forEach(draw);
  }

  // The colours of the configurations shown, each a link to that configuration alone (the
  // first LEGEND_MAX; beyond that, hover a line for its label).
  var LEGEND_MAX = 40;
  function drawLegend() {
    while (legend.firstChild) { legend.removeChild(legend.firstChild); }
    var vis = configs.filter(visible);
    vis.slice(0, LEGEND_MAX).forEach(function (c) {
      var a = el("a", { href: "#config-" + c.id, "class": "entry" });
      var sw = el("span", { "class": "swatch" });
      sw.style.background = c.color;
      a.appendChild(sw);
      a.appendChild(document.createTextNode(c.label));
      legend.appendChild(a);
    });
    if (vis.length > LEGEND_MAX) {
      legend.appendChild(el("span", { "class": "more" },
        "and " + (vis.length - LEGEND_MAX) + " more: hover a line for its label"));
    }
  }

  // Go to the view `hash` names, also when the address already shows it.
  function go(hash) {
    if (location.hash === "#" + hash) { applyHash(); } else { location.hash = hash; }
  }
  function decode(s) {
    try { return decodeURIComponent(s); } catch (e) { return s; }
  }

  function applyHash() {
    var h = location.hash.replace(/^#/, "");
    var m = /^config-(\d+)$/.exec(h);
    if (m && byId[+m[1]]) {
      only = +m[1];
      update();
      var row = document.getElementById("rank-" + m[1]);
      Array.prototype.forEach.call(document.querySelectorAll("tr.focus"),
        function (r) { r.classList.remove("focus"); });
      if (row) { row.classList.add("focus"); }
      section.scrollIntoView();
      return;
    }
    if (h.indexOf("filter=") === 0) {
      // key:v1,v2;key2:v3, each value URI-encoded where it holds `,`, `;` or `:`; the keys
      // it does not name show every value.
      var chosen = data.keys.map(function () { return null; });
      h.slice(7).split(";").forEach(function (part) {
        var at = part.indexOf(":");
        var k = data.keys.indexOf(decode(part.slice(0, at)));
        if (at > 0 && k >= 0) { chosen[k] = part.slice(at + 1).split(",").map(decode); }
      });
      only = null;
      chosen.forEach(function (values, k) { setKey(k, values, true); });
      update();
      return;
    }
    only = null;
    if (h === "all") {
      labelBox.value = "";
      data.keys.forEach(function (_, k) { setKey(k, null, true); });
    }
    update();
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest('a[href^="#config-"]') : null;
    if (a && a.getAttribute("href") === location.hash) { ev.preventDefault(); applyHash(); }
  });
  var h1 = document.querySelector("h1");
  var anchor = document.getElementById("explore-here") || h1.nextSibling;
  anchor.parentNode.insertBefore(controls, anchor);
  anchor.parentNode.insertBefore(section, anchor);
  window.addEventListener("hashchange", applyHash);
  applyHash();
  document.body.setAttribute("data-ready", "1");
})();
