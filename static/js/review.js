// The review room: one websocket per request, replayed from the database and then live.
// Protocol (README): JSON events {type, seq, time, request, payload}; reconnect with ?after=<last seq>.
// The viewer (modes, display/view, wipe, notes) is review-viewer.js, driven through window.ptReview.
(function () {
  "use strict";
  const root = document.getElementById("review");
  if (!root) return;
  const requestId = root.dataset.request;
  const first = parseInt(root.dataset.first, 10);
  const last = parseInt(root.dataset.last, 10);
  const fps = parseFloat(root.dataset.fps) || 24;
  const canPick = root.dataset.canPick === "1";
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;

  const tiles = new Map(); // variation id -> {el, img, frames: Set, status, notes: []}
  document.querySelectorAll(".tile").forEach((el) => {
    tiles.set(el.dataset.variation, {el, img: el.querySelector("img"), frames: new Set(), status: el.dataset.status, notes: []});
  });
  const byIndex = (i) => [...tiles.values()].find((t) => t.el.dataset.index === String(i));
  const label = (p) => p.label || (p.index !== undefined ? `v${String(p.index + 1).padStart(2, "0")}` : "");
  const clock = (iso) => new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});

  let lastSeq = 0;
  let frame = first;
  let playing = null;
  let socket = null;
  const seen = []; // every seq applied, in order (tests read it)
  const listeners = {frame: [], event: [], select: []};
  const api = window.ptReview = {
    seen, tiles, first, last, requestId, csrf, canPick,
    get lastSeq() { return lastSeq; }, get frame() { return frame; }, get socket() { return socket; },
    get selected() { return selected; },
    on(what, fn) { listeners[what].push(fn); },
    showFrame, select, post, pick: (t) => pick(t),
    // Which image a tile shows; the viewer replaces it to follow the layer and display/view.
    tileUrl: (id, f) => `/media/variations/${id}/proxy/${f}.jpg`,
  };

  function showTileFrame(t, id, f) {
    t.img.src = api.tileUrl(id, f);
    t.img.dataset.frame = f;
    t.img.hidden = false;
    t.el.querySelector(".placeholder").hidden = true;
  }

  function showFrame(f) {
    frame = Math.min(last, Math.max(first, f));
    document.getElementById("frame-number").textContent = frame;
    document.getElementById("scrub").value = frame;
    tiles.forEach((t, id) => { if (t.frames.has(frame)) showTileFrame(t, id, frame); });
    listeners.frame.forEach((fn) => fn(frame));
  }

  function logEvent(ev) {
    const p = ev.payload || {};
    const li = document.createElement("li");
    li.textContent = `${new Date(ev.time).toLocaleTimeString()} #${ev.seq} ${ev.type} ${label(p)}` +
      `${p.by ? " by " + p.by : ""}${p.note ? ": " + p.note : ""}${p.text ? ": " + p.text : ""}${p.error ? ": " + p.error : ""}`;
    li.dataset.type = ev.type;
    if (ev.type === "variation.progress" || ev.type === "variation.frame") li.className = "minor";
    document.getElementById("events").prepend(li);
  }

  function setStatus(text, cls) {
    const s = document.getElementById("request-status");
    s.textContent = text;
    s.className = "status " + cls;
  }

  function setTileStatus(t, status) {
    t.status = status;
    t.el.dataset.status = status;
    t.el.querySelector(".vstatus").textContent = status;
    if (status !== "done" && status !== "running") t.el.querySelector(".placeholder").textContent = `${t.el.dataset.label} · ${status}`;
  }

  function markPicked(variationId) {
    tiles.forEach((t, id) => {
      const on = id === String(variationId);
      t.el.classList.toggle("picked", on);
      t.el.querySelector(".picked-badge").hidden = !on;
    });
  }

  // Pick history: every pick, change of pick and reject-all, oldest first, as it happens.
  let picksSoFar = 0;
  function addPickHistory(ev, text) {
    const list = document.getElementById("pick-history");
    list.querySelector(".empty")?.remove();
    list.querySelectorAll("li").forEach((li) => li.classList.remove("current"));
    const li = document.createElement("li");
    li.className = "current";
    li.dataset.seq = ev.seq;
    li.textContent = `${text} ${clock(ev.time)}`;
    list.append(li);
    picksSoFar += 1;
  }

  // Coverage: the fraction of matte pixels, over all frames, the element filled. A flagged one (holes; the
  // server decides, see Variation.coverage_flagged) is floored so it never reads as 100%, and a pick of it
  // asks for an explicit override.
  const percent = (c, flagged) => `${(flagged ? Math.min(99.9, Math.floor(c * 1000) / 10) : c * 100).toFixed(1)}%`;
  function showCoverage(t, p) {
    if (p.coverage == null) return; // made before coverage was stored, or by a runner that measures none
    t.coverage = p.coverage;
    t.coverageFlagged = !!p.coverage_flagged;
    const cv = t.el.querySelector(".coverage");
    cv.textContent = `coverage ${percent(p.coverage, t.coverageFlagged)}${t.coverageFlagged ? " ⚠ holes" : ""}`;
    cv.classList.toggle("flagged", t.coverageFlagged);
    cv.title = t.coverageFlagged ? "the element leaves part of its matte empty; picking it needs an override" : "";
    t.el.classList.toggle("coverage-flagged", t.coverageFlagged);
  }

  function pick(t) {
    const data = {};
    if (t.coverageFlagged) {
      const ask = `${t.el.dataset.label} covers only ${percent(t.coverage, true)} of its matte: its element leaves holes ` +
        "in the plate. Pick it anyway? (recorded as a coverage override)";
      if (!window.confirm(ask)) return Promise.resolve(false);
      data.override_coverage = "1";
    }
    return post(`/variations/${t.el.dataset.variation}/pick`, data);
  }

  const tileFor = (p) => tiles.get(String(p.variation));
  const handlers = {
    "variation.started": (p) => { const t = tileFor(p); if (t) { setTileStatus(t, "running"); setStatus("Running", "running"); } },
    "variation.progress": (p) => { const t = tileFor(p); if (t) t.el.querySelector("progress").value = p.progress; },
    "variation.frame": (p) => {
      const t = tileFor(p);
      if (!t) return;
      t.frames.add(p.frame);
      if (p.frame === frame || t.img.hidden) showTileFrame(t, p.variation, p.frame === frame ? frame : p.frame);
    },
    "variation.done": (p) => {
      const t = tileFor(p);
      if (!t) return;
      setTileStatus(t, "done");
      t.el.querySelector("progress").value = 1;
      const fl = t.el.querySelector(".flicker");
      fl.textContent = `flicker ${p.flicker_ratio.toFixed(2)} · ${p.compute_seconds.toFixed(1)} s`;
      if (p.flicker_flagged) { fl.classList.add("flagged"); fl.title = "above the show's flicker threshold"; }
      showCoverage(t, p);
      const btn = t.el.querySelector(".pick");
      if (btn) btn.disabled = false;
    },
    "variation.failed": (p) => { const t = tileFor(p); if (t) { setTileStatus(t, "failed"); t.el.querySelector(".placeholder").textContent = p.error; } },
    "variation.cancelled": (p) => { const t = tileFor(p); if (t) setTileStatus(t, "cancelled"); },
    "request.started": () => setStatus("Running", "running"),
    "request.cancelled": () => setStatus("Cancelled", "cancelled"),
    "request.settled": (p) => setStatus(p.status === "review" ? "In review" : "Failed", p.status),
    "pick.made": (p, ev) => {
      markPicked(p.variation);
      const line = document.getElementById("pick-line");
      line.textContent = "Picked: ";
      line.append(Object.assign(document.createElement("b"), {textContent: p.label}), ` by ${p.by}`);
      setStatus("Picked", "picked");
      addPickHistory(ev, `${picksSoFar ? "changed to " : ""}${p.label} picked by ${p.by}${p.note ? " (" + p.note + ")" : ""}`);
    },
    "pick.rejected_all": (p, ev) => {
      markPicked(null);
      document.getElementById("pick-line").textContent = `All rejected by ${p.by}: ${p.note}`;
      setStatus("In review", "review");
      addPickHistory(ev, `all rejected by ${p.by}: “${p.note}”`);
    },
    "request.iterated": (p) => {
      const list = document.getElementById("iterations");
      if (list.querySelector(`a[data-request="${p.request}"]`)) return; // already on the page as it loaded
      const item = Object.assign(document.createElement("span"), {className: "iteration"});
      const link = Object.assign(document.createElement("a"), {href: `/requests/${p.request}/`, textContent: `request ${p.request}`});
      link.dataset.request = p.request;
      item.append(link, ` from ${p.label} by ${p.by}`);
      list.append(item);
      list.hidden = false;
      document.getElementById("lineage").hidden = false;
    },
    "note.added": (p) => {
      const t = tileFor(p);
      if (!t) return;
      t.notes.push(p);
      const count = t.el.querySelector(".note-count");
      count.hidden = false;
      count.textContent = `✎ ${t.notes.length}`;
    },
    "signoff.approved": (p) => { setStatus("Signed off", "signed_off"); document.getElementById("release-line").textContent = `Signed off by ${p.by}; releasing…`; },
    "signoff.sent_back": (p) => { setStatus("In review", "review"); document.getElementById("release-line").textContent = `Sent back by ${p.by}: ${p.note}`; },
    "release.progress": (p) => { document.getElementById("release-line").textContent = `Releasing: ${p.done}/${p.total} frames`; },
    "release.done": (p) => { setStatus("Released", "released"); document.getElementById("release-line").textContent = `Released v${String(p.version).padStart(3, "0")}: ${p.path}`; },
    "release.failed": (p) => { document.getElementById("release-line").textContent = `Release failed: ${p.error}`; },
  };

  function apply(ev) {
    if (ev.seq <= lastSeq) return; // never apply an event twice
    lastSeq = ev.seq;
    seen.push(ev.seq);
    (handlers[ev.type] || (() => {}))(ev.payload || {}, ev);
    logEvent(ev);
    listeners.event.forEach((fn) => fn(ev));
  }

  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/requests/${requestId}/?after=${lastSeq}`);
    socket.onopen = () => { retry = 500; document.getElementById("connection").textContent = "live"; };
    // Only events carry a seq; a pong or an error answer (type "error") is not one.
    socket.onmessage = (m) => { const ev = JSON.parse(m.data); if (typeof ev.seq === "number" && ev.type !== "pong") apply(ev); };
    socket.onclose = (e) => {
      const conn = document.getElementById("connection");
      // 4403: refused (wrong origin, not on the show, removed or deactivated): final, never retried.
      if (e.code === 4403) { conn.textContent = "not allowed"; return; }
      conn.textContent = "reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  // Picks and notes go over plain POSTs; the result comes back to everyone as an event.
  async function post(url, data) {
    const r = await fetch(url, {method: "POST", body: new URLSearchParams(data || {}),
      headers: {"X-CSRFToken": csrf, "X-Requested-With": "fetch"}});
    if (!r.ok) alert(await r.text());
    return r.ok;
  }
  document.querySelectorAll(".tile .pick").forEach((b) => b.addEventListener("click", (e) => {
    e.stopPropagation();
    pick(tiles.get(b.closest(".tile").dataset.variation));
  }));

  // Transport: a flipbook of every tile in sync, at the show's frame rate.
  function togglePlay() {
    const btn = document.getElementById("play");
    if (playing) { clearInterval(playing); playing = null; btn.textContent = "▶ Play"; return; }
    btn.textContent = "❚❚ Pause";
    playing = setInterval(() => showFrame(frame >= last ? first : frame + 1), 1000 / fps);
  }
  document.getElementById("play").addEventListener("click", togglePlay);
  document.getElementById("step-back").addEventListener("click", () => showFrame(frame - 1));
  document.getElementById("step-fwd").addEventListener("click", () => showFrame(frame + 1));
  document.getElementById("scrub").addEventListener("input", (e) => showFrame(parseInt(e.target.value, 10)));

  let selected = null;
  function select(t) {
    if (!t) return;
    tiles.forEach((x) => x.el.classList.remove("selected"));
    t.el.classList.add("selected");
    selected = t;
    listeners.select.forEach((fn) => fn(t));
  }
  tiles.forEach((t) => t.el.addEventListener("click", () => select(t)));

  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === " ") { e.preventDefault(); togglePlay(); }
    else if (e.key === "ArrowLeft") showFrame(frame - 1);
    else if (e.key === "ArrowRight") showFrame(frame + 1);
    else if (e.key === "Home") showFrame(first);
    else if (e.key === "End") showFrame(last);
    else if (/^[1-9]$/.test(e.key)) select(byIndex(parseInt(e.key, 10) - 1));
    else if (e.key === "p" && selected && canPick && selected.status === "done") {
      pick(selected);
    }
  });
  select(byIndex(0));
  connect();
})();
