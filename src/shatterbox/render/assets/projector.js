(function () {
  "use strict";
  // A scatter of up to tens of thousands of points on one canvas: a layer slider, a colouring, hover
  // (nearest point through a grid), click (onPick), PNG export. Data: render/projector.py projector_payload().
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79",
                 "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#9c9ede"];
  var OTHER = "#c7c7c7", PAD = 16, HIT = 6;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function mount(root, D, onPick) {
    var W = Math.max(320, Math.min(820, (root.clientWidth || 820) - 4)), H = Math.round(W * 0.68), n = D.text.length, state = { layer: D.layers.length - 1, colour: D.defaultColour, hover: -1 };
    root.textContent = "";
    var bar = el("div", { "class": "sbp-bar" }); root.appendChild(bar);
    var slider = el("input", { type: "range", min: 0, max: D.layers.length - 1, value: state.layer, id: "sbp-layer" });
    var layerLabel = el("span", { id: "sbp-layer-label" }), colourSel = el("select", { id: "sbp-colour" });
    Object.keys(D.colourings).forEach(function (name) { colourSel.appendChild(el("option", { value: name }, name)); });
    colourSel.value = state.colour;
    var png = el("button", { type: "button", id: "sbp-png" }, "PNG");
    bar.appendChild(el("label", {}, "layer ")); bar.appendChild(slider); bar.appendChild(layerLabel);
    bar.appendChild(el("label", {}, " colour ")); bar.appendChild(colourSel); bar.appendChild(png);
    var quality = el("p", { "class": "sbp-quality", id: "sbp-quality" }); root.appendChild(quality);
    var stage = el("div", { "class": "sbp-stage", style: "position:relative;width:" + W + "px;height:" + H + "px" });
    var canvas = el("canvas", { width: W, height: H, id: "sbp-canvas" }); stage.appendChild(canvas);
    var tip = el("div", { "class": "sbp-tip", id: "sbp-tip", hidden: "" }); stage.appendChild(tip);
    root.appendChild(stage);
    var legend = el("div", { "class": "sbp-legend", id: "sbp-legend" }); root.appendChild(legend);
    var picked = el("div", { "class": "sbp-picked", id: "sbp-picked" }); root.appendChild(picked);
    var screen = [], grid = {};

    function place() { // screen coordinates of the current layer, and a grid of cells HIT px wide for hover
      var L = D.layers[state.layer], xs = L.x, ys = L.y, minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity, i;
      for (i = 0; i < n; i++) { minX = Math.min(minX, xs[i]); maxX = Math.max(maxX, xs[i]); minY = Math.min(minY, ys[i]); maxY = Math.max(maxY, ys[i]); }
      var s = Math.min((W - 2 * PAD) / Math.max(maxX - minX, 1e-9), (H - 2 * PAD) / Math.max(maxY - minY, 1e-9));
      screen = new Float32Array(2 * n); grid = {};
      for (i = 0; i < n; i++) {
        var px = PAD + (xs[i] - minX) * s, py = H - PAD - (ys[i] - minY) * s, key = Math.floor(px / HIT) + "," + Math.floor(py / HIT);
        screen[2 * i] = px; screen[2 * i + 1] = py;
        (grid[key] = grid[key] || []).push(i);
      }
    }
    function colours() { // per point a colour, and the legend's entries
      var c = D.colourings[state.colour], out = new Array(n), entries = [];
      if (c.values) {
        var lo = Math.min.apply(null, c.values), hi = Math.max.apply(null, c.values);
        for (var i = 0; i < n; i++) { var t = hi > lo ? (c.values[i] - lo) / (hi - lo) : 0.5; out[i] = "rgb(" + Math.round(255 * t) + "," + Math.round(60 + 60 * (1 - t)) + "," + Math.round(255 * (1 - t)) + ")"; }
        entries.push([c.name + ": " + lo.toFixed(3) + " (blue) to " + hi.toFixed(3) + " (red)", "#888"]);
        return [out, entries];
      }
      var counts = c.names.map(function () { return 0; });
      c.codes.forEach(function (k) { counts[k]++; });
      var order = c.names.map(function (_, k) { return k; }).sort(function (a, b) { return counts[b] - counts[a]; }), colourOf = {};
      order.forEach(function (k, rank) { colourOf[k] = rank < PALETTE.length ? PALETTE[rank] : OTHER; });
      for (var j = 0; j < n; j++) out[j] = colourOf[c.codes[j]];
      order.slice(0, PALETTE.length).forEach(function (k) { entries.push([c.names[k] + " (" + counts[k] + ")", colourOf[k]]); });
      if (order.length > PALETTE.length) entries.push([(order.length - PALETTE.length) + " more (grey)", OTHER]);
      return [out, entries];
    }
    function draw() {
      var ctx = canvas.getContext("2d"), pair = colours(), fill = pair[0], byColour = {};
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
      for (var i = 0; i < n; i++) (byColour[fill[i]] = byColour[fill[i]] || []).push(i);
      Object.keys(byColour).forEach(function (col) { // one fillStyle per colour: thousands of points in a few ms
        ctx.fillStyle = col; ctx.globalAlpha = 0.75;
        byColour[col].forEach(function (i) { ctx.fillRect(screen[2 * i] - 1.5, screen[2 * i + 1] - 1.5, 3, 3); });
      });
      ctx.globalAlpha = 1;
      if (state.hover >= 0) { ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(screen[2 * state.hover] - 4, screen[2 * state.hover + 1] - 4, 8, 8); }
      legend.textContent = "";
      pair[1].forEach(function (e) { var s = el("span", {}, e[0]); s.style.borderLeft = "12px solid " + e[1]; legend.appendChild(s); });
    }
    function describe() {
      var L = D.layers[state.layer];
      layerLabel.textContent = " " + L.layer;
      quality.textContent = D.method.toUpperCase() + " of " + n.toLocaleString() + " " + D.level + "s at layer " + L.layer + ": trustworthiness@" + L.k + " " +
        L.trust.toFixed(3) + ", " + L.k + "-NN recall " + L.recall.toFixed(3) + " (how well the map keeps the full space's neighbours)";
    }
    function nearest(mx, my) {
      var best = -1, bestD = HIT * HIT, cx = Math.floor(mx / HIT), cy = Math.floor(my / HIT);
      for (var dx = -1; dx <= 1; dx++) for (var dy = -1; dy <= 1; dy++) {
        (grid[(cx + dx) + "," + (cy + dy)] || []).forEach(function (i) {
          var ddx = screen[2 * i] - mx, ddy = screen[2 * i + 1] - my, d = ddx * ddx + ddy * ddy;
          if (d <= bestD) { bestD = d; best = i; }
        });
      }
      return best;
    }
    function sentence(i, box) { // the text, its token marked (text nodes only: tokens are never markup)
      var text = D.texts[D.text[i]], span = D.spans ? D.spans[i] : null;
      box.textContent = "";
      if (span && span[0] >= 0) {
        box.appendChild(document.createTextNode(text.slice(0, span[0])));
        box.appendChild(el("mark", {}, text.slice(span[0], span[1])));
        box.appendChild(document.createTextNode(text.slice(span[1])));
      } else box.appendChild(document.createTextNode(text));
      var c = D.colourings[state.colour];
      box.appendChild(el("div", { "class": "sbp-label" }, state.colour + ": " + (c.values ? c.values[i].toFixed(3) : c.names[c.codes[i]])));
    }
    function hover(i) { // point i under the pointer (or chosen with the arrow keys): marked, its text in the tip
      if (i === state.hover) return;
      state.hover = i; draw();
      if (i < 0) { tip.hidden = true; return; }
      sentence(i, tip); tip.hidden = false;
      tip.style.left = Math.min(screen[2 * i] + 10, W - 260) + "px"; tip.style.top = (screen[2 * i + 1] + 10) + "px";
    }
    canvas.addEventListener("mousemove", function (ev) {
      var r = canvas.getBoundingClientRect();
      hover(nearest(ev.clientX - r.left, ev.clientY - r.top));
    });
    canvas.setAttribute("tabindex", "0"); // keyboard: arrows step through the points, Enter opens the one marked
    canvas.setAttribute("aria-label", "map: arrow keys step through the points, Enter opens one");
    canvas.addEventListener("keydown", function (ev) {
      var n = D.text.length, step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
      if (step) { ev.preventDefault(); hover(((state.hover < 0 ? (step > 0 ? -1 : 0) : state.hover) + step + n) % n); }
      else if (ev.key === "Enter") { ev.preventDefault(); canvas.click(); }
    });
    canvas.addEventListener("mouseleave", function () { state.hover = -1; tip.hidden = true; draw(); });
    canvas.addEventListener("click", function () {
      var i = state.hover; if (i < 0) return;
      sentence(i, picked);
      if (onPick) onPick({ text: D.texts[D.text[i]], sentence: D.sentenceIds[i], span: D.spans ? D.spans[i] : null });
    });
    slider.addEventListener("input", function () { state.layer = +slider.value; state.hover = -1; tip.hidden = true; place(); describe(); draw(); });
    colourSel.addEventListener("change", function () { state.colour = colourSel.value; draw(); });
    png.addEventListener("click", function () {
      var a = el("a", { download: "shatterbox-projector-layer-" + D.layers[state.layer].layer + ".png", href: canvas.toDataURL("image/png") });
      document.body.appendChild(a); a.click(); a.remove();
    });
    place(); describe(); draw();
    var api = { screen: function () { return Array.from(screen); }, layer: function (k) { state.layer = k; slider.value = k; place(); describe(); draw(); } };
    root.sbProjector = api;
    return api;
  }
  window.shatterboxProjector = { mount: mount };
  var data = document.getElementById("sbp-data");
  if (data) mount(document.getElementById("sbp-root"), JSON.parse(data.textContent));
})();
