// The attribution text plot, the method comparison table and the generation heat map, drawn once for every page:
// the notebook and saved HTML pages (render/plots.py embeds this file and the result's to_dict() JSON) and the web app's
// Explain and Generate tabs (served as /static/plots.js) call the same functions. Colours come from palette.js.
// tests/render/test_plots.py draws Python results in Chromium and compares every number and colour with the library's.
(function () {
  "use strict";
  var C = window.shatterboxColours, SVG = "http://www.w3.org/2000/svg";
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function signed(v, digits) { return (v >= 0 ? "+" : "") + v.toFixed(digits); }
  function colour(v, scale) { return C.rgba(C.diverging(scale > 0 ? v / scale : 0)); }
  function largest(values) { // the largest |value| of a grid (1 when every value is 0 or null): colours are value / scale
    var s = 0;
    values.forEach(function (row) { row.forEach(function (v) { if (v !== null && isFinite(v)) s = Math.max(s, Math.abs(v)); }); });
    return s > 0 ? s : 1;
  }
  function curve(points, stroke) { // a deletion or insertion curve: k words on x, probability on y
    var svg = document.createElementNS(SVG, "svg"), line = document.createElementNS(SVG, "polyline"), n = Math.max(points.length - 1, 1);
    svg.setAttribute("width", "100"); svg.setAttribute("height", "32"); svg.setAttribute("viewBox", "0 0 100 32"); svg.setAttribute("role", "img");
    line.setAttribute("fill", "none"); line.setAttribute("stroke", stroke); line.setAttribute("stroke-width", "1.5");
    line.setAttribute("points", points.map(function (y, k) { return (100 * k / n).toFixed(1) + "," + (30 - 28 * Math.min(Math.max(y, 0), 1)).toFixed(1); }).join(" "));
    svg.appendChild(line);
    return svg;
  }
  function table(head, rows, attrs) {
    var t = el("table", attrs || { "class": "ex-table" }), h = el("tr");
    head.forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { var td = el("td"); if (c instanceof Node) td.appendChild(c); else td.textContent = c; tr.appendChild(td); });
      t.appendChild(tr);
    });
    return t;
  }
  function faithfulness(f) {
    return table(["comprehensiveness ↑", "sufficiency ↓", "AOPC deletion ↑", "AOPC insertion ↑", "deletion curve", "insertion curve"],
      [[f.comprehensiveness.toFixed(3), f.sufficiency.toFixed(3), f.aopc_deletion.toFixed(3), f.aopc_insertion.toFixed(3),
        curve(f.deletion, C.rgb(window.shatterboxPalette.up)), curve(f.insertion, C.rgb(window.shatterboxPalette.down))]], { "class": "ex-table ex-faith" });
  }
  // Words coloured by their values (value / scale), each with its value (± its error) as a tooltip; options.marked: the
  // positions to underline (the Dataset tab's occurrences of a word).
  function words(ws, values, scale, options) {
    options = options || {};
    var p = el("p", { "class": "ex-words" }), marked = options.marked || [];
    ws.forEach(function (w, i) {
      var v = values[i], err = options.errors ? " ± " + options.errors[i].toFixed(4) : "";
      var s = el("span", { "class": "ex-word" + (marked.indexOf(i) >= 0 ? " ex-hit" : ""), title: w + ": " + signed(v, 4) + err, "data-value": String(v) }, w);
      s.style.background = colour(v, scale);
      p.appendChild(s); p.appendChild(document.createTextNode(" "));
    });
    return p;
  }
  // One attribution: the words of one label coloured by value (red pushes the label up, blue down), with a button per
  // label when there are several. options.scale: one colour scale shared by several plots; options.label: the label shown.
  function attribution(a, options) {
    options = options || {};
    var li = options.label === undefined ? a.label : options.label, scale = options.scale || largest(a.values), name = a.labels[li];
    var box = el("section", { "class": "sb-plot ex-attr", "data-method": a.method, "data-label": String(li) });
    box.appendChild(el("h3", {}, (a.title || a.method) + " — " + a.model));
    if (a.labels.length > 1 && options.buttons !== false) {
      var pick = el("div", { "class": "ex-labels" });
      a.labels.forEach(function (label, c) {
        var b = el("button", { type: "button", "data-label": String(c), "aria-pressed": String(c === li) }, label + " " + a.prediction[c].toFixed(3));
        b.addEventListener("click", function () { box.replaceWith(attribution(a, Object.assign({}, options, { label: c }))); });
        pick.appendChild(b);
      });
      box.appendChild(pick);
    }
    box.appendChild(el("p", { "class": "ex-meta ex-prediction" }, name + ": " + a.prediction[li].toFixed(3) + " for the text, " + a.base[li].toFixed(3) +
      " with every word masked · " + a.evaluations.toLocaleString("en-US") + " model evaluations · " + a.seconds.toFixed(3) + " s · masking: " + a.masking + " · units: " + a.units));
    box.appendChild(words(a.words, a.values.map(function (row) { return row[li]; }), scale,
                          { errors: a.error && a.error.map(function (row) { return row[li]; }) }));
    box.appendChild(legend(scale, a.units + ": red pushes " + name + " up, blue down"));
    if (a.faithfulness) box.appendChild(faithfulness(a.faithfulness));
    a.notes.forEach(function (n) { box.appendChild(el("p", { "class": "ex-note" }, n)); });
    return box;
  }
  function legend(scale, what) { // the colour scale: full blue at -scale, white at 0, full red at +scale
    var p = el("p", { "class": "ex-legend", "data-scale": String(scale) });
    p.appendChild(el("span", {}, (-scale).toFixed(3))); p.appendChild(el("i"));
    p.appendChild(el("span", {}, "+" + scale.toFixed(3))); p.appendChild(el("span", {}, what));
    return p;
  }
  function number(v) { return v === null ? "–" : v.toFixed(3); }
  // Several methods on one text: the summary table, then each method's plot.
  function comparison(d) {
    var box = el("div", { "class": "sb-plot ex-comparison" });
    var t = table(["method", "top words", "comprehensiveness ↑", "sufficiency ↓", "AOPC deletion ↑", "AOPC insertion ↑", "model evaluations", "seconds"],
      d.rows.map(function (r) {
        return [r.method, r.top.join(", "), number(r.comprehensiveness), number(r.sufficiency), number(r.aopc_deletion), number(r.aopc_insertion),
                r.evaluations.toLocaleString("en-US"), r.seconds.toFixed(3)];
      }), { "class": "ex-table ex-compare" });
    if (d.note) t.insertBefore(el("caption", {}, d.note), t.firstChild);
    box.appendChild(t);
    d.attributions.forEach(function (a) { box.appendChild(attribution(a)); });
    return box;
  }
  function token(t) { var s = t.replace(/\u2581/g, " ").replace(/\u0120/g, " ").trim(); return s || t; }
  // The prompt x generated-token heat map: one row per generated token, one column per source (italic: generated earlier);
  // empty grey cells come after the token. Colours are value / the largest |value| of the whole map.
  function generation(d) {
    var box = el("div", { "class": "sb-plot gen-plot" }), scale = largest(d.values);
    box.appendChild(el("p", { "class": "gen-summary" }, d.model + " — why each generated token (" + d.method + ", " + d.units + "). Prompt: “" + d.prompt +
      "” continuation: “" + d.continuation + "”"));
    var t = el("table", { "class": "gen-map" }), head = el("tr");
    head.appendChild(el("th", {}, "generated \\ source"));
    d.sources.forEach(function (s, j) { head.appendChild(el("th", j >= d.n_prompt_words ? { "class": "gen-earlier" } : {}, token(s.split(" (generated")[0]))); });
    head.appendChild(el("th", { title: "the token's log-probability (nats)" + (d.contrast ? " minus the alternative's" : "") }, d.contrast ? "log p − log p(alt)" : "log p"));
    if (d.faithfulness) head.appendChild(el("th", {}, "comprehensiveness"));
    t.appendChild(head);
    d.targets.forEach(function (target, i) {
      var tr = el("tr"), label = el("th", { "class": "gen-target" }, token(target));
      if (d.contrast) label.appendChild(el("span", { "class": "gen-vs" }, " vs " + token(d.contrast[i])));
      tr.appendChild(label);
      d.values[i].forEach(function (v, j) {
        var err = d.error && d.error[i][j] !== null ? d.error[i][j] : null;
        var td = el("td", { title: v === null ? "comes after this token" : signed(v, 3) + (err !== null ? " ± " + err.toFixed(3) : ""), "data-value": v === null ? "" : String(v) },
                    v === null ? "" : signed(v, 2));
        td.style.background = v === null ? C.missing : colour(v, scale);
        tr.appendChild(td);
      });
      tr.appendChild(el("td", {}, d.full[i].toFixed(2)));
      if (d.faithfulness) tr.appendChild(el("td", {}, d.faithfulness[i].comprehensiveness.toFixed(2)));
      t.appendChild(tr);
    });
    box.appendChild(t);
    box.appendChild(legend(scale, "nats: red raised the token's log-probability, blue lowered it"));
    box.appendChild(el("p", { "class": "gen-legend", "data-scale": String(scale) }, "Red raised the token's log-probability, blue lowered it (scale ±" + scale.toFixed(2) +
      "); italic sources were generated earlier; grey cells come after the token. " + d.evaluations.toLocaleString("en-US") + " forward passes, " + d.seconds.toFixed(2) + " s."));
    var notes = el("ul", { "class": "gen-notes" }); d.notes.forEach(function (n) { notes.appendChild(el("li", {}, n)); }); box.appendChild(notes);
    return box;
  }
  var DRAW = { attribution: attribution, comparison: comparison, generation: generation };
  // Replace every JSON script element with a data-sb-plot kind under root by its drawing.
  function mountAll(root) {
    root.querySelectorAll('script[type="application/json"][data-sb-plot]').forEach(function (s) {
      s.replaceWith(DRAW[s.getAttribute("data-sb-plot")](JSON.parse(s.textContent)));
    });
  }
  window.shatterboxPlots = { attribution: attribution, comparison: comparison, generation: generation, words: words, largest: largest, mountAll: mountAll };
})();
