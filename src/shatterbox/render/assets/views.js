(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
  var MAX_ROWS = 64; // DOM tables beyond this are unreadable and slow: the CLI's CSV has them all

  var ramp = window.shatterboxColours.ramp; // white -> dark blue on a square-root scale (render/palette.py, as in the terminal)
  function el(tag, attrs, text) {
    var e = tag.indexOf("svg:") === 0 ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function bytes(b64) { // base64 -> ArrayBuffer (little-endian float32 scales, as written by render/html.py)
    var bin = atob(b64), buf = new ArrayBuffer(bin.length), view = new Uint8Array(buf);
    for (var i = 0; i < bin.length; i++) view[i] = bin.charCodeAt(i);
    return buf;
  }
  function unpack(text, count, D) { // render/html.py pack(): three integers in [0, levels) per seven characters
    var digit = {}, base = D.alphabet.length, L = D.levels, out = new Int32Array(count), g, k, n, v2, v1;
    for (k = 0; k < base; k++) digit[D.alphabet.charCodeAt(k)] = k;
    for (g = 0; 3 * g < count; g++) {
      for (n = 0, k = 0; k < 7; k++) n = n * base + digit[text.charCodeAt(7 * g + k)]; // < 2^53: exact
      v2 = n % L; n = (n - v2) / L; v1 = n % L;
      out[3 * g] = (n - v1) / L; if (3 * g + 1 < count) out[3 * g + 1] = v1; if (3 * g + 2 < count) out[3 * g + 2] = v2;
    }
    return out;
  }
  function mount(root, D, onChange) { // draws every view of one payload D into root; returns {select(layer, heads)}
    // onChange(layer, heads), 0-based, runs whenever the views' own controls change the layer or heads
    var T = D.tokens.length, H = D.nHeads, L = D.nLayers;
    var cache = {}, state = { layer: 0, heads: [0], level: "token", hover: -1, filter: "all", word: -1 };
    root.textContent = "";
    function layerData(l) { // Float32Array [head][query][key], built once per layer
      if (!cache[l]) cache[l] = D.layers[l].attention ? exact(l) : recompute(l);
      return cache[l];
    }
    function exact(l) { // the model's attention, shipped as fixed point
      var u = unpack(D.layers[l].attention, H * T * T, D), out = new Float32Array(u.length);
      for (var i = 0; i < u.length; i++) out[i] = u[i] / D.scale;
      return out;
    }
    function recompute(l) { // softmax(q k^T * scaling) from the quantised queries and keys (render/html.py checks it)
      var d = D.headDim, qs = vectors("queries", l), ks = vectors("keys", l), out = new Float32Array(H * T * T), h, i, j, c, r;
      for (h = 0; h < H; h++) {
        for (i = 0; i < T; i += 4) { // four queries per pass over the keys: each key is read once for all four
          var q0 = (h * T + i) * d, q1 = i + 1 < T ? q0 + d : q0, q2 = i + 2 < T ? q0 + 2 * d : q0, q3 = i + 3 < T ? q0 + 3 * d : q0;
          var o = h * T * T + i * T, last = D.causal ? Math.min(T, i + 4) : T;
          for (j = 0; j < last; j++) {
            var ko = (h * T + j) * d, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (c = 0; c < d; c++) { var kc = ks[ko + c]; s0 += qs[q0 + c] * kc; s1 += qs[q1 + c] * kc; s2 += qs[q2 + c] * kc; s3 += qs[q3 + c] * kc; }
            out[o + j] = s0; if (i + 1 < T) out[o + T + j] = s1; if (i + 2 < T) out[o + 2 * T + j] = s2; if (i + 3 < T) out[o + 3 * T + j] = s3;
          }
          for (r = 0; r < 4 && i + r < T; r++) softmax(out, o + r * T, i + r, l);
        }
      }
      return out;
    }
    function score(dot, l) { // q.k times scaling, soft-capped where the model caps (render/html.py: recompute_attention)
      var s = dot * D.scaling[l];
      return D.softcap ? D.softcap * Math.tanh(s / D.softcap) : s;
    }
    function seen(l, i) { // the keys query i sees in layer l, [first, end): the causal mask and the sliding window (capture.allowed_keys)
      var w = D.layers[l].window;
      return [w ? Math.max(0, i - w + 1) : 0, D.causal ? i + 1 : T];
    }
    function visible(l, i, j) { var k = seen(l, i); return j >= k[0] && j < k[1]; }
    function softmax(row, off, i, l) { // q.k in place -> probabilities over the keys query i sees in layer l; the masked rest becomes 0
      var k = seen(l, i), mx = -Infinity, z = 0, j;
      for (j = k[0]; j < k[1]; j++) { row[off + j] = score(row[off + j], l); if (row[off + j] > mx) mx = row[off + j]; }
      for (j = k[0]; j < k[1]; j++) { row[off + j] = Math.exp(row[off + j] - mx); z += row[off + j]; }
      for (j = 0; j < T; j++) row[off + j] = j >= k[0] && j < k[1] ? row[off + j] / z : 0;
    }
    var qk = {};
    function vectors(kind, l) { // Float32Array [head][token][d]: integer codes times one scale per head and dimension
      var key = kind + l;
      if (!qk[key]) {
        var codes = unpack(D.layers[l][kind], H * T * D.headDim, D), scale = new Float32Array(bytes(D.layers[l][kind === "queries" ? "qScale" : "kScale"]));
        var d = D.headDim, out = new Float32Array(codes.length);
        for (var i = 0; i < codes.length; i++) out[i] = Math.fround((codes[i] - D.half) * scale[Math.floor(i / (T * d)) * d + i % d]);
        qk[key] = out;
      }
      return qk[key];
    }
    function precision() { // what the page shows and how far it is from the model's attention, as render/html.py measured it
      var worst = 0, at = 0, redone = [];
      D.layers.forEach(function (x, l) { if (x.recomputed) redone.push(l + 1); if (x.error > worst) { worst = x.error; at = l + 1; } });
      var how = !redone.length ? "attention shipped as 15-bit fixed point"
        : redone.length === L ? "attention recomputed in this page from 15-bit queries and keys (softmax of q\u00b7k \u00d7 scaling)"
        : "attention recomputed from 15-bit queries and keys in layers " + redone.join(", ") + ", shipped as 15-bit fixed point in the others";
      return how + "; largest difference from the model's: " + worst.toExponential(1) + " (layer " + at + ")";
    }
    function units() { return state.level === "word" ? D.words : D.tokens; }
    function matrix(l, h) { // [n][n] at the current level: attended pieces summed, attending pieces averaged
      var a = layerData(l), off = h * T * T, n = units().length, m = [], cnt = [], i, j;
      for (i = 0; i < n; i++) { m.push(new Float64Array(n)); cnt.push(0); }
      for (i = 0; i < T; i++) {
        var wi = state.level === "word" ? D.wordIndex[i] : i; cnt[wi]++;
        for (j = 0; j < T; j++) m[wi][state.level === "word" ? D.wordIndex[j] : j] += a[off + i * T + j];
      }
      for (i = 0; i < n; i++) for (j = 0; j < n; j++) m[i][j] /= cnt[i];
      return m;
    }
    var wordSeq = D.words.map(function () { return -1; }); // sentence of each word: 0 = A, 1 = B, -1 = special
    D.wordIndex.forEach(function (w, i) { if (wordSeq[w] === -1) wordSeq[w] = D.sequence[i]; });
    function seqOf(k) { return state.level === "token" ? D.sequence[k] : wordSeq[k]; }
    function sides() { // the filter "A->B" as [0, 1] (attending sentence, attended sentence); null for all pairs
      if (state.filter === "all") return null;
      return state.filter.split("->").map(function (s) { return s === "A" ? 0 : 1; });
    }
    function allowed(i, j) {
      var f = sides(); return !f || (seqOf(i) === f[0] && seqOf(j) === f[1]);
    }

    root.appendChild(el("h3", {}, "shatterbox - " + D.model + " - layers and heads are numbered from 1"));
    root.appendChild(el("p", { id: "sb-precision", "class": "sb-note" }, precision()));
    var bar = el("div", { "class": "sb-bar" }); root.appendChild(bar);
    var layerSel = el("select", { id: "sb-layer" });
    for (var l = 0; l < L; l++) layerSel.appendChild(el("option", { value: l }, "layer " + (l + 1)));
    bar.appendChild(layerSel);
    var levelSel = el("select", { id: "sb-level" });
    levelSel.appendChild(el("option", { value: "token" }, "tokens")); levelSel.appendChild(el("option", { value: "word" }, "words"));
    bar.appendChild(levelSel);
    var hasPair = D.sequence.indexOf(1) >= 0, filterSel = el("select", { id: "sb-filter" });
    ["all", "A->A", "A->B", "B->A", "B->B"].forEach(function (f) { filterSel.appendChild(el("option", { value: f }, f === "all" ? "all pairs" : f)); });
    if (hasPair) bar.appendChild(filterSel);
    var headBox = el("span", { "class": "sb-heads", id: "sb-heads" }); bar.appendChild(headBox);
    for (var h = 0; h < H; h++) {
      var lab = el("label", { style: "background:" + COLORS[h % COLORS.length] });
      var cb = el("input", { type: "checkbox", "data-head": h }); if (h === 0) cb.checked = true;
      lab.appendChild(cb); lab.appendChild(document.createTextNode(String(h + 1))); headBox.appendChild(lab);
    }
    var panes = el("div", { "class": "sb-panes" }); root.appendChild(panes);
    var headPane = el("div", { "class": "sb-head", id: "sb-headview" }), modelPane = el("div", { id: "sb-modelview" }), tablePane = el("div", { id: "sb-tableview" });
    panes.appendChild(headPane); panes.appendChild(modelPane); root.appendChild(tablePane);
    var neuronPane = el("div", { id: "sb-neuronview" }), querySel = el("select", { id: "sb-query" });
    D.tokens.forEach(function (t, i) { querySel.appendChild(el("option", { value: i }, (i + 1) + ": " + t)); }); // tokens count from 1, like layers and heads
    if (D.neuron) { root.appendChild(neuronPane); querySel.addEventListener("change", drawNeuron); }

    function strip(values, scale) { // one coloured cell per dimension: the diverging palette (red positive, blue negative) over white
      var c = el("canvas", { width: values.length, height: 1, style: "width:" + (values.length * 4) + "px;height:12px" });
      var ctx = c.getContext("2d"), img = ctx.createImageData(values.length, 1);
      for (var i = 0; i < values.length; i++) {
        var col = window.shatterboxColours.diverging(values[i] / scale), p = i * 4;
        for (var ch = 0; ch < 3; ch++) img.data[p + ch] = Math.round(255 + (col[ch] - 255) * col[3]);
        img.data[p + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      return c;
    }
    function drawNeuron() { // the chapter's computation for one query token: q, k, q*k, q.k, x scaling, softmax
      if (!D.neuron) return;
      neuronPane.textContent = "";
      var h = state.heads[0]; if (h === undefined) return;
      var l = state.layer, d = D.headDim, qs = vectors("queries", l), ks = vectors("keys", l), qi = +querySel.value || 0;
      var head = el("h3", {}, "neuron view (per token: the softmax runs over tokens) - layer " + (l + 1) + ", head " + (h + 1) + ", query token ");
      head.appendChild(querySel); neuronPane.appendChild(head);
      var q = qs.subarray((h * T + qi) * d, (h * T + qi + 1) * d), big = 1e-9, j, i;
      for (i = 0; i < d; i++) big = Math.max(big, Math.abs(q[i]));
      var scores = [], dots = [], prods = [], e = new Float64Array(T);
      for (j = 0; j < T; j++) {
        var k = ks.subarray((h * T + j) * d, (h * T + j + 1) * d), prod = new Float64Array(d), dot = 0;
        for (i = 0; i < d; i++) { prod[i] = q[i] * k[i]; dot += prod[i]; }
        prods.push(prod); dots.push(dot); scores.push(visible(l, qi, j) ? score(dot, l) : -Infinity); e[j] = dot;
      }
      softmax(e, 0, qi, l); // the same softmax, mask and soft cap as the views' recomputation
      var t = el("table", { "class": "sb-table", id: "sb-neuron" }), tr = el("tr"), model = D.layers[l].attention ? layerData(l) : null;
      var cols = ["key", "k", "q \u00d7 k", "q \u00b7 k", "\u00d7 scaling (" + D.scaling[l].toPrecision(4) + ")" + (D.softcap ? ", soft-capped at " + D.softcap : ""), "softmax"];
      cols.concat(model ? ["model"] : []).forEach(function (c) { tr.appendChild(el("th", {}, c)); });
      neuronPane.appendChild(el("p", { "class": "sb-note", id: "sb-neuron-error" }, model
        ? "q and k are shown to 15 bits; the model's own attention is in the last column"
        : "q and k are shown to 15 bits; this softmax differs from the model's by at most " + D.layers[l].error.toExponential(1) + " on this layer"));
      t.appendChild(tr);
      var qrow = el("tr"); qrow.appendChild(el("th", {}, "q: " + D.tokens[qi])); var qc = el("td"); qc.appendChild(strip(q, big)); qrow.appendChild(qc); t.appendChild(qrow);
      var shown = [];
      for (j = 0; j < T; j++) shown.push(j);
      if (T > MAX_ROWS) {
        shown.sort(function (x, y) { return e[y] - e[x]; }); shown = shown.slice(0, MAX_ROWS);
        neuronPane.appendChild(el("p", {}, "showing the " + MAX_ROWS + " keys with the highest softmax of " + T));
      }
      shown.forEach(function (j) {
        var row = el("tr"), p = e[j], kc = el("td"), pc = el("td");
        row.appendChild(el("th", {}, D.tokens[j]));
        kc.appendChild(strip(ks.subarray((h * T + j) * d, (h * T + j + 1) * d), big)); row.appendChild(kc);
        pc.appendChild(strip(prods[j], big * big)); row.appendChild(pc);
        row.appendChild(el("td", {}, dots[j].toFixed(3)));
        row.appendChild(el("td", {}, scores[j] === -Infinity ? "masked" : scores[j].toFixed(3)));
        row.appendChild(el("td", { "class": "sb-p", "data-p": String(p) }, p.toFixed(4)));
        if (model) row.appendChild(el("td", {}, model[h * T * T + qi * T + j].toFixed(4)));
        t.appendChild(row);
      });
      neuronPane.appendChild(t);
    }

    var LONG = 64; // past this many rows the head view packs its rows and labels every few tokens
    function drawHead() { // labels in SVG (text only, so tokens stay text), lines on a canvas beneath them
      headPane.textContent = ""; state.hover = -1;
      headPane.appendChild(el("h3", {}, "head view - layer " + (state.layer + 1)));
      if (!state.heads.length) { headPane.appendChild(el("p", { id: "sb-nohead" }, "no head ticked: tick one or more heads above, or click a thumbnail")); }
      var names = units(), n = names.length, long = n > LONG, rowH = long ? Math.max(5, Math.floor(1600 / n)) : 18;
      var every = long ? Math.ceil(12 / rowH) : 1, w = 360, top = long ? 8 : 14, height = n * rowH + 2 * top, lines = [];
      if (long) headPane.appendChild(el("p", { "class": "sb-note", id: "sb-head-note" }, n + " rows, " + rowH + " px apart, every " +
        (every === 1 ? "" : every + (every === 2 ? "nd" : every === 3 ? "rd" : "th") + " ") + "token labelled (point at a row to see its lines); " +
        "line opacity is relative to each token's strongest line, so long rows of small weights stay visible"));
      var box = el("div", { "class": "sb-headbox", style: "width:" + w + "px;height:" + height + "px" });
      var canvas = el("canvas", { id: "sb-lines", style: "width:" + w + "px;height:" + height + "px" });
      var svg = el("svg:svg", { width: w, height: height, id: "sb-svg" });
      state.heads.forEach(function (hh) {
        var m = matrix(state.layer, hh);
        for (var i = 0; i < n; i++) {
          var peak = long ? Math.max.apply(null, Array.from(m[i])) : 1;
          for (var j = 0; j < n; j++) if (m[i][j] >= 0.01 && allowed(i, j)) lines.push([i, j, hh, Math.min(1, m[i][j] / peak)]);
        }
      });
      canvas.sbLines = lines;
      names.forEach(function (name, i) {
        if (i % every) return;
        svg.appendChild(el("svg:text", { x: 115, y: top + i * rowH + 4, "text-anchor": "end", "data-i": i, "class": "sb-left" }, name));
        svg.appendChild(el("svg:text", { x: w - 115, y: top + i * rowH + 4 }, name));
      });
      svg.addEventListener("mousemove", function (ev) { // the row under the pointer, labelled or not
        var r = svg.getBoundingClientRect(), row = Math.floor((ev.clientY - r.top - top + rowH / 2) / rowH);
        var i = ev.clientX - r.left < w / 2 && row >= 0 && row < n ? row : -1;
        if (i !== state.hover) focus(i);
      });
      svg.addEventListener("mouseleave", function () { focus(-1); });
      box.appendChild(canvas); box.appendChild(svg); headPane.appendChild(box);
      drawLines(canvas, w, height, rowH, top);
    }
    function drawLines(canvas, w, height, rowH, top) { // the lines of every ticked head, or only token state.hover's
      var ratio = Math.max(1, Math.min(window.devicePixelRatio || 1, Math.floor(32000 / height))); // canvases stop at 32k px
      canvas.width = w * ratio; canvas.height = height * ratio;
      var ctx = canvas.getContext("2d"), shown = canvas.sbLines.filter(function (x) { return state.hover < 0 || x[0] === state.hover; });
      ctx.scale(ratio, ratio); ctx.lineWidth = rowH < 10 ? 1 : 2;
      shown.forEach(function (x) {
        ctx.globalAlpha = x[3]; ctx.strokeStyle = COLORS[x[2] % COLORS.length];
        ctx.beginPath(); ctx.moveTo(120, top + x[0] * rowH); ctx.lineTo(w - 120, top + x[1] * rowH); ctx.stroke();
      });
      canvas.sbShown = shown.map(function (x) { return [x[0], x[1], x[2]]; }); // what is drawn, for tests and tools
      canvas.redraw = function () { drawLines(canvas, w, height, rowH, top); };
    }
    function focus(i) { // only the lines of token i (all lines for i = -1)
      state.hover = i;
      headPane.querySelectorAll("text.sb-left").forEach(function (t) { t.classList.toggle("sb-hot", t.getAttribute("data-i") === String(i)); });
      var canvas = headPane.querySelector("#sb-lines"); if (canvas) canvas.redraw();
    }
    var grid = null, canvases = [], pending = null;
    function drawModel() { // the grid is built once per level; a layer's thumbnails appear once its attention is ready
      modelPane.textContent = ""; canvases = [];
      modelPane.appendChild(el("h3", {}, "model view - click a head"));
      grid = el("div", { "class": "sb-grid", style: "grid-template-columns:repeat(" + (H + 1) + ",auto)" });
      grid.appendChild(el("span", {}, ""));
      for (var h = 0; h < H; h++) grid.appendChild(el("span", {}, "h" + (h + 1)));
      var px = Math.min(units().length, 48);
      for (var l = 0; l < L; l++) {
        grid.appendChild(el("span", {}, "L" + (l + 1))); canvases.push([]);
        for (var h2 = 0; h2 < H; h2++) {
          var c = el("canvas", { width: px, height: px, "data-layer": l, "data-head": h2, "class": "sb-pending", style: "width:40px;height:40px" });
          window.shatterboxKeys.operable(c, (function (ll, hh) { return function () { select(ll, [hh]); }; })(l, h2), "layer " + (l + 1) + ", head " + (h2 + 1));
          grid.appendChild(c); canvases[l].push(c);
        }
      }
      modelPane.appendChild(grid);
      markModel(); fillModel();
    }
    function fillModel() { // thumbnails of ready layers now, the others one layer per turn of the event loop
      clearTimeout(pending);
      var todo = [];
      for (var l = 0; l < L; l++) { if (cache[l] || l === state.layer) drawLayerThumbs(l); else todo.push(l); }
      (function next() {
        if (!todo.length) return;
        pending = setTimeout(function () { var l = todo.shift(); if (canvases[l][0].classList.contains("sb-pending")) drawLayerThumbs(l); next(); }, 0);
      })();
    }
    function drawLayerThumbs(l) {
      var px = canvases[l][0].width;
      canvases[l].forEach(function (c, h) { thumb(c, l, h, px); c.classList.remove("sb-pending"); });
    }
    function markModel() { // outline the selected head without redrawing
      canvases.forEach(function (row, l) { row.forEach(function (c, h) { c.classList.toggle("sb-on", l === state.layer && state.heads.length === 1 && state.heads[0] === h); }); });
    }
    var pooled = {};
    function pool(l, h, px) { // [px*px] max over the block of cells each pixel covers: a thin diagonal stays visible
      var key = state.level + l + "," + h;
      if (pooled[key]) return pooled[key];
      var n = units().length, a = layerData(l), off = h * T * T, m = state.level === "word" ? matrix(l, h) : null;
      var out = new Float32Array(px * px), i, j;
      for (i = 0; i < n; i++) {
        var y = Math.floor(i * px / n), row = y * px;
        for (j = 0; j < n; j++) {
          var v = m ? m[i][j] : a[off + i * T + j], p = row + Math.floor(j * px / n);
          if (v > out[p]) out[p] = v;
        }
      }
      return (pooled[key] = out);
    }
    function thumb(c, l, h, px) { // the matrix at the current level, max-pooled to px x px
      var cells = pool(l, h, px), ctx = c.getContext("2d"), img = ctx.createImageData(px, px);
      for (var q = 0; q < px * px; q++) {
        var col = ramp(cells[q]), p = q * 4;
        img.data[p] = col[0]; img.data[p + 1] = col[1]; img.data[p + 2] = col[2]; img.data[p + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    }
    function drawTable() {
      tablePane.textContent = "";
      var h = state.heads[0]; if (h === undefined) return;
      tablePane.appendChild(el("h3", {}, "probability table - layer " + (state.layer + 1) + ", head " + (h + 1) + " (rows attend to columns; each row sums to 1)"));
      var all = units(), f = sides(), m = matrix(state.layer, h), t = el("table", { "class": "sb-table", id: "sb-table" }), tr = el("tr");
      var index = all.map(function (_, i) { return i; });
      var rows = index.filter(function (i) { return !f || seqOf(i) === f[0]; }), cols = index.filter(function (j) { return !f || seqOf(j) === f[1]; });
      if (f) tablePane.appendChild(el("p", { id: "sb-table-filter" }, "rows: sentence " + state.filter[0] + ", columns: sentence " + state.filter[3] + " (values are shares of the whole row)"));
      if (rows.length > MAX_ROWS || cols.length > MAX_ROWS) tablePane.appendChild(el("p", { id: "sb-table-note" }, "showing the first " + MAX_ROWS + " of " + Math.max(rows.length, cols.length) + " rows and columns; `shatterbox attention ... --format csv` has them all"));
      rows = rows.slice(0, MAX_ROWS); cols = cols.slice(0, MAX_ROWS);
      tr.appendChild(el("th", {}, "")); cols.forEach(function (j) { tr.appendChild(el("th", {}, all[j])); }); t.appendChild(tr);
      rows.forEach(function (i) {
        var row = el("tr"), th = el("th", { "class": "sb-rowhead" + (i === state.word ? " sb-chosen" : ""), "data-i": i, title: "click: rank what this attends to" }, all[i]);
        window.shatterboxKeys.operable(th, function () { // the clicked row stays marked next to its ranking
          state.word = i; t.querySelectorAll("th.sb-rowhead").forEach(function (x) { x.classList.toggle("sb-chosen", x === th); }); drawRanking();
        });
        row.appendChild(th);
        cols.forEach(function (j) {
          var v = m[i][j], c = ramp(v);
          row.appendChild(el("td", { "data-j": j, style: "background:rgb(" + c[0] + "," + c[1] + "," + c[2] + ");color:" + (c[3] > 0.55 ? "#fff" : "#000") }, v.toFixed(3)));
        });
        t.appendChild(row);
      });
      tablePane.appendChild(t);
      drawRanking();
    }
    function drawRanking() { // what the clicked row attends to, heaviest first (the CLI's --word list)
      var old = root.querySelector("#sb-ranking"); if (old) old.remove();
      var h = state.heads[0], i = state.word, all = units();
      if (h === undefined || i < 0 || i >= all.length) return;
      var row = matrix(state.layer, h)[i], order = all.map(function (_, j) { return j; });
      order.sort(function (a, b) { return row[b] - row[a]; });
      var box = el("div", { id: "sb-ranking" }), list = el("ol");
      box.appendChild(el("h3", {}, "\u201c" + all[i] + "\u201d attends to - layer " + (state.layer + 1) + ", head " + (h + 1)));
      order.slice(0, MAX_ROWS).forEach(function (j) { list.appendChild(el("li", {}, all[j] + "  " + row[j].toFixed(3))); });
      box.appendChild(list); tablePane.appendChild(box);
    }
    function syncHeads() {
      headBox.querySelectorAll("input").forEach(function (cb) { cb.checked = state.heads.indexOf(+cb.getAttribute("data-head")) >= 0; });
    }
    function told() { if (onChange) onChange(state.layer, state.heads.slice()); }
    function select(l, heads, quiet) { state.layer = l; state.heads = heads; layerSel.value = String(l); syncHeads(); drawHead(); markModel(); drawTable(); drawNeuron(); if (!quiet) told(); }
    layerSel.addEventListener("change", function () { state.layer = +layerSel.value; drawHead(); markModel(); drawTable(); drawNeuron(); told(); });
    levelSel.addEventListener("change", function () { state.level = levelSel.value; state.hover = -1; state.word = -1; drawHead(); drawModel(); drawTable(); });
    filterSel.addEventListener("change", function () { state.filter = filterSel.value; drawHead(); drawTable(); });
    headBox.addEventListener("change", function () {
      state.heads = []; headBox.querySelectorAll("input").forEach(function (cb) { if (cb.checked) state.heads.push(+cb.getAttribute("data-head")); });
      drawHead(); markModel(); drawTable(); drawNeuron(); told();
    });
    drawModel(); select(0, [0], true);
    var api = { // a caller's own selection needs no echo; attention(l) is what every view of layer l reads
      select: function (l, heads) { select(l, heads, true); },
      attention: function (l) { return layerData(l); }
    };
    root.sbViews = api;
    return api;
  }
  window.shatterboxViews = { mount: mount };
  var data = document.getElementById("sb-data");
  if (data) mount(document.getElementById("sb-root"), JSON.parse(data.textContent));
  fitFrame();
  function fitFrame() { // inside a notebook's iframe: the frame follows the page's height, so nothing hides behind a scrollbar
    var frame = null;
    try { frame = window.frameElement; } catch (e) { return; } // a frame of another origin: leave it alone
    if (!frame || !window.ResizeObserver) return;
    var fit = function () { frame.style.height = (document.documentElement.scrollHeight + 4) + "px"; };
    new ResizeObserver(fit).observe(document.body); fit();
  }
})();
