// The review room's viewer: grid / in context / wipe / single, display/view switching, notes with drawn shapes,
// "iterate from here". Everything stays on review.js's flipbook frame.
(function () {
  "use strict";
  const R = window.ptReview;
  const root = document.getElementById("review");
  if (!R || !root) return;
  const $ = (id) => document.getElementById(id);
  const W = parseInt(root.dataset.width, 10);
  const H = parseInt(root.dataset.height, 10);
  const shotId = root.dataset.shot;
  const SVG = "http://www.w3.org/2000/svg";

  const state = {mode: "grid", layer: "incontext", display: root.dataset.display, view: root.dataset.view,
                 wipeA: null, wipeB: "plate", wipe: 0.5, mix: 1, note: null, tool: null, shape: null};
  window.ptViewer = state;

  // ---- image addresses -------------------------------------------------------------------------------------
  const isShowDV = () => state.display === root.dataset.display && state.view === root.dataset.view;
  function query(kind) {
    const q = new URLSearchParams();
    if (kind && kind !== "incontext") q.set("kind", kind);
    if (!isShowDV()) { q.set("display", state.display); q.set("view", state.view); }
    const s = q.toString();
    return s ? "?" + s : "";
  }
  // source: a variation id, or "plate"; kind: incontext | element (ignored for the plate)
  function url(source, f, kind) {
    if (source === "plate") return `/media/requests/${R.requestId}/plate/${f}.jpg${query(null)}`;
    return `/media/variations/${source}/proxy/${f}.jpg${query(kind || "incontext")}`;
  }
  const available = (source, f) => source === "plate" || (R.tiles.get(String(source))?.frames.has(f) ?? false);
  R.tileUrl = (id, f) => state.layer === "plate" ? url("plate", f) : url(id, f, state.layer);
  const nameOf = (source) => source === "plate" ? "plate" : (R.tiles.get(String(source))?.el.dataset.label || "?");

  // ---- the large view ------------------------------------------------------------------------------------------
  const imgA = $("img-a"), imgB = $("img-b"), handle = $("wipe-handle"), box = $("large-box");
  box.style.setProperty("--aspect", box.dataset.aspect);  // from data-: the CSP allows no style attribute
  function setImg(img, source, f, kind) {
    if (source == null || !available(source, f)) { img.hidden = true; img.removeAttribute("src"); return; }
    const src = url(source, f, kind);
    if (img.getAttribute("src") !== src) img.src = src;
    img.dataset.frame = f;
    img.dataset.source = source;
    img.hidden = false;
  }
  function selectedId() { return R.selected ? R.selected.el.dataset.variation : null; }

  function renderLarge(f) {
    const id = selectedId();
    const dvText = `${state.view} · ${state.display}`;
    imgA.style.clipPath = "";
    imgA.style.opacity = "";
    $("label-a").textContent = $("label-b").textContent = "";
    if (state.mode === "incontext") {
      setImg(imgB, "plate", f);
      setImg(imgA, id, f, "incontext");
      imgA.style.opacity = state.mix;
      $("hud").textContent = `${nameOf(id)} in context · ${f} · ${dvText}`;
    } else if (state.mode === "wipe") {
      setImg(imgB, state.wipeB, f, "incontext");
      setImg(imgA, state.wipeA, f, "incontext");
      imgA.style.clipPath = `inset(0 ${(100 - state.wipe * 100).toFixed(2)}% 0 0)`;
      handle.style.left = `${(state.wipe * 100).toFixed(2)}%`;
      $("label-a").textContent = `A ${nameOf(state.wipeA)}`;
      $("label-b").textContent = `B ${nameOf(state.wipeB)}`;
      $("hud").textContent = `wipe · ${f} · ${dvText}`;
    } else if (state.mode === "single") {
      setImg(imgB, null, f);
      setImg(imgA, state.layer === "plate" ? "plate" : id, f, state.layer);
      $("hud").textContent = `${nameOf(id)} · ${state.layer} · ${f} · ${dvText}`;
    }
    handle.hidden = state.mode !== "wipe";
    drawOverlay(f);
  }

  function render() {
    R.showFrame(R.frame);
    prefetch();
  }

  // ---- frame cache: what the view shows is fetched ahead, so the flipbook plays from memory ---------------------
  const cache = new Map(); // url -> {img, ok}
  const queue = [];
  let inflight = 0;
  function visibleSources() {
    const id = selectedId();
    if (state.mode === "grid") return [...R.tiles.keys()].map((t) => state.layer === "plate" ? ["plate"] : [t, state.layer]);
    if (state.mode === "incontext") return [["plate"], [id, "incontext"]];
    if (state.mode === "wipe") return [[state.wipeA, "incontext"], [state.wipeB, "incontext"]];
    return [[state.layer === "plate" ? "plate" : id, state.layer]];
  }
  function frameUrls(f) {
    return visibleSources().filter(([source]) => source != null && available(source, f)).map(([source, kind]) => url(source, f, kind));
  }
  function prefetch() {
    queue.length = 0;
    const n = R.last - R.first + 1;
    for (let k = 0; k < n; k++) {
      const f = R.first + ((R.frame - R.first + k) % n); // from the current frame on, as playback goes
      frameUrls(f).forEach((u) => { if (!cache.has(u)) queue.push(u); });
    }
    pump();
    drawCacheBar();
  }
  function pump() {
    while (inflight < 4 && queue.length) {
      const u = queue.shift();
      if (cache.has(u)) continue;
      const entry = {img: new Image(), ok: false};
      cache.set(u, entry);
      inflight += 1;
      entry.img.onload = () => { entry.ok = true; inflight -= 1; pump(); drawCacheBar(); };
      entry.img.onerror = () => { cache.delete(u); inflight -= 1; pump(); };
      entry.img.src = u;
    }
    while (cache.size > 3000) cache.delete(cache.keys().next().value);
  }
  let barPending = false;
  function drawCacheBar() {
    if (barPending) return;
    barPending = true;
    requestAnimationFrame(() => {
      barPending = false;
      const bar = $("cache-bar");
      const n = R.last - R.first + 1;
      if (bar.children.length !== n) bar.replaceChildren(...Array.from({length: n}, () => document.createElement("span")));
      [...bar.children].forEach((span, k) => {
        const urls = frameUrls(R.first + k);
        span.className = urls.length && urls.every((u) => cache.get(u)?.ok) ? "cached" : "";
      });
    });
  }
  window.ptCache = cache;
  R.on("frame", (f) => {
    $("note-frame").textContent = f;
    if (state.mode !== "grid") renderLarge(f);
  });
  R.on("event", (ev) => {
    if (ev.type === "variation.frame" && state.mode !== "grid" && ev.payload.frame === R.frame) renderLarge(R.frame);
    if (ev.type === "note.added") { renderNotes(); drawOverlay(R.frame); renderTicks(); }
    if (ev.type === "variation.done" || ev.type === "pick.made") updateSide();
    if (ev.type === "variation.done") prefetch();
  });
  R.on("select", () => {
    state.note = null;
    if (state.mode === "wipe" && state.wipeA !== "plate") state.wipeA = selectedId();
    syncWipeSelects();
    updateSide();
    renderNotes();
    renderTicks();
    if (state.mode !== "grid") { renderLarge(R.frame); prefetch(); }
  });

  // ---- modes ---------------------------------------------------------------------------------------------------
  function setMode(mode) {
    state.mode = mode;
    document.querySelectorAll(".mode").forEach((b) => b.classList.toggle("on", b.dataset.mode === mode));
    root.dataset.mode = mode;
    $("grid").hidden = mode !== "grid";
    $("large").hidden = mode === "grid";
    $("wipe-ctl").hidden = mode !== "wipe";
    $("mix-ctl").hidden = mode !== "incontext";
    $("layer-ctl").hidden = mode === "incontext" || mode === "wipe";
    if (mode === "wipe" && state.wipeA == null) { state.wipeA = selectedId(); syncWipeSelects(); }
    setTool(null);
    render();
  }
  document.querySelectorAll(".mode").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  R.tiles.forEach((t) => t.el.addEventListener("dblclick", () => setMode("single")));

  $("layer").addEventListener("change", (e) => { state.layer = e.target.value; render(); });
  $("display-view").addEventListener("change", (e) => {
    const o = e.target.selectedOptions[0];
    state.display = o.dataset.display;
    state.view = o.dataset.view;
    render();
  });
  $("mix").addEventListener("input", (e) => { state.mix = e.target.value / 100; renderLarge(R.frame); });

  // ---- wipe ----------------------------------------------------------------------------------------------------
  function wipeOptions(select) {
    select.replaceChildren(new Option("plate", "plate"));
    R.tiles.forEach((t, id) => select.append(new Option(t.el.dataset.label, id)));
  }
  wipeOptions($("wipe-a"));
  wipeOptions($("wipe-b"));
  function syncWipeSelects() {
    if (state.wipeA != null) $("wipe-a").value = state.wipeA;
    $("wipe-b").value = state.wipeB;
  }
  $("wipe-a").addEventListener("change", (e) => { state.wipeA = e.target.value; renderLarge(R.frame); prefetch(); });
  $("wipe-b").addEventListener("change", (e) => { state.wipeB = e.target.value; renderLarge(R.frame); prefetch(); });
  function swapWipe() { [state.wipeA, state.wipeB] = [state.wipeB, state.wipeA]; syncWipeSelects(); renderLarge(R.frame); }
  $("wipe-swap").addEventListener("click", swapWipe);

  // Drag anywhere on the frame to move the wipe, as in a review player.
  let dragging = false;
  function toFrame(e) {
    const r = box.getBoundingClientRect();
    return {x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))};
  }
  box.addEventListener("pointerdown", (e) => {
    e.preventDefault(); // no native image drag, which would cancel the pointer
    if (state.mode === "wipe") {
      dragging = true;
      box.setPointerCapture(e.pointerId);
      state.wipe = toFrame(e).x;
      renderLarge(R.frame);
    } else if (state.tool) {
      startShape(e);
    }
  });
  box.addEventListener("pointermove", (e) => {
    if (dragging) { state.wipe = toFrame(e).x; renderLarge(R.frame); }
    else if (drawing) extendShape(e);
  });
  const stop = () => { dragging = false; if (drawing) endShape(); };
  box.addEventListener("pointerup", stop);
  box.addEventListener("pointercancel", stop);

  // ---- notes and drawn shapes ------------------------------------------------------------------------------------
  const overlay = $("overlay");
  let drawing = false;
  function setTool(tool) {
    state.tool = tool;
    document.querySelectorAll(".tool").forEach((b) => b.classList.toggle("on", b.dataset.tool === tool));
    box.classList.toggle("drawing", !!tool);
  }
  document.querySelectorAll(".tool").forEach((b) => b.addEventListener("click", () => {
    if (state.mode === "grid" || state.mode === "wipe") setMode("incontext");
    setTool(state.tool === b.dataset.tool ? null : b.dataset.tool);
  }));
  $("clear-shape").addEventListener("click", () => { state.shape = null; drawOverlay(R.frame); updateIterate(); });

  const px = (e) => { const p = toFrame(e); return [Math.round(p.x * W * 10) / 10, Math.round(p.y * H * 10) / 10]; };
  let anchor = null;
  function startShape(e) {
    drawing = true;
    box.setPointerCapture(e.pointerId);
    anchor = px(e);
    state.note = null;
    state.shape = state.tool === "rect" ? {kind: "rect", x: anchor[0], y: anchor[1], width: 0, height: 0}
                                        : {kind: "stroke", points: [anchor]};
    drawOverlay(R.frame);
  }
  function extendShape(e) {
    const [x, y] = px(e);
    if (state.shape.kind === "rect") {
      Object.assign(state.shape, {x: Math.min(x, anchor[0]), y: Math.min(y, anchor[1]),
                                  width: Math.abs(x - anchor[0]), height: Math.abs(y - anchor[1])});
    } else {
      state.shape.points.push([x, y]);
    }
    drawOverlay(R.frame);
  }
  function endShape() {
    drawing = false;
    const s = state.shape;
    if ((s.kind === "rect" && (s.width < 2 || s.height < 2)) || (s.kind === "stroke" && s.points.length < 2)) state.shape = null;
    drawOverlay(R.frame);
    updateIterate();
    $("note-text").focus();
  }

  function shapeNode(shape, cls) {
    let node;
    if (shape.kind === "rect") {
      node = document.createElementNS(SVG, "rect");
      for (const k of ["x", "y", "width", "height"]) node.setAttribute(k, shape[k]);
    } else {
      node = document.createElementNS(SVG, "polyline");
      node.setAttribute("points", shape.points.map((p) => p.join(",")).join(" "));
    }
    node.setAttribute("class", cls);
    node.setAttribute("vector-effect", "non-scaling-stroke");
    return node;
  }
  function drawOverlay(f) {
    overlay.replaceChildren();
    const t = R.selected;
    if (!t || state.mode === "grid" || state.mode === "wipe") return;
    t.notes.filter((n) => n.shape && n.frame === f && n.note !== state.note)
      .forEach((n) => overlay.append(shapeNode(n.shape, "note-shape")));
    const chosen = t.notes.find((n) => n.note === state.note);
    if (chosen && chosen.shape && (chosen.frame == null || chosen.frame === f)) overlay.append(shapeNode(chosen.shape, "note-shape chosen"));
    if (state.shape) overlay.append(shapeNode(state.shape, "note-shape pending"));
  }

  function renderNotes() {
    const list = $("notes");
    list.replaceChildren();
    const t = R.selected;
    if (!t) return;
    if (!t.notes.length) list.append(Object.assign(document.createElement("li"), {className: "muted", textContent: "No notes yet."}));
    t.notes.forEach((n) => {
      const li = document.createElement("li");
      li.dataset.note = n.note;
      li.classList.toggle("chosen", n.note === state.note);
      const where = n.frame != null ? n.frame : "—";
      li.innerHTML = `<span class="at"></span> <b></b> <span class="text"></span>`;
      li.querySelector(".at").textContent = `${where}${n.shape ? " ✎" : ""}`;
      li.querySelector("b").textContent = n.by;
      li.querySelector(".text").textContent = n.text;
      li.addEventListener("click", () => chooseNote(n));
      list.append(li);
    });
  }
  function chooseNote(n) {
    state.note = n.note;
    state.shape = null;
    if (state.mode === "grid" || state.mode === "wipe") setMode("incontext");
    if (n.frame != null) R.showFrame(n.frame); else drawOverlay(R.frame);
    renderNotes();
  }
  function renderTicks() {
    const ticks = $("note-ticks");
    ticks.replaceChildren();
    const t = R.selected;
    if (!t || R.last === R.first) return;
    new Set(t.notes.filter((n) => n.frame != null).map((n) => n.frame)).forEach((f) => {
      const tick = document.createElement("span");
      tick.style.left = `${((f - R.first) / (R.last - R.first)) * 100}%`;
      tick.title = `notes at ${f}`;
      ticks.append(tick);
    });
  }

  $("note-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = selectedId();
    const text = $("note-text").value.trim();
    if (!id || !text) return;
    const data = {text};
    if ($("note-at-frame").checked) data.frame = R.frame;
    if (state.shape) data.shape = JSON.stringify(state.shape);
    if (await R.post(`/variations/${id}/notes`, data)) {
      $("note-text").value = "";
      state.shape = null;
      setTool(null);
      drawOverlay(R.frame);
      updateIterate();
    }
  });

  // ---- the side panel: selected variation, pick, iterate from here ------------------------------------------------
  function updateSide() {
    const t = R.selected;
    if (!t) return;
    $("side-title").textContent = `${t.el.dataset.label}${t.el.classList.contains("picked") ? " ★" : ""}`;
    $("side-meta").textContent = `seed ${t.el.dataset.seed} · ${t.status}${t.el.querySelector(".flicker").textContent ? " · " + t.el.querySelector(".flicker").textContent : ""}`;
    const pick = $("pick-selected");
    if (pick) pick.disabled = t.status !== "done";
    updateIterate();
  }
  function updateIterate() {
    const a = $("iterate");
    const t = R.selected;
    if (!a || !t) return;
    let href = `/shots/${shotId}/?from=${t.el.dataset.variation}`;
    const s = state.shape;
    if (s && s.kind === "rect") {
      const x = Math.floor(s.x), y = Math.floor(s.y);
      const w = Math.min(W - x, Math.ceil(s.x + s.width) - x), h = Math.min(H - y, Math.ceil(s.y + s.height) - y);
      href += `&rect=${x},${y},${w},${h}`;
      a.textContent = "Iterate in this box ↻";
    } else {
      a.textContent = "Iterate from here ↻";
    }
    a.href = href + "#ask";
  }
  $("pick-selected")?.addEventListener("click", () => {
    if (R.selected) R.pick(R.selected);
  });

  // ---- keys --------------------------------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const modes = {g: "grid", c: "incontext", w: "wipe", s: "single"};
    if (modes[e.key]) setMode(modes[e.key]);
    else if (e.key === "Escape") { if (state.tool) setTool(null); else setMode("grid"); }
    else if (e.key === "x" && state.mode === "wipe") swapWipe();
    else if (e.key === "x" && state.mode === "incontext") { state.mix = state.mix > 0.5 ? 0 : 1; $("mix").value = state.mix * 100; renderLarge(R.frame); }
    else if (e.key === "d" || e.key === "r") {
      if (state.mode === "grid" || state.mode === "wipe") setMode("incontext");
      setTool(e.key === "d" ? "stroke" : "rect");
    }
  });

  // Controls hand the keyboard back to the player once used: arrows step frames, not the select.
  document.querySelectorAll(".viewer-bar select, .viewer-bar input, #scrub").forEach((el) => el.addEventListener("change", () => el.blur()));
  document.querySelectorAll(".viewer-bar button, .transport button").forEach((el) => el.addEventListener("click", () => el.blur()));

  updateSide();
  renderNotes();
})();
