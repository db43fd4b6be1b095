// The attribution text plot, the method comparison table, the generation heat map, the patching maps, the lens table,
// the steering slider and the SAE score tables, drawn once for every page:
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
  // A patching sweep: one heat map of the effect per method (0 = none, 1 = all of the clean behaviour, full colour at ±1),
  // rows = layers (or layer x head), columns = positions or heads; a click (or Enter) on a cell shows its patched prediction.
  function patchGrid(r) {
    var dims = r.dims, e = r.effect, rows = [], cols, cells = [];
    var layerName = function (l) { return r.component === "hidden" ? "hidden " + l : "L" + l; };
    if (dims.length === 1) {
      cols = ["all positions"];
      r.layers.forEach(function (l, i) { rows.push(layerName(l)); cells.push([[i]]); });
    } else if (dims.length === 3) {
      cols = r.positions;
      r.layers.forEach(function (l, i) { r.units.forEach(function (h, k) { rows.push("L" + l + " H" + h); cells.push(r.positions.map(function (_, j) { return [i, k, j]; })); }); });
    } else {
      cols = dims[1] === "head" ? r.units.map(function (h) { return "H" + h; }) : r.positions;
      r.layers.forEach(function (l, i) { rows.push(layerName(l)); cells.push(cols.map(function (_, j) { return [i, j]; })); });
    }
    var at = function (a, idx) { return idx.reduce(function (x, i) { return x[i]; }, a); };
    var size = { layer: r.layers.length, head: r.units.length, position: r.positions.length };
    return { rows: rows, cols: cols, cells: cells, value: function (idx) { return at(e, idx); }, cell: function (idx) {
      var flat = idx.reduce(function (f, i, k) { return f * size[dims[k]] + i; }, 0); // r.top lists the cells in row-major order
      var out = { effect: at(e, idx), value: at(r.values, idx), top: r.top.length ? r.top[flat] : null, top_prob: r.top_prob ? at(r.top_prob, idx) : null };
      dims.forEach(function (d, k) { out[d] = d === "layer" ? r.layers[idx[k]] : d === "head" ? r.units[idx[k]] : r.positions[idx[k]]; });
      return out;
    } };
  }
  function patchMap(r, picked) {
    var g = patchGrid(r), t = el("table", { "class": "patch-map", "data-method": r.method }), head = el("tr");
    head.appendChild(el("th"));
    g.cols.forEach(function (c) { head.appendChild(el("th", {}, c)); });
    t.appendChild(head);
    g.rows.forEach(function (name, i) {
      var tr = el("tr");
      tr.appendChild(el("th", {}, name));
      g.cells[i].forEach(function (idx) {
        var v = g.value(idx), td = el("td", { tabindex: "0", "class": "patch-cell", "data-value": v === null ? "" : String(v) }, v === null ? "–" : String(Math.round(100 * v) || 0));
        td.style.background = v === null ? C.missing : colour(v, 1);
        var show = function () {
          var c = g.cell(idx), where = ["layer", "head", "position"].filter(function (k) { return k in c; }).map(function (k) { return k + " " + c[k]; }).join(", ");
          picked.textContent = r.method + " · " + where + ": effect " + (c.effect === null ? "n/a" : c.effect.toFixed(3)) + ", metric " + c.value.toFixed(3) +
            (c.top !== null ? ", patched prediction “" + token(c.top) + "” (" + c.top_prob.toFixed(3) + ")" : " (an estimate: no patched run)");
        };
        td.title = "click: this cell's patched run";
        td.addEventListener("click", show);
        td.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(); } });
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return t;
  }
  function patching(d) {
    var r = d.result, box = el("div", { "class": "sb-plot patch-plot" }), picked = el("p", { "class": "patch-picked", "aria-live": "polite" }, "Click a cell for its patched prediction.");
    var way = r.direction === "denoise" ? "clean activations patched into the corrupted run" : "corrupted activations patched into the clean run";
    box.appendChild(el("p", { "class": "patch-summary" }, r.model + " — " + r.component + ", " + way + ". Metric: " + r.measure + "; clean “" + r.clean_text + "” " +
      r.clean.toFixed(3) + " (" + token(r.clean_top) + "), corrupted “" + r.corrupt_text + "” " + r.corrupt.toFixed(3) + " (" + token(r.corrupt_top) + ")."));
    if (d.other) box.appendChild(el("p", { "class": "patch-agreement" }, "Rank agreement of the two maps (Spearman): " + (d.agreement === null ? "n/a" : d.agreement.toFixed(3)) + "."));
    var maps = el("div", { "class": "patch-maps" });
    [r].concat(d.other ? [d.other] : []).forEach(function (m) {
      var one = el("div");
      one.appendChild(el("h4", {}, m.method + " patching · " + m.rows.toLocaleString("en-US") + " runs, " + m.seconds.toFixed(2) + " s"));
      one.appendChild(patchMap(m, picked));
      maps.appendChild(one);
    });
    box.appendChild(maps);
    box.appendChild(legend(1, "effect: 100 = the component carries all of the clean behaviour"));
    box.appendChild(picked);
    var notes = el("ul", { "class": "gen-notes" });
    [r].concat(d.other ? [d.other] : []).forEach(function (m) { m.notes.forEach(function (n) { notes.appendChild(el("li", {}, n)); }); });
    box.appendChild(notes);
    return box;
  }

  // A lens: rows = hidden layers (0 = embeddings), columns = the text's positions; each cell shows the layer's top token,
  // coloured by the probability the layer gives the model's final prediction there (red = 1), bold where that top token IS
  // the final prediction; a click (or Enter) lists the cell's top tokens, rank and KL. Classifier lens: one row per layer.
  function lens(d) {
    var box = el("div", { "class": "sb-plot lens-plot", "data-lens": d.lens });
    if (d.lens === "classifier") return classifierLens(d, box);
    var picked = el("p", { "class": "patch-picked", "aria-live": "polite" }, "Click a cell for its top tokens.");
    box.appendChild(el("p", { "class": "patch-summary" }, d.model + " — " + d.lens + " lens of “" + d.text + "”: each layer's top token; colour = the probability of the final prediction (red = 1); bold = the final prediction is on top."));
    var t = el("table", { "class": "patch-map lens-map" }), head = el("tr");
    head.appendChild(el("th", {}, "layer"));
    d.tokens.forEach(function (tok) { head.appendChild(el("th", {}, token(tok))); });
    head.appendChild(el("th", {}, "mean KL")); head.appendChild(el("th", {}, "top-1 agrees"));
    t.appendChild(head);
    d.layers.forEach(function (layer, i) {
      var tr = el("tr");
      tr.appendChild(el("th", {}, "hidden " + layer));
      d.tokens.forEach(function (_, j) {
        var top = d.top[i][j], p = d.prob[i][j], td = el("td", { tabindex: "0", "class": "patch-cell lens-cell", "data-prob": String(p), "data-rank": String(d.rank[i][j]) }, token(top[0][0]));
        td.style.background = colour(p, 1);
        if (d.rank[i][j] === 0) td.style.fontWeight = "700";
        var show = function () {
          picked.textContent = "hidden " + layer + ", position " + j + " (“" + token(d.tokens[j]) + "”): " + top.map(function (x) { return "“" + token(x[0]) + "” " + x[1].toFixed(3); }).join(", ") +
            " · final prediction “" + token(d.predicted[j]) + "” at rank " + d.rank[i][j] + " (p " + p.toFixed(3) + "), KL " + d.kl[i][j].toFixed(3) + " nats";
        };
        td.title = "click: this layer's top tokens";
        td.addEventListener("click", show);
        td.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(); } });
        tr.appendChild(td);
      });
      tr.appendChild(el("td", { "class": "lens-kl" }, d.mean_kl[i].toFixed(3)));
      tr.appendChild(el("td", { "class": "lens-agree" }, (100 * d.agreement[i]).toFixed(0) + " %"));
      t.appendChild(tr);
    });
    var last = el("tr", { "class": "lens-final" });
    last.appendChild(el("th", {}, "final prediction"));
    d.predicted.forEach(function (tok) { last.appendChild(el("td", {}, token(tok))); });
    t.appendChild(last);
    box.appendChild(t);
    box.appendChild(picked);
    var notes = el("ul", { "class": "gen-notes" }); d.notes.forEach(function (n) { notes.appendChild(el("li", {}, n)); }); box.appendChild(notes);
    return box;
  }
  function classifierLens(d, box) {
    box.appendChild(el("p", { "class": "patch-summary" }, d.classifier + " — its pooled head read at every layer of “" + d.text + "”."));
    var rows = d.layers.map(function (layer, i) {
      return ["hidden " + layer, d.predicted[i]].concat(d.probs[i].map(function (p) { return p.toFixed(3); })).concat([d.kl[i].toFixed(3)]);
    });
    box.appendChild(table(["layer", "predicted"].concat(d.labels.map(function (l) { return "p(" + l + ")"; })).concat(["KL to the last layer"]), rows, { "class": "ex-table lens-classifier" }));
    var notes = el("ul", { "class": "gen-notes" }); d.notes.forEach(function (n) { notes.appendChild(el("li", {}, n)); }); box.appendChild(notes);
    return box;
  }
  // Steering: a strength slider; for the chosen strength, each direction's continuation of every prompt with its concept
  // score and fluency, beside the unsteered model and prompting; then the summary over prompts (flagged rows say why).
  function steering(d) {
    var box = el("div", { "class": "sb-plot steer-plot" }), nonzero = d.alphas.filter(function (a) { return a !== 0; });
    box.appendChild(el("p", { "class": "patch-summary" }, d.model + " — steering at hidden layer " + d.layer + " (" + d.positions + " positions); concept: " + d.concept +
      (d.target ? " (" + d.target + ")" : "") + "; fluency: the unsteered model's log-probability per token (nats)."));
    box.appendChild(el("p", { "class": "steer-verdict" }, d.verdict));
    var label = el("label", {}, "strength "), slider = el("input", { type: "range", min: "0", max: String(Math.max(nonzero.length - 1, 0)), step: "1", value: "0", "class": "steer-alpha", "aria-label": "steering strength" });
    var shown = el("output", { "class": "steer-alpha-value" }, nonzero.length ? String(nonzero[0]) : "0");
    label.appendChild(slider); label.appendChild(shown); box.appendChild(label);
    var holder = el("div", { "class": "steer-texts" });
    box.appendChild(holder);
    var draw = function () {
      var alpha = nonzero.length ? nonzero[+slider.value] : 0;
      shown.textContent = String(alpha);
      holder.textContent = "";
      d.prompts.forEach(function (prompt, k) {
        var rows = d.rows.filter(function (r) { return r.prompt === k && (r.alpha === alpha || r.alpha === 0 || r.alpha === null); });
        holder.appendChild(el("h4", {}, "“" + prompt + "”"));
        holder.appendChild(table(["direction", "strength", "concept", "fluency", "continuation"], rows.map(function (r) {
          return [r.direction, r.alpha === null ? "prompted" : String(r.alpha), r.concept.toFixed(3), r.fluency === null ? "–" : r.fluency.toFixed(3), r.text];
        }), { "class": "ex-table steer-rows" }));
      });
    };
    slider.addEventListener("input", draw);
    draw();
    box.appendChild(el("h4", {}, "Over all prompts"));
    box.appendChild(table(["direction", "strength", "concept", "concept change", "fluency", "fluency loss", "flag"], d.summary.map(function (s) {
      return [s.direction, s.alpha === null ? "prompted" : String(s.alpha), s.concept.toFixed(3), signed(s.concept_change, 3), s.fluency === null ? "–" : s.fluency.toFixed(3),
        s.fluency_loss === null ? "–" : s.fluency_loss.toFixed(3), s.flag];
    }), { "class": "ex-table steer-summary" }));
    var notes = el("ul", { "class": "gen-notes" }); d.notes.forEach(function (n) { notes.appendChild(el("li", {}, n)); }); box.appendChild(notes);
    return box;
  }
  // SAE scores (shatterbox.sae): one row per layer (or k, or SAE) with data attributes holding the library's numbers;
  // a row whose result does not beat its control is marked "flagged" and says why in its flag cell.
  function fixed(v, digits) { return v === null || v === undefined ? "–" : v.toFixed(digits); }
  function flaggedTable(head, rows, cls) {
    var t = el("table", { "class": "ex-table " + cls }), h = el("tr");
    head.forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
    rows.forEach(function (r) {
      var tr = el("tr", r.attrs);
      if (r.flag) tr.classList.add("flagged");
      r.cells.concat([r.flag || ""]).forEach(function (c) { tr.appendChild(el("td", {}, c)); });
      t.appendChild(tr);
    });
    return t;
  }
  function saeScores(d) {
    var box = el("div", { "class": "sb-plot sae-plot" }), ce = d.downstream === "ce", control = d.control.length > 0;
    box.appendChild(el("p", { "class": "patch-summary" }, (d.factors || "SAE") + " — held out; " + (ce ? "CE loss recovered: the LM loss with the layer spliced with its reconstruction, between the clean (1) and the zero-ablated (0) loss"
      : "embedding recovered: the sentence embedding with the layer spliced with its reconstruction, against zeroing it") + (control ? "; beside the random-weight control (" + d.control_file + ")" : "; no control given")));
    var head = ["layer", "variance explained", "PCA, as many components", "mean L0", "dead %", "dense %", ce ? "CE loss recovered" : "embedding recovered"]
      .concat(ce ? ["loss increase (nats)"] : []).concat(control ? ["control: variance explained", "control: recovered"] : []).concat(["flag"]);
    box.appendChild(flaggedTable(head, d.layers.map(function (r) {
      var cells = [String(r.layer), fixed(r.variance_explained, 3), fixed(r.pca_variance_explained, 3), fixed(r.mean_l0, 1), fixed(100 * r.dead_fraction, 1),
        fixed(100 * r.dense_fraction, 1), fixed(r.recovered, 3)].concat(ce ? [fixed(r.increase, 3)] : [])
        .concat(control ? [fixed(r["control variance_explained"], 3), fixed(r["control recovered"], 3)] : []);
      return { cells: cells, flag: r.flag, attrs: { "data-layer": String(r.layer), "data-ve": String(r.variance_explained), "data-recovered": String(r.recovered) } };
    }), "sae-scores"));
    if (d.note) box.appendChild(el("p", { "class": "steer-verdict" }, d.note));
    return box;
  }
  function sparseProbing(d) {
    var box = el("div", { "class": "sb-plot sae-plot" }), rw = d.summary.length && d.summary[0].random_weights !== undefined;
    box.appendChild(el("p", { "class": "patch-summary" }, d.property + " at layer " + d.layer + ": " + d.classes.length + " task" + (d.classes.length > 1 ? "s" : "") +
      " (one class against the rest, balanced); accuracy, mean over tasks ± sd over " + d.seeds + " seeds; control: k random live latents"));
    var head = ["k", "accuracy", "± sd", "k random latents", "dense probe", "majority"].concat(rw ? ["random-weight SAE"] : []).concat(["flag"]);
    box.appendChild(flaggedTable(head, d.summary.map(function (r) {
      return { cells: [String(r.k), fixed(r.accuracy, 3), fixed(r.accuracy_sd, 3), fixed(r.control, 3), fixed(r.dense, 3), fixed(r.majority, 3)].concat(rw ? [fixed(r.random_weights, 3)] : []),
               flag: r.flag, attrs: { "data-k": String(r.k), "data-accuracy": String(r.accuracy) } };
    }), "sae-probing"));
    return box;
  }
  function absorption(d) {
    var box = el("div", { "class": "sb-plot sae-plot" });
    box.appendChild(el("p", { "class": "patch-summary" }, "First-letter absorption at layer " + d.layer + " (SAEBench's rule; lower is better), mean ± sd over seeds"));
    box.appendChild(flaggedTable(["SAE", "absorption fraction", "± sd", "full absorption", "main latents per letter", "letter probe accuracy", "letters", "flag"], d.summary.map(function (r) {
      return { cells: [r.sae, fixed(r.absorption_fraction, 3), fixed(r.absorption_fraction_sd, 3), fixed(r.full_absorption, 3), fixed(r.splits, 2), fixed(r.probe_accuracy, 3), String(r.classes)],
               flag: r.flag, attrs: { "data-sae": r.sae, "data-fraction": String(r.absorption_fraction) } };
    }), "sae-absorption"));
    box.appendChild(el("h4", {}, "Per letter (first seed)"));
    box.appendChild(table(["letter", "words", "main latents", "absorption fraction", "full absorption", "probe accuracy"], d.letters.map(function (r) {
      return [r.letter, String(r.words), r.main.join(", "), fixed(r.absorption_fraction, 3), fixed(r.full_absorption, 3), fixed(r.probe_accuracy, 3)];
    }), { "class": "ex-table sae-letters" }));
    return box;
  }
  var DRAW = { attribution: attribution, comparison: comparison, generation: generation, patching: patching, lens: lens, steering: steering,
               saeScores: saeScores, sparseProbing: sparseProbing, absorption: absorption };
  // Replace every JSON script element with a data-sb-plot kind under root by its drawing.
  function mountAll(root) {
    root.querySelectorAll('script[type="application/json"][data-sb-plot]').forEach(function (s) {
      s.replaceWith(DRAW[s.getAttribute("data-sb-plot")](JSON.parse(s.textContent)));
    });
  }
  window.shatterboxPlots = { attribution: attribution, comparison: comparison, generation: generation, patching: patching, lens: lens, steering: steering,
                             saeScores: saeScores, sparseProbing: sparseProbing, absorption: absorption, words: words, largest: largest, mountAll: mountAll };
})();
