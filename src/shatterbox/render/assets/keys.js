// Keyboard use of what a mouse clicks: operable(node, action, label) makes a row, cell or thumbnail reachable with Tab and
// run with Enter or Space, as a button is. Loaded with the palette on every page (render/html.py: palette_script).
(function () {
  "use strict";
  function operable(node, action, label) {
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    if (label) node.setAttribute("aria-label", label);
    node.addEventListener("click", action);
    node.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); action(ev); }
    });
    return node;
  }
  window.shatterboxKeys = { operable: operable };
})();
