(function () {
  "use strict";
  // Every string from the server or the user goes into the page with textContent only.
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function answer(r) { // a response's JSON, or its error message as an Error
    return r.json().catch(function () { return { error: r.status + " " + r.statusText }; }).then(function (data) {
      if (!r.ok) throw new Error(data.error || (r.status + " " + r.statusText));
      return data;
    });
  }
  var waiting = {}, waitingId = 0; // requests running for more than a second: named, with their seconds, in the header
  function showWaiting() {
    var now = Date.now(), names = Object.keys(waiting).map(function (k) { return waiting[k]; }).filter(function (w) { return now - w.started >= 1000; });
    $("waiting").textContent = names.map(function (w) { return "waiting for " + w.what + " · " + Math.round((now - w.started) / 1000) + " s"; }).join(" · ");
    $("waiting").hidden = !names.length;
  }
  setInterval(showWaiting, 500);
  function api(path, body) { // every short request; one that takes more than a second shows in the header with its time
    var id = ++waitingId, what = path.replace(/^\/api\//, "").split("?")[0].replace(/\//g, " ");
    waiting[id] = { what: decodeURIComponent(what), started: Date.now() };
    return fetch(path, body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).then(answer)
      .then(function (d) { delete waiting[id]; showWaiting(); return d; }, function (err) { delete waiting[id]; showWaiting(); throw err; });
  }
  function duration(s) { return s < 60 ? Math.round(s) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s"; }
  function progressText(what, s) { // the server's job status: stage, done of total, elapsed, the time left
    return what + (s.stage ? " · " + s.stage : "") + (s.total ? " · " + s.done.toLocaleString("en-US") + " of " + s.total.toLocaleString("en-US") : "") +
      " · " + duration(s.elapsed) + " elapsed" + (s.estimate === null || s.estimate === undefined ? "" : " · about " + duration(s.estimate) + " left");
  }
  // A long request as a job (web/jobs.py): its progress beside the form, with elapsed time and a Cancel button;
  // a closed tab stops polling, and the server stops the work.
  function job(path, body, progressId, what) {
    var box = $(progressId), text = el("span", { "class": "job-text" }), cancel = el("button", { type: "button", "class": "job-cancel" }, "Cancel");
    var id = null, stopped = false;
    cancel.addEventListener("click", function () {
      stopped = true; cancel.disabled = true; text.textContent = what + " · cancelling…";
      if (id) fetch("/api/jobs/" + id, { method: "DELETE" });
    });
    box.textContent = ""; box.appendChild(text); box.appendChild(cancel); box.hidden = false;
    text.textContent = progressText(what, { elapsed: 0 });
    function done() { box.textContent = ""; box.hidden = true; }
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-Shatterbox-Job": "start" }, body: JSON.stringify(body) })
      .then(function (r) {
        if (r.status !== 202) return answer(r); // refused at once
        return r.json().then(function (started) {
          id = started.job;
          if (stopped) fetch("/api/jobs/" + id, { method: "DELETE" });
          return new Promise(function (resolve, reject) {
            (function poll() {
              if (stopped) { reject(new Error(what + ": cancelled")); return; } // the server stops the work; nothing to fetch
              fetch("/api/jobs/" + id).then(function (r) {
                if (r.status !== 202) return answer(r).then(resolve);
                return r.json().then(function (s) { if (!stopped) text.textContent = progressText(what, s); setTimeout(poll, 400); });
              }).catch(reject);
            })();
          });
        });
      })
      .then(function (d) { done(); return d; }, function (err) { done(); throw stopped ? new Error(what + ": cancelled") : err; });
  }
  function showNote(id, text) { var e = $(id); e.textContent = text || ""; e.hidden = !text; }
  function showError(id, err) { showNote(id, err ? (err.message || String(err)) : null); }
  function busy(form, on) { form.classList.toggle("busy", on); form.querySelectorAll("button").forEach(function (b) { b.disabled = on; }); }
  function run(form, errorId, work) { // one request at a time per form; errors shown next to the input
    var out = form.getAttribute("data-result") ? $(form.getAttribute("data-result")) : null; // the form's result box
    showError(errorId, null); busy(form, true);
    if (out) out.classList.add("stale"); // greyed while the new request runs
    return Promise.resolve().then(work).then(function () { if (out) out.classList.remove("stale"); },
      function (err) { showError(errorId, err); if (out) { out.textContent = ""; out.classList.remove("stale"); } }) // no old result under a new error
      .then(function () { busy(form, false); });
  }
  function wholeNumber(id, what) { // an input's whole number within its min and max, or one clear message naming the field
    var field = $(id), text = field.value.trim(), lo = field.getAttribute("min"), hi = field.getAttribute("max");
    var range = lo !== null && hi !== null ? " from " + lo + " to " + hi : lo !== null ? " of " + lo + " or more" : "";
    var v = Number(text);
    if (!text || !Number.isInteger(v) || (lo !== null && v < +lo) || (hi !== null && v > +hi)) {
      field.focus();
      throw new Error(what + ": give a whole number" + range + (text ? " (not " + text + ")" : ""));
    }
    return v;
  }

  // Ctrl+Enter (Cmd+Enter) in a form's text box submits that form
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && ev.target.form) { ev.preventDefault(); ev.target.form.requestSubmit(); }
  });

  // ---- tabs ----
  document.querySelectorAll("nav button[data-tab]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      document.querySelectorAll("nav button[data-tab]").forEach(function (b) { b.setAttribute("aria-selected", String(b === btn)); });
      document.querySelectorAll(".tab").forEach(function (s) { s.hidden = s.id !== "tab-" + btn.getAttribute("data-tab"); });
    });
  });

  // ---- model ----
  var info = null;
  api("/api/model").then(function (m) {
    info = m;
    $("model-name").textContent = m.title + " · " + m.layers + " layers × " + m.heads + " heads";
    for (var l = 1; l <= m.layers; l++) $("att-layer").appendChild(el("option", { value: l }, String(l)));
    for (var h = 1; h <= m.heads; h++) $("att-head").appendChild(el("option", { value: h }, String(h)));
    if (m.classifier) $("ex-label").setAttribute("placeholder", m.classifier.labels.join(" / "));
  }).catch(function (err) { showError("att-error", err); });

  // ---- "How to read this" under every tab: shatterbox/web/help.py, the manual's text ----
  api("/api/help").then(function (help) {
    document.querySelectorAll("[data-help]").forEach(function (p) { p.textContent = help[p.getAttribute("data-help")]; });
  }).catch(function (err) { showError("att-error", err); });

  // ---- form defaults: one source (shatterbox.options), served by /api/options ----
  api("/api/options").then(function (options) {
    document.querySelectorAll("[data-option]").forEach(function (field) {
      var where = field.getAttribute("data-option").split("."), spec = options[where[0]][where[1]];
      if (field.type === "number") {
        if (spec.ge !== null) field.min = spec.ge;
        if (spec.le !== null) field.max = spec.le;
      }
      field.value = spec.default;
      field.title = spec.help;
    });
  }).catch(function (err) { showError("att-error", err); });

  // ---- attention ----
  var views = null;
  function selectHead() { if (views) views.select(+$("att-layer").value - 1, [+$("att-head").value - 1]); }
  $("att-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var pair = $("att-pair").value.trim();
    views = null; $("att-views").textContent = ""; showNote("att-warning", null); // nothing stale stays under a new request
    run($("att-form"), "att-error", function () {
      return api("/api/trace", { text: $("att-text").value, pair: pair || null }).then(function (data) {
        views = window.shatterboxViews.mount($("att-views"), data, function (l, heads) { // one state: the form follows the views
          $("att-layer").value = String(l + 1);
          if (heads.length) $("att-head").value = String(heads[0] + 1);
        });
        selectHead();
        showNote("att-warning", data.warning ? "warning: " + data.warning : null);
      });
    });
  });
  $("att-layer").addEventListener("change", selectHead);
  $("att-head").addEventListener("change", selectHead);

  // ---- heads ----
  var keys = window.shatterboxKeys; // rows, cells and thumbnails reachable with Tab, run with Enter (render/assets/keys.js)
  var colours = window.shatterboxColours, HIGH = window.shatterboxPalette.high; // render/palette.py, via /static/palette.js
  function scoreColour(v, top) { var a = top > 0 ? Math.max(0, v) / top : 0; return colours.rgba(HIGH.concat([a.toFixed(3)])); }
  $("heads-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var texts = $("heads-texts").value.split("\n").filter(function (t) { return t.trim(); });
    run($("heads-form"), "heads-error", function () {
      if (!texts.length) throw new Error("type one sentence or more, one per line");
      return api("/api/heads", { texts: texts, top: 15 }).then(function (d) { headsSentence = texts[0]; drawHeads(d); });
    });
  });
  function drawHeads(d) {
    var box = $("heads-result"); box.textContent = "";
    box.appendChild(el("h3", {}, "Ranking score per head over " + d.texts + " sentence(s) — rows are layers, columns heads (from 1)"));
    var top = Math.max.apply(null, d.score.map(function (r) { return Math.max.apply(null, r); }));
    var grid = el("table", { "class": "heads-grid", id: "heads-grid" }), tr = el("tr");
    tr.appendChild(el("th", {}, "")); d.score[0].forEach(function (_, h) { tr.appendChild(el("th", {}, String(h + 1))); }); grid.appendChild(tr);
    d.score.forEach(function (row, l) {
      var r = el("tr"); r.appendChild(el("th", {}, String(l + 1)));
      row.forEach(function (v, h) {
        var td = el("td", { title: "layer " + (l + 1) + ", head " + (h + 1) + ": " + v.toFixed(3) + " (click: open in Attention)", "data-layer": l + 1, "data-head": h + 1 }, v.toFixed(2));
        keys.operable(td, function () { openHead(l + 1, h + 1); }, "layer " + (l + 1) + ", head " + (h + 1) + ": open in Attention");
        td.style.background = scoreColour(v, top); if (top > 0 && v / top > 0.55) td.style.color = "#fff";
        r.appendChild(td);
      });
      grid.appendChild(r);
    });
    box.appendChild(grid);
    var scale = el("p", { "class": "ex-legend ramp-legend", "data-scale": String(top) }); // the grid's colour scale
    scale.appendChild(el("span", {}, "0")); scale.appendChild(el("i")); scale.appendChild(el("span", {}, top.toFixed(2)));
    scale.appendChild(el("span", {}, "ranking score: white 0, darkest the highest here"));
    box.appendChild(scale);
    var kinds = Object.keys(d.summary).map(function (k) { return d.summary[k] + " " + k; }).join(" · ");
    box.appendChild(el("p", { "class": "ex-meta" }, "kinds: " + kinds));
    var all = d.score.length * d.score[0].length;
    box.appendChild(el("p", { "class": "total" }, "the " + d.ranking.length + " of " + all + " heads most worth inspecting (every head is in the heat map above)"));
    var t = el("table", { "class": "heads-table", id: "heads-ranking" }), h = el("tr");
    ["#", "layer", "head", "kind", "score", "why"].forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
    d.ranking.forEach(function (row, i) {
      var r = el("tr", { title: "click: open in Attention" });
      keys.operable(r, function () { openHead(row.layer, row.head); });
      [String(i + 1), String(row.layer), String(row.head), row.kind, row.score.toFixed(3), row.reason].forEach(function (c) { r.appendChild(el("td", {}, c)); });
      t.appendChild(r);
    });
    box.appendChild(t);
  }

  var headsSentence = null; // the first sentence of the ranking shown: the Attention tab opens on it
  function openHead(layer, head) { // a head of the Heads tab, shown in the Attention tab on the ranking's first sentence
    $("att-layer").value = String(layer); $("att-head").value = String(head);
    document.querySelector('nav button[data-tab="attention"]').click();
    if (views && $("att-text").value === headsSentence && !$("att-pair").value.trim()) { selectHead(); return; }
    $("att-text").value = headsSentence; $("att-pair").value = "";
    $("att-form").requestSubmit();
  }

  // ---- explain ----
  var plots = window.shatterboxPlots; // the text plot and the comparison, drawn by render/assets/plots.js as in notebooks
  function explainRequest(text) {
    var zero = $("ex-zero").value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    var method = $("ex-method").value, quick = method === "quick";
    return { text: text, method: quick ? "sampled" : method, pairs: quick ? 2 : null, label: $("ex-label").value.trim() || null, zero_shot: zero.length ? zero : null };
  }
  function drawExplain(box, d) {
    box.textContent = "";
    box.appendChild(d.rows ? plots.comparison(d) : plots.attribution(d));
  }
  var explained = null;
  $("ex-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var req = explainRequest($("ex-text").value);
    explained = null; $("ex-result").textContent = ""; $("cf").hidden = true; $("cf-result").textContent = ""; showError("cf-error", null);
    run($("ex-form"), "ex-error", function () {
      return api("/api/explain/plan", req).then(function (p) { // say what it will cost, then count the seconds
        var what = p.words + " words · " + p.plan.map(function (x) { return x.method + " " + x.evaluations.toLocaleString(); }).join(", ") +
          " model evaluations at most (+" + p.faithfulness + " per method for faithfulness)";
        return job("/api/explain", req, "ex-progress", "explaining: " + what);
      }).then(function (d) {
        explained = req; drawExplain($("ex-result"), d);
        $("cf").hidden = false; $("cf-text").value = req.text; $("cf-result").textContent = "";
      });
    });
  });
  function first(d) { return d.rows ? d.attributions[0] : d; }
  $("cf-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!explained) return;
    $("cf-result").textContent = "";
    // the original is the sentence in the main box now (the server's cache answers it when it was just explained)
    var current = Object.assign({}, explained, { text: $("ex-text").value });
    run($("cf-form"), "cf-error", function () {
      return api("/api/explain", current).then(function (before) {
        var old = first(before);  // same concrete method (exact or sampled), label and pairs on both sides
        var edited = Object.assign({}, current, { text: $("cf-text").value, label: old.label_name, method: old.method });
        return api("/api/explain", edited).then(function (after) {
          var now = first(after), box = $("cf-result"), li = old.label, scale = Math.max(plots.largest(old.values), plots.largest(now.values));
          var delta = now.prediction[li] - old.prediction[li];
          box.textContent = "";
          [["original", old], ["edited", now]].forEach(function (side) {
            var col = el("div", { "class": "cf-col", "data-side": side[0] });
            col.appendChild(el("h3", {}, side[0] + ": P(" + old.label_name + ") = " + side[1].prediction[li].toFixed(3)));
            col.appendChild(plots.attribution(side[1], { scale: scale, buttons: false }));
            box.appendChild(col);
          });
          box.appendChild(el("p", { "class": "ex-meta " + (delta >= 0 ? "delta-up" : "delta-down"), id: "cf-delta" },
            "P(" + old.label_name + ") changed by " + (delta >= 0 ? "+" : "") + delta.toFixed(3) + " after the edit"));
        });
      });
    });
  });

  // ---- projector: maps of the chosen store; a point opens its sentence in the Attention and Explain tabs ----
  document.querySelector('nav button[data-tab="projector"]').addEventListener("click", function () {
    (stores.length ? Promise.resolve() : loadStores()).then(function () {
      var name = window.shatterboxStore;
      $("proj-store").textContent = name ? "store: " + name : "Choose a store in the Corpus tab first.";
      $("proj-run").disabled = !name;
      return api("/api/factors").then(function (d) { // factor files fitted on this store can colour the points
        var pick = $("proj-factors"); pick.textContent = ""; pick.appendChild(el("option", { value: "" }, "none"));
        d.factors.filter(function (f) { return f.store === name; }).forEach(function (f) { pick.appendChild(el("option", { value: f.name }, f.name)); });
      });
    }).catch(function (err) { showError("proj-error", err); });
  });
  function openSentence(pick) { // from a map to the sentence-level tabs
    $("att-text").value = pick.text; $("att-pair").value = ""; $("ex-text").value = pick.text;
    document.querySelector('nav button[data-tab="attention"]').click();
    $("att-run").click();
  }
  $("proj-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = window.shatterboxStore; if (!name) return;
    var body = { method: $("proj-method").value, level: $("proj-level").value, pool: $("proj-pool").value, limit: +$("proj-limit").value, predict: $("proj-predict").checked,
                 colour: $("proj-factors").value ? null : $("proj-predict").checked ? "prediction" : null,
                 factors: $("proj-factors").value || null, factor: +$("proj-factor").value || 0 };
    var st = stores.filter(function (s) { return s.name === name; })[0], count = body.level === "sentence" && st && st.corpus ? Math.min(body.limit, st.corpus.sentences) : body.limit;
    var what = "mapping " + (body.level === "sentence" ? count.toLocaleString("en-US") + " sentences" : "up to " + count.toLocaleString("en-US") + " tokens") + " of " + name + " at every layer";
    run($("proj-form"), "proj-error", function () {
      return job("/api/stores/" + encodeURIComponent(name) + "/project", body, "proj-progress", what).then(function (d) {
        window.shatterboxProjector.mount($("proj-result"), d, openSentence);
      });
    });
  });

  // ---- probes: a property layer by layer on the chosen store, with its control task ----
  function probesTab() {
    var name = window.shatterboxStore;
    $("probes-store").textContent = name ? "store: " + name : "Choose a store in the Corpus tab first.";
    $("probes-run").disabled = !name;
    var pick = $("probes-random"), keep = pick.value;
    pick.textContent = ""; pick.appendChild(el("option", { value: "" }, "none"));
    if (!name) return Promise.resolve();
    return api("/api/stores/" + encodeURIComponent(name) + "/properties").then(function (d) { // offer only what this store can answer
      d.controls.forEach(function (c) { pick.appendChild(el("option", { value: c }, c)); }); // only true random-weight controls of it
      if (d.controls.indexOf(keep) >= 0) pick.value = keep;
      probeable = {};
      var list = $("probes-properties"); list.textContent = "";
      d.properties.forEach(function (p) {
        probeable[p.level + ":" + p.property] = p;
        if (!p.why && p.level === $("probes-level").value) list.appendChild(el("option", { value: p.property }, p.classes + " classes · " + p.examples.toLocaleString("en-US") + " examples"));
      });
      var missing = d.properties.filter(function (p) { return p.why && p.level === "token"; });
      showNote("probes-unavailable", missing.length ? "not in this store: " + missing.map(function (p) { return p.property + " (" + p.why + ")"; }).join("; ") : null);
    });
  }
  var probeable = {}; // "level:property" -> what the chosen store has of it (or why not)
  $("probes-level").addEventListener("change", function () { probesTab().catch(function (err) { showError("probes-error", err); }); });
  document.querySelector('nav button[data-tab="probes"]').addEventListener("click", function () {
    showError("probes-error", null);
    (stores.length ? Promise.resolve() : loadStores()).then(probesTab).catch(function (err) { showError("probes-error", err); });
  });
  function svgNode(text) { // the plot as Python drew it (render/probes.py): one renderer for the CLI's page and this tab
    var doc = new DOMParser().parseFromString(text, "image/svg+xml");
    if (doc.getElementsByTagName("parsererror").length) throw new Error("the plot could not be read");
    return document.importNode(doc.documentElement, true);
  }
  function probeTable(r, base) {
    var t = el("table", { "class": "ex-table", id: "probes-table" }), h = el("tr");
    var cols = ["layer", "accuracy", "control", "selectivity", "over majority or control"].concat(base ? ["random weights: accuracy", "random weights: selectivity"] : []).concat(["flag or note"]);
    cols.forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
    r.layers.forEach(function (s, i) {
      var row = el("tr"), cells = [String(s.layer), s.accuracy.toFixed(3) + " ± " + s.accuracy_ci.toFixed(3), s.control.toFixed(3) + " ± " + s.control_ci.toFixed(3),
        s.selectivity.toFixed(3) + " ± " + s.selectivity_ci.toFixed(3)];
      cells.push((s.over_baseline >= 0 ? "+" : "") + s.over_baseline.toFixed(3));
      if (base) cells.push(base.layers[i].accuracy.toFixed(3), base.layers[i].selectivity.toFixed(3));
      cells.push(s.flag || s.note || "");
      if (s.flag) row.className = "weak"; // flagged, never shown as an ordinary result
      cells.forEach(function (c) { row.appendChild(el("td", {}, c)); });
      t.appendChild(row);
    });
    return t;
  }
  $("probes-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = window.shatterboxStore; if (!name) return;
    var body = { property: $("probes-property").value.trim(), level: $("probes-level").value, kind: $("probes-kind").value,
                 limit: +$("probes-limit").value, random: $("probes-random").value || null };
    $("probes-result").textContent = "";
    run($("probes-form"), "probes-error", function () {
      var known = probeable[body.level + ":" + body.property];
      if (!body.property) { $("probes-property").focus(); throw new Error("type a property to probe, e.g. pos"); }
      if (known && known.why) throw new Error(body.property + " cannot be probed on " + name + ": " + known.why);
      return job("/api/stores/" + encodeURIComponent(name) + "/probe", body, "probes-progress", "probe " + body.property + " (fits: layers × folds × task and control)").then(function (d) {
        var r = d.result, box = $("probes-result");
        box.appendChild(el("p", { id: "probes-summary" }, r.property + " (" + r.level + ", " + r.kind + " probe): " + r.n_examples.toLocaleString() + " examples, " +
          r.n_classes + " classes; most frequent class " + r.majority.toFixed(3) + "; control labels agree with the task on " + r.chance_control.toFixed(3)));
        box.appendChild(svgNode(d.svg));
        box.appendChild(probeTable(r, d.random_weights));
      });
    });
  });

  // ---- corpus: the stores of the served folder; the chosen one is kept for the corpus tabs ----
  var stores = [];
  function storeRow(st) {
    var tr = el("tr", { "data-store": st.name });
    var pick = el("button", { type: "button", class: "use-store" }, "use");
    pick.disabled = !!st.error;
    pick.addEventListener("click", function () { chooseStore(st.name); });
    var cells = st.error ? [st.name, "damaged: " + st.error, "", "", "", ""] : [
      st.name, st.model.name + (st.model.hash === info.modelHash ? " (served model)" : " (another model)"),
      st.corpus.name + " · " + st.corpus.sentences.toLocaleString() + " sentences",
      (st.tokens || 0).toLocaleString(), st.columns.length + " (" + st.dtype + ")",
      (st.bytes / 1048576).toFixed(1) + " MiB" + (st.complete ? "" : " · incomplete")];
    cells.forEach(function (c) { tr.appendChild(el("td", {}, c)); });
    tr.appendChild(el("td")).appendChild(pick);
    return tr;
  }
  function chooseStore(name) {
    var st = stores.filter(function (s) { return s.name === name; })[0];
    if (!st) return;
    window.shatterboxStore = name;
    try { localStorage.setItem("shatterbox.store", name); } catch (e) { /* private mode */ }
    document.querySelectorAll("#corpus-stores tr[data-store]").forEach(function (r) { r.classList.toggle("chosen", r.getAttribute("data-store") === name); });
    var box = $("corpus-selected"); box.textContent = "";
    box.appendChild(el("h3", {}, "Using " + name));
    box.appendChild(el("p", { class: "columns" }, st.columns.map(function (c) { return c.name + "[" + c.width + "]"; }).join(", ")));
    $("corpus-form").hidden = false;
    $("corpus-result").textContent = "";
  }
  function loadStores() {
    return api("/api/stores").then(function (d) {
      stores = d.stores; info.modelHash = d.model_hash;
      var box = $("corpus-stores"); box.textContent = "";
      if (!stores.length) {
        box.appendChild(el("p", {}, d.folder === null ? "No store folder is served: start with shatterbox serve --stores DIR." : "No stores in " + d.folder + " yet: shatterbox harvest wordnet --limit 2000 --out " + d.folder + "/wordnet"));
        return;
      }
      var table = el("table", { id: "stores-table" });
      var head = el("tr");
      ["store", "model", "corpus", "tokens", "columns", "size", ""].forEach(function (h) { head.appendChild(el("th", {}, h)); });
      table.appendChild(head);
      stores.forEach(function (st) { table.appendChild(storeRow(st)); });
      box.appendChild(table);
      var saved = null;
      try { saved = localStorage.getItem("shatterbox.store"); } catch (e) { /* private mode */ }
      if (saved) chooseStore(saved);
    });
  }
  document.querySelector('nav button[data-tab="corpus"]').addEventListener("click", function () {
    run($("corpus-form"), "corpus-error", loadStores);
  });
  $("corpus-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    showOccurrences($("corpus-word").value, 0);
  });
  var PAGE = 20;
  function pager(box, offset, shown, total, size, go) { // "previous N" / "next N" buttons around a page of a longer list
    [["previous " + size, offset - size, offset > 0], ["next " + size, offset + size, offset + shown < total]].forEach(function (p) {
      if (!p[2]) return;
      var b = el("button", { type: "button", "class": "page" }, p[0]);
      b.addEventListener("click", function () { go(Math.max(0, p[1])); });
      box.appendChild(b);
    });
  }
  function showOccurrences(word, offset) { // one page of a word's occurrences, with "N–M of T" and the pages around it
    run($("corpus-form"), "corpus-error", function () {
      if (!word.trim()) { $("corpus-word").focus(); throw new Error("type a word to search for, e.g. bank"); }
      return api("/api/stores/" + encodeURIComponent(window.shatterboxStore) + "/occurrences", { word: word, limit: PAGE, offset: offset }).then(function (d) {
        var box = $("corpus-result"); box.textContent = "";
        var shown = d.rows.length ? (d.offset + 1) + "–" + (d.offset + d.rows.length) + " of " : "";
        box.appendChild(el("p", { class: "total" }, shown + d.total.toLocaleString("en-US") + " occurrence" + (d.total === 1 ? "" : "s") + " of " + d.word));
        pager(box, d.offset, d.rows.length, d.total, PAGE, function (at) { showOccurrences(word, at); });
        var list = el("ol", { id: "occurrences" });
        d.rows.forEach(function (r) {
          var li = el("li");
          li.appendChild(document.createTextNode(r.text.slice(0, r.char_start)));
          li.appendChild(el("mark", {}, r.text.slice(r.char_start, r.char_end)));
          li.appendChild(document.createTextNode(r.text.slice(r.char_end)));
          li.appendChild(el("span", { class: "meta" }, "  sentence " + r.sentence_id + ", token " + r.position));
          list.appendChild(li);
        });
        box.appendChild(list);
      });
    });
  }

  // ---- Factors tab ---------------------------------------------------------------------------
  var factorsFile = null;
  function curveSvg(curve, layers, top) { // importance by layer on a scale shared by the curves shown (0 to top), layers on x
    var ns = "http://www.w3.org/2000/svg", w = 180, h = 48, n = Math.max(curve.length - 1, 1);
    top = top || Math.max.apply(null, curve.concat([1e-12]));
    var svg = document.createElementNS(ns, "svg"); svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "curve");
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", curve.map(function (v, i) { return (8 + (w - 16) * i / n).toFixed(1) + "," + (h - 12 - (h - 20) * v / top).toFixed(1); }).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "#c03"); line.setAttribute("stroke-width", "1.8"); svg.appendChild(line);
    layers.forEach(function (l, i) { var t = document.createElementNS(ns, "text"); t.setAttribute("x", (8 + (w - 16) * i / n).toFixed(1)); t.setAttribute("y", h - 1); t.setAttribute("font-size", "9"); t.textContent = String(l); svg.appendChild(t); });
    return svg;
  }
  function marked(text, start, end) {
    var span = el("span");
    span.appendChild(document.createTextNode(text.slice(0, start)));
    span.appendChild(el("mark", {}, text.slice(start, end)));
    span.appendChild(document.createTextNode(text.slice(end)));
    return span;
  }
  function showFactor(index) {
    return api("/api/factors/" + encodeURIComponent(factorsFile) + "/factor/" + index).then(function (d) {
      var box = $("factors-detail"); box.textContent = "";
      box.appendChild(el("h3", {}, "Factor " + d.factor + (d.home === null ? "" : " (layer " + d.home + " dictionary)") + " · " + d.level + "-level · contexts at layer " + d.peak_layer));
      box.appendChild(curveSvg(d.curve, d.layers));
      var list = el("ol", { id: "factor-contexts" });
      d.contexts.forEach(function (c) {
        var li = el("li"); li.appendChild(el("span", { class: "meta" }, c.value.toFixed(2) + "  ")); li.appendChild(marked(c.text, c.start, c.end)); list.appendChild(li);
      });
      box.appendChild(list);
    });
  }
  var FACTORS_PAGE = 24;
  function showLevel(level, offset) { // one page of a level's factors, strongest first: "N–M of T", the pages around it
    offset = offset || 0;
    return api("/api/factors/" + encodeURIComponent(factorsFile) + "/level/" + level + "?limit=" + FACTORS_PAGE + "&offset=" + offset).then(function (d) {
      var box = $("factors-list"); box.textContent = "";
      var top = Math.max.apply(null, [1e-12].concat(d.factors.map(function (f) { return Math.max.apply(null, f.curve); })));
      if (d.factors.length) box.appendChild(el("p", { "class": "total" }, level + "-level factors " + (d.offset + 1) + "–" + (d.offset + d.factors.length) + " of " +
        d.total.toLocaleString("en-US") + ", strongest first; curves: importance by layer, all on one scale (0 to " + top.toFixed(3) + ")"));
      pager(box, d.offset, d.factors.length, d.total, FACTORS_PAGE, function (at) {
        run($("factors-list"), "factors-error", function () { return showLevel(level, at); });
      });
      d.factors.forEach(function (f) {
        var b = el("button", { type: "button", class: "factor", "data-factor": String(f.factor) }, "factor " + f.factor + " ");
        b.appendChild(curveSvg(f.curve, d.layers, top));
        b.addEventListener("click", function () { run($("factors-list"), "factors-error", function () { return showFactor(f.factor); }); });
        box.appendChild(b);
      });
      if (!d.factors.length) box.appendChild(el("p", {}, "No " + level + "-level factors."));
    });
  }
  function chooseFactors(item) {
    factorsFile = item.name;
    var box = $("factors-levels"); box.textContent = "";
    box.appendChild(el("h3", {}, item.name + " (store " + item.store + ")"));
    var table = el("table", { id: "factors-quality" }), head = el("tr");
    ["layer", "variance explained", "PCA, as many components", "mean L0", "dead %", "flag"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
    table.appendChild(head);
    Object.keys(item.reports).forEach(function (l) {
      var r = item.reports[l], tr = el("tr", r.flag ? { "class": "weak" } : {}); // below its PCA control: flagged, not ordinary
      [l, r.variance_explained.toFixed(3), r.pca_variance_explained.toFixed(3), r.mean_l0.toFixed(1), (100 * r.dead_fraction).toFixed(1), r.flag || ""].forEach(function (c) { tr.appendChild(el("td", {}, c)); });
      table.appendChild(tr);
    });
    box.appendChild(table);
    ["low", "mid", "high"].forEach(function (level) {
      var b = el("button", { type: "button", "data-level": level }, level + " (" + item.levels[level] + ")");
      b.addEventListener("click", function () { run($("factors-levels"), "factors-error", function () { return showLevel(level); }); });
      box.appendChild(b);
    });
    $("factors-form").hidden = false;
  }
  document.querySelector('nav button[data-tab="factors"]').addEventListener("click", function () {
    run($("factors-form"), "factors-error", function () {
      return api("/api/factors").then(function (d) {
        var box = $("factors-files"); box.textContent = "";
        if (!d.factors.length) { box.appendChild(el("p", {}, "No factor files in the served folder: shatterbox factors fit STORE --out DIR/NAME.factors")); return; }
        d.factors.forEach(function (item) {
          if (item.error) { box.appendChild(el("p", { class: "error" }, item.name + ": " + item.error)); return; }
          var b = el("button", { type: "button", "data-factors": item.name }, item.name);
          b.addEventListener("click", function () { chooseFactors(item); });
          box.appendChild(b);
        });
        var first = d.factors.filter(function (f) { return !f.error; })[0];
        if (first) chooseFactors(first);
      });
    });
  });
  $("factors-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var word = $("factors-word").value;
    run($("factors-form"), "factors-word-error", function () {
      if (!word.trim()) { $("factors-word").focus(); throw new Error("type an ambiguous word, e.g. heavy"); }
      $("factors-word-result").textContent = "";
      return api("/api/factors/" + encodeURIComponent(factorsFile) + "/word", { word: word }).then(function (d) {
        var box = $("factors-word-result");
        box.appendChild(el("p", { class: "total" }, d.word + ": " + d.senses + " senses, " + d.occurrences + " occurrences at layer " + d.layer +
          " · factor groups ARI " + d.factor_ari.toFixed(3) + " · k-means ARI " + d.kmeans_ari.toFixed(3) + " · shuffled senses " + d.chance_ari.toFixed(3)));
        if (d.flag) box.appendChild(el("p", { "class": "warning" }, "weak: " + d.flag));
        var table = el("table", { id: "sense-groups" }), head = el("tr");
        ["factor group", "sense", "sentence"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
        table.appendChild(head);
        d.rows.slice().sort(function (a, b) { return a.group - b.group || (a.synset < b.synset ? -1 : 1); }).forEach(function (r) {
          var tr = el("tr");
          tr.appendChild(el("td", {}, r.group < 0 ? "none" : "factor " + r.group));
          tr.appendChild(el("td", {}, r.synset));
          var td = el("td"); td.appendChild(marked(r.text, r.start, r.end)); tr.appendChild(td);
          table.appendChild(tr);
        });
        box.appendChild(table);
      });
    });
  });

  // ---- neurons: one unit of the chosen store explained and scored offline; runs searchable by explanation ----
  function neuronsTab() {
    var name = window.shatterboxStore, st = stores.filter(function (s) { return s.name === name; })[0];
    $("neurons-store").textContent = name ? "store: " + name : "Choose a store in the Corpus tab first.";
    $("neurons-run").disabled = !name;
    var useFactors = !!$("neurons-factors").value, kind = useFactors ? "hidden" : "mlp";
    var layers = st && st.columns ? st.columns.filter(function (c) { return c.kind === kind && c.layer > 0; }).map(function (c) { return c.layer; }) : [];
    var pick = $("neurons-layer"), keep = pick.value; pick.textContent = "";
    layers.forEach(function (l) { pick.appendChild(el("option", { value: l }, String(l))); });
    if (layers.indexOf(+keep) >= 0) pick.value = keep;
    var column = st && st.columns ? st.columns.filter(function (c) { return c.kind === kind && c.layer === +pick.value; })[0] : null;
    if (column && !useFactors) $("neurons-unit").setAttribute("max", String(column.width - 1)); else $("neurons-unit").removeAttribute("max");
    if (name && !layers.length) showError("neurons-error", new Error("the store " + name + " has no " + (useFactors ? "hidden states" : "MLP activations") + ": harvest with --what " + kind));
  }
  function loadNeuronLists() {
    var name = window.shatterboxStore;
    return Promise.all([api("/api/factors"), api("/api/neurons")]).then(function (both) {
      var pick = $("neurons-factors"), keep = pick.value; pick.textContent = ""; pick.appendChild(el("option", { value: "" }, "none (MLP neurons)"));
      both[0].factors.filter(function (f) { return f.store === name; }).forEach(function (f) { pick.appendChild(el("option", { value: f.name }, f.name)); });
      pick.value = keep;
      var runs = $("neurons-runs"); runs.textContent = "";
      both[1].runs.filter(function (r) { return !r.error; }).forEach(function (r) {
        runs.appendChild(el("option", { value: r.name }, r.name + " · " + r.units + " " + r.kind + "s of " + r.store));
      });
      $("neurons-search-run").disabled = !runs.options.length;
    });
  }
  document.querySelector('nav button[data-tab="neurons"]').addEventListener("click", function () {
    showError("neurons-error", null);
    (stores.length ? Promise.resolve() : loadStores()).then(loadNeuronLists).then(neuronsTab).catch(function (err) { showError("neurons-error", err); });
  });
  $("neurons-factors").addEventListener("change", function () { showError("neurons-error", null); neuronsTab(); });
  function excerptNode(ex) { // tokens shaded by the level the server computed (0-10); values in tooltips
    var p = el("p", { "class": "neuron-excerpt" });
    ex.pieces.forEach(function (piece, i) { // word pieces glued by the server (trace.glue), as in every other view
      if (ex.spaces[i]) p.appendChild(document.createTextNode(ex.spaces[i]));
      var span = el("span", { "class": "neuron-token", title: ex.activations[i].toFixed(3), "data-level": ex.levels[i] }, piece);
      if (ex.levels[i]) span.style.background = colours.rgba(HIGH.concat([ex.levels[i] / 10]));
      if (ex.levels[i] >= 6) span.style.color = "#fff";
      p.appendChild(span);
    });
    return p;
  }
  function scoreText(s) { return !s || s.value === null ? "–" : s.value.toFixed(3) + (s.low === null ? "" : " [" + s.low.toFixed(2) + ", " + s.high.toFixed(2) + "]"); }
  function unitNode(d) {
    var box = el("div", { "class": "neuron-unit" });
    box.appendChild(el("h3", {}, (d.name || ("layer " + d.layer + " " + d.kind + " " + d.unit))));
    box.appendChild(el("p", { "class": "neuron-explanation" }, "Explanation: " + d.explanation));
    if (d.flagged) box.appendChild(el("p", { "class": "neuron-flag" }, "flagged: " + d.reason + " (must beat both by 0.05, paired 95 % interval above 0)"));
    var t = el("table", { "class": "ex-table neuron-scores" }), h = el("tr");
    ["", "correlation", "detection", "fuzzing", "explanation"].forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
    ["explanation", "random", "shuffled", "token_lookup"].forEach(function (who) {
      var row = el("tr", { "data-who": who });
      [who.replace("_", " "), scoreText(d.scores[who].correlation), scoreText(d.scores[who].detection), scoreText(d.scores[who].fuzzing),
       who === "explanation" ? "" : (d.baselines[who] || "")].forEach(function (c) { row.appendChild(el("td", {}, c)); });
      t.appendChild(row);
    });
    box.appendChild(t);
    if (d.quantiles) box.appendChild(el("p", { "class": "hint" }, "largest activation " + d.maximum.toFixed(3) + "; per-sentence maximum: median " + d.quantiles.q50.toFixed(3) +
      ", 90 % " + d.quantiles.q90.toFixed(3) + ", 99 % " + d.quantiles.q99.toFixed(3)));
    box.appendChild(el("h4", {}, "Top excerpts"));
    d.excerpts.forEach(function (ex) { box.appendChild(excerptNode(ex)); });
    if (d.random_excerpts) {
      box.appendChild(el("h4", {}, "Random excerpts"));
      d.random_excerpts.forEach(function (ex) { box.appendChild(excerptNode(ex)); });
    }
    return box;
  }
  $("neurons-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = window.shatterboxStore; if (!name) return;
    run($("neurons-form"), "neurons-error", function () {
      var body = { layer: +$("neurons-layer").value, unit: wholeNumber("neurons-unit", "unit"), factors: $("neurons-factors").value || null };
      showNote("neurons-progress", "reading " + name + " for " + (body.factors ? "factor " : "neuron ") + body.unit + " of layer " + body.layer + ": two passes over the store");
      return api("/api/stores/" + encodeURIComponent(name) + "/neuron", body).then(function (d) { $("neurons-result").appendChild(unitNode(d)); });
    }).then(function () { showNote("neurons-progress", null); });
  });
  $("neurons-search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var runName = $("neurons-runs").value; if (!runName) return;
    $("neurons-search-result").textContent = "";
    run($("neurons-search-form"), "neurons-search-error", function () {
      return api("/api/neurons/" + encodeURIComponent(runName) + "?search=" + encodeURIComponent($("neurons-search").value.trim())).then(function (d) {
        var box = $("neurons-search-result");
        box.appendChild(el("p", { id: "neurons-search-summary" }, d.matches + " of " + d.total + " units match, best score first"));
        var t = el("table", { "class": "ex-table", id: "neurons-table" }), h = el("tr");
        ["layer", "unit", "explanation", "correlation", "random", "token lookup", "flag"].forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
        var detail = el("div", { id: "neurons-run-detail" });
        d.units.forEach(function (u) {
          var row = el("tr", { "data-unit": u.layer + ":" + u.unit });
          [String(u.layer), String(u.unit), u.explanation, scoreText(u.scores.explanation.correlation), scoreText(u.scores.random.correlation),
           scoreText(u.scores.token_lookup.correlation), u.flagged ? u.reason : ""].forEach(function (c) { row.appendChild(el("td", {}, c)); });
          keys.operable(row, function () {
            t.querySelectorAll("tr.chosen").forEach(function (r) { r.classList.remove("chosen"); });
            row.classList.add("chosen"); detail.textContent = ""; detail.appendChild(unitNode(u));
          });
          t.appendChild(row);
        });
        box.appendChild(t); box.appendChild(detail);
      });
    });
  });

  // ---- generate: prompt x generated-token heat map, drawn by render/assets/plots.js as in notebooks ----
  function drawGeneration(box, d) { box.textContent = ""; box.appendChild(plots.generation(d)); }
  $("gen-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = { prompt: $("gen-prompt").value, method: $("gen-method").value, max_new_tokens: +$("gen-tokens").value };
    if ($("gen-continuation").value) body.continuation = $("gen-continuation").value;
    if ($("gen-contrast").value) body.contrast = $("gen-contrast").value;
    run($("gen-form"), "gen-error", function () {
      return job("/api/generate", body, "gen-progress", "generate (forward passes)").then(function (d) { drawGeneration($("gen-result"), d); });
    });
  });

  // ---- patching: exact and attribution maps, drawn by render/assets/plots.js as in pages and notebooks ----
  $("pt-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = { clean: $("pt-clean").value, corrupt: $("pt-corrupt").value, model: $("pt-model").value, component: $("pt-component").value,
                 positions: $("pt-positions").value, direction: $("pt-direction").value, method: $("pt-method").value };
    if ($("pt-answer").value) body.answer = $("pt-answer").value;
    run($("pt-form"), "pt-error", function () {
      return job("/api/patch", body, "pt-progress", "patch (patched runs)").then(function (d) {
        var box = $("pt-result"); box.textContent = ""; box.appendChild(plots.patching(d));
      });
    });
  });

  // ---- lens and steering: drawn by render/assets/plots.js as in pages and notebooks ----
  document.querySelector('nav button[data-tab="lens"]').addEventListener("click", function () {
    api("/api/lens/tuned").then(function (d) {
      var pick = $("ln-tuned"), keep = pick.value; pick.textContent = ""; pick.appendChild(el("option", { value: "" }, "—"));
      d.stores.forEach(function (name) { pick.appendChild(el("option", { value: name }, name)); });
      pick.value = keep;
    }).catch(function (err) { showError("ln-error", err); });
  });
  $("ln-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = { text: $("ln-text").value, lens: $("ln-lens").value, k: +$("ln-k").value };
    if ($("ln-tuned").value) body.tuned = $("ln-tuned").value;
    run($("ln-form"), "ln-error", function () {
      return job("/api/lens", body, "ln-progress", "lens").then(function (d) {
        var box = $("ln-result"); box.textContent = ""; box.appendChild(plots.lens(d));
      });
    });
  });
  document.querySelector('nav button[data-tab="steering"]').addEventListener("click", function () {
    (stores.length ? Promise.resolve() : loadStores()).then(function () {
      var pick = $("st-store"), keep = pick.value; pick.textContent = ""; pick.appendChild(el("option", { value: "" }, "—"));
      stores.forEach(function (s) { pick.appendChild(el("option", { value: s.name }, s.name)); });
      pick.value = keep;
    }).catch(function (err) { showError("st-error", err); });
  });
  $("st-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = { prompts: $("st-prompts").value.split("\n").filter(function (p) { return p.trim(); }), direction: $("st-direction").value,
                 labels: $("st-labels").value, alphas: $("st-alphas").value, max_new_tokens: +$("st-tokens").value, concept: $("st-concept").value };
    if ($("st-store").value) body.store = $("st-store").value;
    if ($("st-layer").value !== "") body.layer = +$("st-layer").value;
    run($("st-form"), "st-error", function () {
      return job("/api/steer", body, "st-progress", "steer (prompts)").then(function (d) {
        var box = $("st-result"); box.textContent = ""; box.appendChild(plots.steering(d));
      });
    });
  });

  // ---- SAEs: core scores, sparse probing and absorption of a factors file, drawn by plots.js; a latent as Neuronpedia JSON ----
  function saeLink() {
    var name = $("sae-factors").value, link = $("sae-np-link");
    link.href = name ? "/api/sae/" + encodeURIComponent(name) + "/neuronpedia/" + Math.max(0, +$("sae-latent").value || 0) +
      ($("sae-layer").value !== "" ? "?layer=" + (+$("sae-layer").value) : "") : "#";
  }
  document.querySelector('nav button[data-tab="sae"]').addEventListener("click", function () {
    api("/api/factors").then(function (d) {
      ["sae-factors", "sae-control"].forEach(function (id) {
        var pick = $(id), keep = pick.value; pick.textContent = "";
        if (id === "sae-control") pick.appendChild(el("option", { value: "" }, "—"));
        d.factors.filter(function (f) { return !f.error; }).forEach(function (f) {
          pick.appendChild(el("option", { value: f.name }, f.name + " · " + f.store + " · layers " + f.layers.join(",")));
        });
        if (keep) pick.value = keep;
      });
      saeLink();
    }).catch(function (err) { showError("sae-error", err); });
  });
  ["sae-factors", "sae-latent", "sae-layer"].forEach(function (id) { $(id).addEventListener("change", saeLink); $(id).addEventListener("input", saeLink); });
  $("sae-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var kind = $("sae-eval").value, body = { factors: $("sae-factors").value };
    if ($("sae-control").value) body.control = $("sae-control").value;
    if (kind !== "score" && $("sae-layer").value !== "") body.layer = +$("sae-layer").value;
    if (kind === "score") body.texts = +$("sae-texts").value;
    if (kind === "probe") { body.property = $("sae-property").value; body.ks = $("sae-ks").value; body.seeds = +$("sae-seeds").value; }
    if (kind === "absorption") { body.words = +$("sae-words").value; body.seeds = +$("sae-seeds").value; }
    var draw = { score: plots.saeScores, probe: plots.sparseProbing, absorption: plots.absorption }[kind];
    run($("sae-form"), "sae-error", function () {
      return job("/api/sae/" + kind, body, "sae-progress", { score: "SAE scores (models)", probe: "sparse probing (tasks)", absorption: "absorption (seeds)" }[kind]).then(function (d) {
        var box = $("sae-result"); box.textContent = ""; box.appendChild(draw(d));
      });
    });
  });

  // ---- explain: the Dataset section (corpus-level attributions) ----
  function loadDatasets() {
    return api("/api/datasets").then(function (d) {
      var pick = $("ds-runs"), keep = pick.value; pick.textContent = ""; pick.appendChild(el("option", { value: "" }, "—"));
      d.runs.forEach(function (r) { pick.appendChild(el("option", { value: r.name }, r.name + " · " + r.texts + " texts of " + r.source)); });
      pick.value = keep;
    });
  }
  document.querySelector('nav button[data-tab="explain"]').addEventListener("click", function () {
    loadDatasets().catch(function (err) { showError("ds-error", err); });
  });
  function datasetWords(label, rows, direction, detail) {
    var t = el("table", { "class": "ex-table ds-words", "data-label": label, "data-direction": direction }), h = el("tr");
    ["word", "mean effect [95 %]", "texts", "up"].forEach(function (c) { h.appendChild(el("th", {}, c)); }); t.appendChild(h);
    rows.forEach(function (r) {
      var tr = el("tr", { "data-word": r.word, title: "click: the texts where it mattered most" });
      var ci = r.low === null || isNaN(r.low) ? "" : " [" + r.low.toFixed(3) + ", " + r.high.toFixed(3) + "]";
      [r.word, (r.mean >= 0 ? "+" : "") + r.mean.toFixed(4) + ci, String(r.texts), Math.round(100 * r.share_up) + " %"].forEach(function (c) { tr.appendChild(el("td", {}, c)); });
      keys.operable(tr, function () {
        document.querySelectorAll(".ds-words tr.chosen").forEach(function (x) { x.classList.remove("chosen"); });
        tr.classList.add("chosen"); detail.textContent = "";
        detail.appendChild(el("h4", {}, "Where “" + r.word + "” moved " + label + " most"));
        r.texts_shown.forEach(function (d) {
          var p = plots.words(d.words, d.values, plots.largest([d.values]), { marked: d.positions });
          p.classList.add("ds-text"); p.setAttribute("data-text", String(d.text_id));
          p.insertBefore(el("span", { "class": "ds-effect" }, (d.effect >= 0 ? "+" : "") + d.effect.toFixed(3) + "  "), p.firstChild);
          detail.appendChild(p);
        });
      });
      t.appendChild(tr);
    });
    return t;
  }
  function drawDataset(d) {
    var box = $("ds-result"); box.textContent = "";
    var skipped = Object.keys(d.skipped).map(function (k) { return d.skipped[k] + " " + k; }).join(", ");
    box.appendChild(el("p", { id: "ds-summary" }, d.texts + " texts explained (" + Math.round(1000 * d.seconds_per_text) + " ms each)" +
      (skipped ? "; left out: " + skipped : "") + (d.problems ? "; " + d.problems + " could not be explained" : "") + "; words in at least " + d.min_count + " texts"));
    var detail = el("div", { id: "ds-detail" });
    d.labels.forEach(function (label) {
      box.appendChild(el("h4", {}, label));
      var row = el("div", { "class": "side-by-side" });
      ["up", "down"].forEach(function (dir) {
        var col = el("div");
        col.appendChild(el("p", { "class": "ex-meta" }, "push " + label + " " + dir));
        col.appendChild(svgNode(d.svg[label][dir]));
        col.appendChild(datasetWords(label, d.words[label][dir], dir, detail));
        row.appendChild(col);
      });
      box.appendChild(row);
    });
    box.appendChild(detail);
  }
  function datasetRequest() { return { min_count: wholeNumber("ds-min", "in at least … texts"), limit: wholeNumber("ds-limit", "how many sentences") }; }
  $("ds-open").addEventListener("click", function () {
    var name = $("ds-runs").value; if (!name) { showError("ds-error", new Error("choose results to open (shatterbox explain --corpus FILE --results DIR/NAME)")); return; }
    $("ds-result").textContent = "";
    run($("ds-form"), "ds-error", function () { return api("/api/datasets/" + encodeURIComponent(name), { min_count: wholeNumber("ds-min", "in at least … texts") }).then(drawDataset); });
  });
  $("ds-run").addEventListener("click", function () {
    var name = window.shatterboxStore; if (!name) { showError("ds-error", new Error("choose a store in the Corpus tab first")); return; }
    $("ds-result").textContent = "";
    run($("ds-form"), "ds-error", function () {
      var body = datasetRequest();
      body.method = $("ds-method").value;
      return job("/api/stores/" + encodeURIComponent(name) + "/explain-corpus", body, "ds-progress", "explaining the first " + body.limit + " sentences of " + name + " (texts)").then(drawDataset);
    });
  });
})();
