// The roto page: draw key frames on the plate (polygon with feather, brush, erase, a box or a few clicks on an
// object), save them (the server rasterises them into the key-frame matte), ask for a pass and watch its mattes
// land over the plate as the worker writes them (the request's websocket), fix a frame for the next pass, lock
// and unlock frames. Shapes are sent in the plate's display-window pixels (x right, y down).
(function () {
  "use strict";
  const root = document.getElementById("roto");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  // The stage keeps the plate's display aspect: set through the CSSOM (the CSP allows no style attribute).
  if ($("stage")) $("stage").style.setProperty("--aspect", $("stage").dataset.aspect);
  const W = parseInt(root.dataset.width, 10), H = parseInt(root.dataset.height, 10);
  const first = parseInt(root.dataset.first, 10), last = parseInt(root.dataset.last, 10);
  const shot = root.dataset.shot, setName = root.dataset.set;
  const canDraw = root.dataset.canRequest === "1";
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const base = `/shots/${shot}/roto/${setName}`;

  const ui = {frame: first, tool: "polygon", shapes: [], pending: null, server: null, socket: null, socketPass: null,
              computed: new Map(), seen: []};
  window.ptRoto = ui;

  // ---- images ------------------------------------------------------------------------------------------------
  const plateImg = $("plate-img"), passImg = $("pass-img"), keyCanvas = $("key-layer"), drawCanvas = $("draw-layer");
  const latestPass = () => (ui.server && ui.server.passes.length ? ui.server.passes[ui.server.passes.length - 1] : null);
  const keyAt = (f) => ui.server && ui.server.keys.find((k) => k.frame === f);
  const passDone = (p, f) => (ui.computed.get(p.number) || new Set()).has(f);

  function showFrame(f) {
    ui.frame = Math.min(last, Math.max(first, f));
    $("frame-number").textContent = ui.frame;
    $("scrub").value = ui.frame;
    const src = `/media/shots/${shot}/plate/${ui.frame}.jpg`;
    if (plateImg.getAttribute("src") !== src) plateImg.src = src;
    renderPass();
    renderKey();
    renderDrawing();
    renderTimeline();
    renderFrameState();
  }

  function renderPass() {
    const p = latestPass();
    const on = $("show-pass").checked && p && p.variation && passDone(p, ui.frame) && !ui.shapes.length && !ui.pending;
    if (!on) { passImg.hidden = true; return; }
    const src = `/media/variations/${p.variation}/proxy/${ui.frame}.jpg`;
    if (passImg.getAttribute("src") !== src) passImg.src = src;
    passImg.dataset.frame = ui.frame;
    passImg.dataset.pass = p.number;
    passImg.hidden = false;
  }

  function fit(canvas) {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    return canvas.getContext("2d");
  }

  // The saved key frame's matte (the server's, a grey JPEG) tinted blue over the plate.
  let keyToken = 0;
  function renderKey() {
    const ctx = fit(keyCanvas);
    ctx.clearRect(0, 0, keyCanvas.width, keyCanvas.height);
    const key = keyAt(ui.frame);
    keyCanvas.dataset.key = key ? key.id : "";
    if (!key || !passImg.hidden) return;
    const token = ++keyToken;
    const img = new Image();
    img.onload = () => {
      if (token !== keyToken) return;
      const w = keyCanvas.width, h = keyCanvas.height;
      const off = document.createElement("canvas");
      off.width = w; off.height = h;
      const o = off.getContext("2d");
      o.drawImage(img, 0, 0, w, h);
      const px = o.getImageData(0, 0, w, h);
      for (let i = 0; i < px.data.length; i += 4) {
        const a = px.data[i];
        px.data[i] = 40; px.data[i + 1] = 140; px.data[i + 2] = 255; px.data[i + 3] = Math.round(a * 0.5);
      }
      ctx.putImageData(px, 0, 0);
      keyCanvas.dataset.shown = key.id;
    };
    img.src = key.matte;
  }

  // ---- drawing -----------------------------------------------------------------------------------------------
  const toPlate = (e) => {
    const r = drawCanvas.getBoundingClientRect();
    return [(e.clientX - r.left) * W / r.width, (e.clientY - r.top) * H / r.height];
  };
  const toScreen = ([x, y]) => [x * drawCanvas.width / W, y * drawCanvas.height / H];
  const scale = () => drawCanvas.width / W;

  function strokePath(ctx, points) {
    ctx.beginPath();
    points.forEach((p, i) => { const [x, y] = toScreen(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
  }
  function drawShape(ctx, s, live) {
    ctx.save();
    if (s.tool === "polygon") {
      strokePath(ctx, s.points);
      if (!live) { ctx.closePath(); ctx.fillStyle = "rgba(40,140,255,0.35)"; ctx.fill(); }
      ctx.strokeStyle = "#6fb8ff"; ctx.lineWidth = 1.5; ctx.stroke();
      if (live) s.points.forEach((p) => { const [x, y] = toScreen(p); ctx.fillStyle = "#fff"; ctx.fillRect(x - 2, y - 2, 4, 4); });
    } else if (s.tool === "brush" || s.tool === "erase") {
      strokePath(ctx, s.points.length === 1 ? [s.points[0], s.points[0]] : s.points);
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.lineWidth = Math.max(1, 2 * s.radius * scale());
      ctx.strokeStyle = s.tool === "brush" ? "rgba(40,140,255,0.45)" : "rgba(255,80,80,0.45)";
      ctx.stroke();
    } else if (s.tool === "box") {
      const [x, y] = toScreen([s.box[0], s.box[1]]);
      ctx.strokeStyle = "#ffd60a"; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.5;
      ctx.strokeRect(x, y, s.box[2] * scale(), s.box[3] * drawCanvas.height / H);
    } else if (s.tool === "clicks") {
      s.points.forEach((p) => {
        const [x, y] = toScreen(p);
        ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fillStyle = "#ffd60a"; ctx.fill();
        ctx.strokeStyle = "#000"; ctx.stroke();
      });
    }
    ctx.restore();
  }
  function renderDrawing() {
    const ctx = fit(drawCanvas);
    ctx.clearRect(0, 0, drawCanvas.width, drawCanvas.height);
    ui.shapes.forEach((s) => drawShape(ctx, s, false));
    if (ui.pending) drawShape(ctx, ui.pending, true);
    $("roto-hud").textContent = `${ui.frame} · ${ui.tool}${ui.shapes.length ? ` · ${ui.shapes.length} shape(s) not saved` : ""}`;
  }
  function changed() { renderPass(); renderKey(); renderDrawing(); }

  function closePending() {
    const p = ui.pending;
    ui.pending = null;
    if (!p) return;
    if (p.tool === "polygon" && p.points.length >= 3) ui.shapes.push(p);
    else if (p.tool === "clicks" && p.points.length) ui.shapes.push(p);
    changed();
  }
  const round = (v) => Math.round(v * 100) / 100;
  const pt = (e) => toPlate(e).map(round);

  let dragging = null;
  drawCanvas.addEventListener("pointerdown", (e) => {
    if (!canDraw || e.button !== 0) return;
    const p = pt(e);
    if (ui.tool === "polygon") {
      if (!ui.pending) ui.pending = {tool: "polygon", points: [], feather: Number($("feather").value) || 0};
      const pts = ui.pending.points;
      const [fx, fy] = pts.length ? toScreen(pts[0]) : [0, 0];
      const [sx, sy] = toScreen(p);
      if (pts.length >= 3 && Math.hypot(sx - fx, sy - fy) < 8) { closePending(); return; }
      pts.push(p);
    } else if (ui.tool === "clicks") {
      if (!ui.pending) ui.pending = {tool: "clicks", points: []};
      ui.pending.points.push(p);
    } else if (ui.tool === "box") {
      dragging = {tool: "box", start: p, box: [p[0], p[1], 0, 0]};
      ui.pending = dragging;
      drawCanvas.setPointerCapture(e.pointerId);
    } else {
      dragging = {tool: ui.tool, points: [p], radius: Number($("radius").value) || 12};
      ui.pending = dragging;
      drawCanvas.setPointerCapture(e.pointerId);
    }
    changed();
  });
  drawCanvas.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    const p = pt(e);
    if (dragging.tool === "box") {
      const [x0, y0] = dragging.start;
      dragging.box = [round(Math.min(x0, p[0])), round(Math.min(y0, p[1])), round(Math.abs(p[0] - x0)), round(Math.abs(p[1] - y0))];
    } else {
      const lastPoint = dragging.points[dragging.points.length - 1];
      if (Math.hypot(p[0] - lastPoint[0], p[1] - lastPoint[1]) >= 1) dragging.points.push(p);
    }
    renderDrawing();
  });
  function endDrag() {
    if (!dragging) return;
    const d = dragging;
    dragging = null;
    ui.pending = null;
    if (d.tool === "box") { if (d.box[2] >= 4 && d.box[3] >= 4) ui.shapes.push({tool: "box", box: d.box}); }
    else ui.shapes.push({tool: d.tool, points: d.points, radius: d.radius});
    changed();
  }
  drawCanvas.addEventListener("pointerup", endDrag);
  drawCanvas.addEventListener("pointercancel", endDrag);

  document.querySelectorAll(".tool").forEach((b) => b.addEventListener("click", () => {
    closePending();
    ui.tool = b.dataset.tool;
    document.querySelectorAll(".tool").forEach((o) => o.classList.toggle("on", o === b));
    renderDrawing();
  }));
  if (canDraw) {
    $("undo").addEventListener("click", () => { if (ui.pending) ui.pending = null; else ui.shapes.pop(); changed(); });
    $("clear").addEventListener("click", () => { ui.pending = null; ui.shapes = []; changed(); });
    $("save-key").addEventListener("click", saveKey);
    $("ask").addEventListener("click", askPass);
    $("lock").addEventListener("click", () => lock(true));
    $("unlock").addEventListener("click", () => lock(false));
  }

  // ---- talking to the server ---------------------------------------------------------------------------------
  function message(text, bad) {
    const m = $("roto-message");
    m.textContent = text;
    m.classList.toggle("error", !!bad);
  }
  async function send(url, options) {
    const response = await fetch(url, Object.assign({credentials: "same-origin"}, options,
      {headers: Object.assign({"X-CSRFToken": csrf}, options.headers || {})}));
    const text = await response.text();
    if (!response.ok) throw new Error(text || `${response.status} ${response.statusText}`);
    return JSON.parse(text);
  }
  const form = (data) => ({method: "POST", body: new URLSearchParams(data)});

  async function saveKey() {
    closePending();
    if (!ui.shapes.length) { message("draw something on this frame first", true); return; }
    const frame = ui.frame;
    $("save-key").disabled = true;
    message(`rasterising key frame ${frame}…`);
    try {
      apply(await send(`${base}/keys/${frame}`, {method: "POST", body: JSON.stringify({shapes: ui.shapes}),
                                                 headers: {"Content-Type": "application/json"}}));
      ui.shapes = [];
      message(`key frame ${frame} saved`);
    } catch (err) {
      message(err.message, true);
    } finally {
      $("save-key").disabled = false;
      changed();
    }
  }
  async function askPass() {
    $("ask").disabled = true;
    try {
      apply(await send(`${base}/passes`, form({})));
      const p = latestPass();
      message(`pass ${p.number} asked: request ${p.request}`);
    } catch (err) {
      message(err.message, true);
    } finally {
      $("ask").disabled = false;
    }
  }
  async function lock(on) {
    try {
      apply(await send(`${base}/lock/${ui.frame}`, form({locked: on ? "1" : "0"})));
      message(`frame ${ui.frame} ${on ? "locked" : "unlocked"}`);
    } catch (err) {
      message(err.message, true);
    }
  }
  async function refresh() {
    apply(await send(root.dataset.state, {method: "GET"}));
  }

  // ---- state: key frames, locks, passes ----------------------------------------------------------------------
  const time = (iso) => new Date(iso).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});
  function li(text, cls) { const el = document.createElement("li"); el.textContent = text; if (cls) el.className = cls; return el; }

  function apply(server) {
    ui.server = server;
    server.passes.forEach((p) => {
      if (!ui.computed.has(p.number)) ui.computed.set(p.number, new Set());
      if (p.variation_status === "done") for (let f = p.first; f <= p.last; f++) ui.computed.get(p.number).add(f);
    });
    const keys = $("key-list");
    keys.replaceChildren(...server.keys.map((k) => {
      const el = li(`${k.frame} · drawn by ${k.by} at ${time(k.at)} · ${k.tools.join(", ")}` +
                    `${server.locked.includes(k.frame) ? " · fixed (locked)" : ""}`);
      el.dataset.frame = k.frame;
      el.addEventListener("click", () => showFrame(k.frame));
      return el;
    }));
    if (!server.keys.length) keys.append(li("No key frame yet: draw on a frame and save it.", "muted empty"));
    const passes = $("pass-list");
    if (server.passes.length) {
      passes.replaceChildren(...server.passes.slice().reverse().map((p, i) => {
        const el = document.createElement("li");
        el.dataset.pass = p.number;
        el.dataset.status = p.status;
        if (i === 0) el.className = "current";
        const a = document.createElement("a");
        a.href = p.url;
        a.textContent = `Pass ${p.number}`;
        const kept = p.kept ? `, ${p.kept} kept from pass ${p.number - 1}` : "";
        el.append(a, ` · request ${p.request} · `, Object.assign(document.createElement("span"),
          {className: `status ${p.status}`, textContent: p.status_label}),
          ` · key frames ${p.keyframes.join(", ")} · ${p.recomputed.length} frame(s) computed${kept}`,
          p.error ? Object.assign(document.createElement("span"), {className: "error", textContent: ` · ${p.error}`}) : "");
        return el;
      }));
    }
    follow(latestPass());
    showFrame(ui.frame);
  }

  function renderTimeline() {
    const bar = $("timeline");
    const n = last - first + 1;
    if (bar.children.length !== n) {
      bar.replaceChildren(...Array.from({length: n}, (_, k) => {
        const s = document.createElement("span");
        s.dataset.frame = first + k;
        s.addEventListener("click", () => showFrame(first + k));
        return s;
      }));
    }
    const p = latestPass();
    [...bar.children].forEach((s, k) => {
      const f = first + k;
      s.className = [keyAt(f) ? "key" : "", ui.server && ui.server.locked.includes(f) ? "locked" : "",
                     p && passDone(p, f) ? "done" : "", f === ui.frame ? "current" : ""].filter(Boolean).join(" ");
      s.title = `${f}${keyAt(f) ? " key" : ""}${ui.server && ui.server.locked.includes(f) ? " locked" : ""}`;
    });
  }
  function renderFrameState() {
    const parts = [];
    const k = keyAt(ui.frame);
    if (k) parts.push(`key frame, drawn by ${k.by}`);
    if (ui.server && ui.server.locked.includes(ui.frame)) parts.push("locked");
    const p = latestPass();
    if (p) parts.push(passDone(p, ui.frame) ? `pass ${p.number} matte` : `pass ${p.number}: not yet`);
    $("frame-state").textContent = parts.length ? `· ${parts.join(" · ")}` : "";
  }

  // ---- the live stream of the latest pass --------------------------------------------------------------------
  function follow(p) {
    if (!p || ui.socketPass === p.number) return;
    if (ui.socket) ui.socket.close();
    ui.socketPass = p.number;
    let lastSeq = 0;
    const connect = () => {
      if (ui.socketPass !== p.number) return;
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/requests/${p.request}/?after=${lastSeq}`);
      ui.socket = socket;
      socket.addEventListener("message", (m) => {
        const ev = JSON.parse(m.data);
        if (ev.seq === undefined || ev.seq <= lastSeq) return;
        lastSeq = ev.seq;
        ui.seen.push(ev.seq);
        if (ev.type === "variation.frame") {
          ui.computed.get(p.number).add(ev.payload.frame);
          if (ev.payload.frame === ui.frame) renderPass();
          renderTimeline();
          renderFrameState();
        } else if (["request.settled", "variation.done", "variation.failed", "release.done", "signoff.approved"].includes(ev.type)) {
          refresh();
        }
      });
      socket.addEventListener("close", (e) => { if (e.code !== 4403 && ui.socket === socket) setTimeout(connect, 1000); });
    };
    connect();
  }

  // ---- transport ---------------------------------------------------------------------------------------------
  $("scrub").addEventListener("input", (e) => showFrame(parseInt(e.target.value, 10)));
  $("step-back").addEventListener("click", () => showFrame(ui.frame - 1));
  $("step-fwd").addEventListener("click", () => showFrame(ui.frame + 1));
  $("show-pass").addEventListener("change", changed);
  passImg.addEventListener("load", renderKey);
  window.addEventListener("resize", changed);
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input[type=number], input[type=text], textarea, select") || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowLeft") { showFrame(ui.frame - 1); e.preventDefault(); }
    else if (e.key === "ArrowRight") { showFrame(ui.frame + 1); e.preventDefault(); }
    else if (e.key === "Enter" && ui.pending) { closePending(); e.preventDefault(); }
    else if (e.key === "Escape") { ui.pending = null; changed(); }
  });
  ui.showFrame = showFrame;
  ui.refresh = refresh;
  refresh().catch((err) => message(err.message, true));
})();
