// The palette's JavaScript side: window.shatterboxPalette comes from shatterbox.render.palette (palette_json), and these
// functions are the Python ones (diverging, ramp) written once for the page; tests/render/test_palette.py compares them in Chromium.
(function () {
  "use strict";
  var P = window.shatterboxPalette;
  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function diverging(v) { // [r, g, b, opacity] of a value scaled to [-1, 1]: red up, blue down
    v = clamp(+v, -1, 1);
    var c = v >= 0 ? P.up : P.down;
    return [c[0], c[1], c[2], Math.round(Math.abs(v) * 1000) / 1000];
  }
  function ramp(w) { // [r, g, b, position] of a weight in [0, 1]: white to dark blue, square-root scale
    var s = Math.sqrt(clamp(+w, 0, 1));
    return [0, 1, 2].map(function (i) { return Math.round(P.low[i] + (P.high[i] - P.low[i]) * s); }).concat([s]);
  }
  function rgba(c) { return "rgba(" + c[0] + "," + c[1] + "," + c[2] + "," + c[3] + ")"; }
  function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }
  var root = document.documentElement.style; // the CSS variables the style sheets colour with (palette.css_variables)
  root.setProperty("--sb-up", rgb(P.up)); root.setProperty("--sb-down", rgb(P.down));
  root.setProperty("--sb-high", rgb(P.high)); root.setProperty("--sb-missing", P.missing);
  window.shatterboxColours = { diverging: diverging, ramp: ramp, rgba: rgba, rgb: rgb, missing: P.missing };
})();
