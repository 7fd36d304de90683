// The review room for a matte element (roto): toggles between the matte as a coloured overlay over the plate,
// the matte alone and its outline over the plate. They drive review-viewer.js's layer select, so the grid, the
// single view, the frame cache and the display/view all follow.
(function () {
  "use strict";
  const group = document.getElementById("matte-toggles");
  const layer = document.getElementById("layer");
  const V = window.ptViewer;
  if (!group || !layer || !V) return;
  const buttons = [...group.querySelectorAll(".matte-toggle")];
  function mark() { buttons.forEach((b) => b.classList.toggle("on", b.dataset.layer === layer.value)); }
  function choose(value) {
    if (V.mode === "incontext" || V.mode === "wipe") document.querySelector('.mode[data-mode="single"]').click();
    layer.value = value;
    layer.dispatchEvent(new Event("change"));
    mark();
  }
  buttons.forEach((b) => b.addEventListener("click", () => { choose(b.dataset.layer); b.blur(); }));
  layer.addEventListener("change", mark);
  const keys = {o: "incontext", a: "matte", e: "outline"};
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (keys[e.key]) choose(keys[e.key]);
  });
  window.ptRoto = {choose};
})();
