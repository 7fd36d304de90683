// A dailies session: one socket on the session's event stream (the request stream's protocol: {type, seq, time,
// session, payload}, reconnect with ?after=<last seq>). The driver's every change is one "drive" frame carrying
// the whole view; it comes back to everyone as a session.state event, which a follower applies as it is. A
// follower who touches a control steps away (unfollows); "Follow" lands them on the session's newest state.
(function () {
  "use strict";
  const root = document.getElementById("session");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($("session-data").textContent);
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const items = new Map(data.items.map((i) => [i.id, i]));
  const me = data.me;

  let view = Object.assign({}, data.state); // what this page shows
  let latest = Object.assign({}, data.state); // the session's state: the driver's view
  let driver = data.driver;
  let following = true;
  let lastSeq = data.last_seq;
  let present = data.present.slice();
  let socket = null;
  let timer = null;
  const seen = [];
  const errors = [];
  const marks = data.marks.slice();
  window.ptSession = {
    seen, errors, marks, items,
    get view() { return view; }, get latest() { return latest; }, get driver() { return driver; },
    get following() { return following; }, get lastSeq() { return lastSeq; }, get present() { return present; },
    get socket() { return socket; }, change, follow, hand: (to) => send({type: "hand", to}),
  };
  const isDriver = () => driver === me;

  // ---- image addresses -----------------------------------------------------------------------------------------
  const showDV = () => view.display === data.show_display && view.view === data.show_view;
  const graded = () => view.exposure !== 0 || view.gamma !== 1;
  function query(extra) {
    const q = new URLSearchParams(extra || {});
    if (!showDV()) { q.set("display", view.display); q.set("view", view.view); }
    if (graded()) { q.set("exposure", view.exposure); q.set("gamma", view.gamma); }
    const s = q.toString();
    return s ? "?" + s : "";
  }
  function variationUrl(id, f, kind) {
    if (kind === "alpha") return `/media/variations/${id}/look/${f}.jpg?kind=alpha`;
    if (graded()) return `/media/variations/${id}/look/${f}.jpg${query({kind: kind || "incontext"})}`;
    return `/media/variations/${id}/proxy/${f}.jpg${query(kind && kind !== "incontext" ? {kind} : null)}`;
  }
  function plateUrl(item, f) {
    if (graded()) return `/media/requests/${item.request}/look/${f}.jpg${query()}`;
    return `/media/requests/${item.request}/plate/${f}.jpg${query()}`;
  }
  const setSrc = (img, src) => { if (img.getAttribute("src") !== src) img.src = src; img.hidden = !src; };

  // ---- rendering -------------------------------------------------------------------------------------------------
  let gridItem = null;
  function buildGrid(item) {
    const grid = $("grid");
    grid.replaceChildren();
    item.variations.forEach((v, i) => {
      const fig = document.createElement("figure");
      fig.className = "tile";
      fig.dataset.variation = v.id;
      fig.dataset.status = v.status;
      const box = Object.assign(document.createElement("div"), {className: "frame-box"});
      const img = Object.assign(document.createElement("img"), {alt: v.label});
      img.hidden = true;
      box.append(img, Object.assign(document.createElement("div"), {className: "placeholder", textContent: `${v.label} · ${v.status}`}));
      const cap = document.createElement("figcaption");
      cap.append(Object.assign(document.createElement("b"), {textContent: String(i + 1)}), ` ${v.label}`);
      fig.append(box, cap);
      fig.addEventListener("click", () => change({tile: v.id}));
      grid.append(fig);
    });
    gridItem = item.id;
  }

  function render() {
    const item = items.get(view.item);
    if (!item) return;
    if (gridItem !== item.id) buildGrid(item);
    const f = view.frame;
    $("item-title").textContent = `${item.position + 1}. ${item.label}`;
    $("playlist").querySelectorAll("button.item").forEach((b) => b.classList.toggle("current", parseInt(b.dataset.item, 10) === item.id));
    const scrub = $("scrub");
    scrub.min = item.first; scrub.max = item.last; scrub.value = f;
    $("frame-number").textContent = f;
    $("note-frame").textContent = f;
    $("frame-range").textContent = `${item.first}–${item.last} @ ${data.fps} fps`;
    document.querySelectorAll(".mode").forEach((b) => b.classList.toggle("on", b.dataset.mode === view.mode));
    const alpha = view.channels === "alpha";
    $("grid").querySelectorAll(".tile").forEach((t) => {
      const id = parseInt(t.dataset.variation, 10);
      t.classList.toggle("selected", id === view.tile);
      const img = t.querySelector("img");
      if (t.dataset.status !== "done") return;
      setSrc(img, variationUrl(id, f, alpha ? "alpha" : "incontext"));
      t.querySelector(".placeholder").hidden = true;
    });
    const grid = view.mode === "grid";
    $("grid").hidden = !grid;
    $("large").hidden = grid;
    $("large").style.setProperty("--aspect", item.aspect);
    const a = $("img-a"), b = $("img-b");
    a.style.clipPath = "";
    const tile = view.tile;
    const dv = `${view.view} · ${view.display}`;
    const look = `${view.exposure >= 0 ? "+" : ""}${view.exposure} st · γ ${view.gamma}`;
    if (!grid) {
      if (alpha) { setSrc(b, ""); setSrc(a, tile ? variationUrl(tile, f, "alpha") : ""); }
      else if (view.mode === "single") { setSrc(b, ""); setSrc(a, tile ? variationUrl(tile, f) : ""); }
      else {
        setSrc(b, plateUrl(item, f));
        setSrc(a, tile ? variationUrl(tile, f) : "");
        if (view.mode === "wipe") a.style.clipPath = "inset(0 50% 0 0)";
      }
      $("wipe-handle").hidden = view.mode !== "wipe" || alpha;
      const name = item.variations.find((v) => v.id === tile)?.label || "—";
      $("hud").textContent = `${name} · ${view.mode}${alpha ? " · alpha" : ""} · ${f} · ${dv} · ${look}`;
      drawOutline(item, tile, f, view.mode === "incontext" && !alpha);
    } else {
      drawOutline(item, tile, f, false);
    }
    $("exposure").value = view.exposure; $("exposure-out").textContent = Number(view.exposure).toFixed(1);
    $("gamma").value = view.gamma; $("gamma-out").textContent = Number(view.gamma).toFixed(1);
    $("channels").value = view.channels;
    const opt = [...$("display-view").options].find((o) => o.dataset.display === view.display && o.dataset.view === view.view);
    if (opt) opt.selected = true;
    $("play").textContent = view.playing ? "❚❚ Pause" : "▶ Play";
    root.dataset.frame = f; root.dataset.item = view.item; root.dataset.tile = tile; root.dataset.mode = view.mode;
    playback();
  }

  // The matte outline in context: the element's alpha (a data image, no display transform) traced where it
  // crosses one half, drawn over the comp in the accent colour.
  const outlineImg = new Image();
  let outlineFor = "";
  function drawOutline(item, tile, f, on) {
    const canvas = $("outline");
    canvas.hidden = !on || !tile;
    if (canvas.hidden) return;
    const src = variationUrl(tile, f, "alpha");
    if (outlineFor === src && outlineImg.complete) return;
    outlineFor = src;
    outlineImg.onload = () => {
      const w = outlineImg.naturalWidth, h = outlineImg.naturalHeight;
      const work = Object.assign(document.createElement("canvas"), {width: w, height: h}).getContext("2d");
      work.drawImage(outlineImg, 0, 0);
      const px = work.getImageData(0, 0, w, h).data;
      canvas.width = w; canvas.height = h;
      const ctx = canvas.getContext("2d");
      const out = ctx.createImageData(w, h);
      const inside = (x, y) => px[(y * w + x) * 4] >= 128;
      for (let y = 1; y < h - 1; y++) {
        for (let x = 1; x < w - 1; x++) {
          const c = inside(x, y);
          if (c && (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1))) {
            const o = (y * w + x) * 4;
            out.data[o] = 240; out.data[o + 1] = 160; out.data[o + 2] = 48; out.data[o + 3] = 255;
          }
        }
      }
      ctx.putImageData(out, 0, 0);
      canvas.dataset.src = src;
    };
    outlineImg.src = src;
  }

  // Playback runs on every page from the state's frame; only play/pause and where it paused are sent.
  function playback() {
    const item = items.get(view.item);
    if (view.playing && !timer && item) {
      timer = setInterval(() => {
        view.frame = view.frame >= item.last ? item.first : view.frame + 1;
        render();
      }, 1000 / (data.fps || 24));
    } else if (!view.playing && timer) {
      clearInterval(timer);
      timer = null;
    }
  }

  // ---- changes: the driver's go to everyone; anyone else's step them away -----------------------------------
  function change(patch) {
    if (patch.item !== undefined && patch.item !== view.item) {
      const item = items.get(patch.item);
      patch = Object.assign({frame: item.first, tile: item.variations[0]?.id ?? null}, patch);
    }
    Object.assign(view, patch);
    if (isDriver()) send({type: "drive", state: Object.assign({}, view)});
    else if (following) { following = false; showControl(); }
    render();
  }

  function follow(on) {
    following = on;
    if (on) view = Object.assign({}, latest);
    showControl();
    render();
  }

  function showControl() {
    $("driver").textContent = driver;
    $("you-drive").hidden = !isDriver();
    const fb = $("follow");
    fb.hidden = isDriver();
    fb.textContent = following ? "Following ✓ (f: step away)" : "Stepped away · follow driver (f)";
    fb.classList.toggle("away", !following);
    $("take") && ($("take").hidden = isDriver());
    $("hand-ctl").hidden = !isDriver();
    const select = $("hand-to");
    const others = present.filter((u) => u !== me);
    select.replaceChildren(...others.map((u) => Object.assign(document.createElement("option"), {value: u, textContent: u})));
    $("presence").replaceChildren(...present.map((u) => Object.assign(document.createElement("span"), {
      className: "person" + (u === driver ? " driving" : ""), textContent: u + (u === driver ? " (driving)" : "")})));
    root.dataset.driver = driver;
    root.dataset.following = following ? "1" : "0";
  }

  function addMark(m) {
    const li = document.createElement("li");
    const item = items.get(m.item);
    li.dataset.kind = m.kind;
    li.textContent = `${m.kind === "pick" ? "★ pick" : "✎ note"} ${item ? item.label : ""} ${m.label}` +
      `${m.frame != null ? " @ " + m.frame : ""} by ${m.by}${m.text ? ": " + m.text : ""}`;
    $("marks").append(li);
  }

  const handlers = {
    "session.state": (p) => {
      latest = Object.assign({}, p);
      delete latest.by;
      if (following && !isDriver()) { view = Object.assign({}, latest); render(); }
    },
    "session.control": (p) => {
      driver = p.driver;
      if (isDriver()) { following = true; }
      showControl();
    },
    "session.presence": (p) => { present = p.present; showControl(); },
    "session.note": (p) => { const m = Object.assign({kind: "note"}, p); marks.push(m); addMark(m); },
    "session.pick": (p) => { const m = Object.assign({kind: "pick", frame: null, text: p.note}, p); marks.push(m); addMark(m); },
  };

  function apply(ev) {
    if (ev.seq <= lastSeq) return;
    lastSeq = ev.seq;
    seen.push(ev.seq);
    (handlers[ev.type] || (() => {}))(ev.payload || {}, ev);
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  let retry = 300;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/sessions/${data.session}/?after=${lastSeq}`);
    socket.onopen = () => { retry = 300; $("connection").textContent = "live"; root.dataset.live = "1"; };
    socket.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      if (ev.type === "error") { errors.push(ev); $("connection").textContent = `live · ${ev.message}`; return; }
      if (typeof ev.seq === "number" && ev.type !== "pong") apply(ev);
    };
    socket.onclose = (e) => {
      root.dataset.live = "0";
      if (e.code === 4403) { $("connection").textContent = "not allowed"; return; }
      $("connection").textContent = "reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  async function post(url, fields) {
    const r = await fetch(url, {method: "POST", body: new URLSearchParams(fields),
      headers: {"X-CSRFToken": csrf, "X-Requested-With": "fetch"}});
    if (!r.ok) errors.push({code: r.status, message: await r.text()});
    return r.ok;
  }

  // ---- controls --------------------------------------------------------------------------------------------------
  // The playlist, in the session's order; a supervisor or director moves an item up (everyone's list follows).
  const playlist = $("playlist");
  const ordered = () => [...items.values()].sort((x, y) => x.position - y.position);
  function buildPlaylist() {
    playlist.replaceChildren(...ordered().map((item, i, all) => {
      const li = document.createElement("li");
      const b = Object.assign(document.createElement("button"), {type: "button", className: "ghost item", textContent: item.label});
      b.dataset.item = item.id;
      b.classList.toggle("current", item.id === view.item);
      b.addEventListener("click", () => change({item: item.id}));
      li.append(b);
      if (data.can_drive && i > 0) {
        const up = Object.assign(document.createElement("button"), {type: "button", className: "ghost up", textContent: "↑", title: "move up"});
        up.addEventListener("click", () => {
          const order = all.map((x) => x.id);
          [order[i - 1], order[i]] = [order[i], order[i - 1]];
          post(`/sessions/${data.session}/order`, {order: order.join(",")});
        });
        li.append(up);
      }
      return li;
    }));
  }
  handlers["session.reordered"] = (p) => { p.order.forEach((id, i) => { items.get(id).position = i; }); buildPlaylist(); render(); };
  buildPlaylist();
  document.querySelectorAll(".mode").forEach((b) => b.addEventListener("click", () => change({mode: b.dataset.mode})));
  $("display-view").addEventListener("change", (e) => {
    const o = e.target.selectedOptions[0];
    change({display: o.dataset.display, view: o.dataset.view});
  });
  $("exposure").addEventListener("change", (e) => change({exposure: parseFloat(e.target.value)}));
  $("gamma").addEventListener("change", (e) => change({gamma: parseFloat(e.target.value)}));
  $("channels").addEventListener("change", (e) => change({channels: e.target.value}));
  $("play").addEventListener("click", () => change({playing: !view.playing}));
  const item = () => items.get(view.item);
  const step = (d) => change({playing: false, frame: Math.min(item().last, Math.max(item().first, view.frame + d))});
  $("step-back").addEventListener("click", () => step(-1));
  $("step-fwd").addEventListener("click", () => step(1));
  $("scrub").addEventListener("input", (e) => change({frame: parseInt(e.target.value, 10)}));
  $("follow").addEventListener("click", () => follow(!following));
  $("take")?.addEventListener("click", () => send({type: "hand", to: me}));
  $("hand").addEventListener("click", () => { if ($("hand-to").value) send({type: "hand", to: $("hand-to").value}); });
  $("note-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("note-text").value;
    if (!text.trim() || !view.tile) return;
    if (await post(`/sessions/${data.session}/notes`, {item: view.item, variation: view.tile, frame: view.frame, text})) $("note-text").value = "";
  });
  $("pick-selected")?.addEventListener("click", () => {
    if (view.tile) post(`/sessions/${data.session}/picks`, {item: view.item, variation: view.tile});
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const keys = {g: "grid", c: "incontext", w: "wipe", s: "single"};
    if (keys[e.key]) change({mode: keys[e.key]});
    else if (e.key === " ") { e.preventDefault(); change({playing: !view.playing}); }
    else if (e.key === "ArrowLeft") step(-1);
    else if (e.key === "ArrowRight") step(1);
    else if (e.key === "f") follow(!following);
    else if (/^[1-9]$/.test(e.key)) { const v = item().variations[parseInt(e.key, 10) - 1]; if (v) change({tile: v.id}); }
  });

  marks.forEach(addMark);
  showControl();
  render();
  connect();
})();
