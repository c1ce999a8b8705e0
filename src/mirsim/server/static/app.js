/* mirsim web page: the map of a sound library on a <canvas>, with zoom, pan, hit-testing
 * by a spatial grid, playing, nearest neighbours, query by example and search by name.
 *
 * Everything lives in one closure; `window.mirsim` exposes a few read-only hooks (timings,
 * pointToPixel, select, pick) for tests and for the curious. */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  /* Twenty distinct colours for the first labels, then golden-angle hues. */
  const PALETTE = [
    "#2f6db5", "#e8702a", "#2a9d8f", "#d1495b", "#8e6cbf", "#e0a526", "#4f8f5b", "#c2549d",
    "#1f9bcf", "#9b5b2a", "#6e7681", "#1b4965", "#f08f7a", "#8a1c2b", "#52b788", "#6d597a",
    "#b3a100", "#264653", "#a0589f", "#7fa35b",
  ];
  const BACKGROUND = [255, 255, 255];
  const VECTOR_LIMIT = 4000;     // draw circles below this many points, pixels above
  const PICK_RADIUS = 9;         // CSS pixels
  const NEIGHBOURS = 10;
  const VERSION_HEADER = "X-Mirsim-Index";

  const state = {
    n: 0, x: null, y: null, label: null, labels: [], paths: [], counts: [],
    rgb: [], packed: null, packedDim: null, css: [],
    view: { cx: 0, cy: 0, scale: 1 }, fitScale: 1, bounds: null,
    width: 0, height: 0, dpr: 1, image: null,
    grid: null,
    selected: -1, marked: [], hover: -1, focusLabel: -1, playing: -1,
    info: null, maxUpload: Infinity, objectUrl: null, indexVersion: null,
    metric: new URLSearchParams(window.location.search).get("metric"),
    drawPending: false, requestToken: 0,
    aspects: [], weights: {}, mapAspect: "", maps: new Map(), instrument: "",
  };
  const ASPECT_DEBOUNCE_MS = 150;
  let neighbourRequests = 0;
  const timings = { mapFetchMs: null, mapParseMs: null, firstDrawMs: null, lastDrawMs: null,
                    draws: 0, gridBuildMs: null };

  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  const player = $("player");

  /* ---------------------------------------------------------------- colours -------------- */
  function hslToRgb(h, s, l) {
    const k = (n) => (n + h / 30) % 12;
    const a = s * Math.min(l, 1 - l);
    const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
    return [f(0), f(8), f(4)].map((v) => Math.round(v * 255));
  }

  function hexToRgb(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  function labelRgb(j) {
    if (j < PALETTE.length) return hexToRgb(PALETTE[j]);
    const hue = (j * 137.508) % 360;
    return hslToRgb(hue, 0.62, j % 2 ? 0.42 : 0.58);
  }

  const pack = ([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
  const mix = (rgb, t) => rgb.map((v, i) => Math.round(v + (BACKGROUND[i] - v) * t));
  const cssOf = ([r, g, b]) => `rgb(${r},${g},${b})`;

  function prepareColours() {
    state.rgb = state.labels.map((_, j) => labelRgb(j));
    state.css = state.rgb.map(cssOf);
    state.packed = Uint32Array.from(state.rgb.map(pack));
    state.packedDim = Uint32Array.from(state.rgb.map((c) => pack(mix(c, 0.82))));
  }

  /* ---------------------------------------------------------------- view ----------------- */
  const toScreenX = (x) => state.width / 2 + (x - state.view.cx) * state.view.scale;
  const toScreenY = (y) => state.height / 2 - (y - state.view.cy) * state.view.scale;
  const toDataX = (sx) => state.view.cx + (sx - state.width / 2) / state.view.scale;
  const toDataY = (sy) => state.view.cy - (sy - state.height / 2) / state.view.scale;

  /* Scale at which the whole map fits the canvas, with a margin. */
  function fitScale() {
    const b = state.bounds || { minX: -1, maxX: 1, minY: -1, maxY: 1 };
    const margin = 32;
    const w = Math.max(b.maxX - b.minX, 1e-3), h = Math.max(b.maxY - b.minY, 1e-3);
    return Math.max(1e-3, Math.min((state.width - 2 * margin) / w, (state.height - 2 * margin) / h));
  }

  function fitView() {
    const b = state.bounds || { minX: -1, maxX: 1, minY: -1, maxY: 1 };
    state.fitScale = fitScale();
    state.view = { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, scale: state.fitScale };
    scheduleDraw();
  }

  function resizeCanvas() {
    const rect = canvas.getBoundingClientRect();
    const ratio = state.fitScale ? state.view.scale / state.fitScale : 1;
    state.dpr = window.devicePixelRatio || 1;
    state.width = Math.max(1, rect.width);
    state.height = Math.max(1, rect.height);
    canvas.width = Math.round(state.width * state.dpr);
    canvas.height = Math.round(state.height * state.dpr);
    state.image = null;
    state.fitScale = fitScale();
    state.view.scale = state.fitScale * ratio;
    scheduleDraw();
  }

  function zoomAt(sx, sy, factor) {
    const x = toDataX(sx), y = toDataY(sy);
    const scale = Math.min(state.fitScale * 4000, Math.max(state.fitScale * 0.3, state.view.scale * factor));
    state.view.scale = scale;
    state.view.cx = x - (sx - state.width / 2) / scale;
    state.view.cy = y + (sy - state.height / 2) / scale;
    scheduleDraw();
  }

  function centreOn(i, minZoom = 4) {
    state.view.cx = state.x[i];
    state.view.cy = state.y[i];
    state.view.scale = Math.max(state.view.scale, state.fitScale * minZoom);
    scheduleDraw();
  }

  function pointSize() {
    const n = state.n;
    const base = n > 50000 ? 1.6 : n > 10000 ? 2.2 : n > 2000 ? 3 : n > 300 ? 5 : n > 100 ? 7 : 9;
    const zoom = state.view.scale / state.fitScale;
    return Math.min(base * Math.max(1, Math.sqrt(zoom)), 12);
  }

  /* ---------------------------------------------------------------- drawing -------------- */
  function scheduleDraw() {
    if (state.drawPending || !state.n) return;
    state.drawPending = true;
    requestAnimationFrame(() => {
      state.drawPending = false;
      draw();
    });
  }

  function draw() {
    const t0 = performance.now();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (state.n > VECTOR_LIMIT) drawPixels(); else drawCircles();
    ctx.setTransform(state.dpr, 0, 0, state.dpr, 0, 0);
    drawMarks();
    const ms = performance.now() - t0;
    timings.lastDrawMs = ms;
    timings.draws += 1;
    if (timings.firstDrawMs === null) timings.firstDrawMs = ms;
    showStats();
  }

  /* Many points: write each as a small square straight into an ImageData buffer. */
  function drawPixels() {
    const W = canvas.width, H = canvas.height;
    if (!state.image || state.image.width !== W || state.image.height !== H) {
      state.image = ctx.createImageData(W, H);
    }
    const buf = new Uint32Array(state.image.data.buffer);
    buf.fill(pack(BACKGROUND));
    const d = state.dpr, s = state.view.scale * d;
    const ox = W / 2 - state.view.cx * s, oy = H / 2 + state.view.cy * s;
    const half = Math.max(1, Math.round((pointSize() * d) / 2));
    const focus = state.focusLabel;
    const passes = focus < 0 ? [null] : [false, true];
    for (const wantFocus of passes) {
      for (let i = 0; i < state.n; i++) {
        const lab = state.label[i];
        if (wantFocus !== null && (lab === focus) !== wantFocus) continue;
        const px = Math.round(ox + state.x[i] * s), py = Math.round(oy - state.y[i] * s);
        if (px < -half || py < -half || px >= W + half || py >= H + half) continue;
        const colour = wantFocus === false ? state.packedDim[lab] : state.packed[lab];
        const x0 = Math.max(0, px - half), x1 = Math.min(W, px + half);
        const y0 = Math.max(0, py - half), y1 = Math.min(H, py + half);
        for (let yy = y0; yy < y1; yy++) buf.fill(colour, yy * W + x0, yy * W + x1);
      }
    }
    ctx.putImageData(state.image, 0, 0);
  }

  /* Few points: anti-aliased circles with a thin white rim, one path per label. */
  function drawCircles() {
    const d = state.dpr;
    ctx.fillStyle = cssOf(BACKGROUND);
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(d, 0, 0, d, 0, 0);
    const r = pointSize() / 2 + 1;
    const order = state.labels.map((_, j) => j);
    if (state.focusLabel >= 0) order.sort((a, b) => (a === state.focusLabel) - (b === state.focusLabel));
    for (const j of order) {
      const dim = state.focusLabel >= 0 && j !== state.focusLabel;
      ctx.beginPath();
      for (let i = 0; i < state.n; i++) {
        if (state.label[i] !== j) continue;
        const sx = toScreenX(state.x[i]), sy = toScreenY(state.y[i]);
        if (sx < -r || sy < -r || sx > state.width + r || sy > state.height + r) continue;
        ctx.moveTo(sx + r, sy);
        ctx.arc(sx, sy, r, 0, 2 * Math.PI);
      }
      ctx.fillStyle = dim ? cssOf(mix(state.rgb[j], 0.82)) : state.css[j];
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.stroke();
    }
  }

  function ring(i, radius, colour, width) {
    ctx.beginPath();
    ctx.arc(toScreenX(state.x[i]), toScreenY(state.y[i]), radius, 0, 2 * Math.PI);
    ctx.lineWidth = width + 2;
    ctx.strokeStyle = "rgba(255,255,255,0.95)";
    ctx.stroke();
    ctx.lineWidth = width;
    ctx.strokeStyle = colour;
    ctx.stroke();
  }

  /* Selection, its neighbours (with lines to them) and the hovered point. */
  function drawMarks() {
    const r = pointSize() / 2 + 4;
    const from = state.selected;
    if (from >= 0) {
      ctx.lineWidth = 1.2;
      ctx.strokeStyle = "rgba(31,35,40,0.35)";
      ctx.beginPath();
      for (const j of state.marked) {
        ctx.moveTo(toScreenX(state.x[from]), toScreenY(state.y[from]));
        ctx.lineTo(toScreenX(state.x[j]), toScreenY(state.y[j]));
      }
      ctx.stroke();
    }
    for (const j of state.marked) ring(j, r, "#1f2328", 1.6);
    if (from >= 0) ring(from, r + 3, "#1f2328", 3);
    if (state.hover >= 0) ring(state.hover, r + 1, "#2f5fa7", 2);
  }

  /* ---------------------------------------------------------------- hit-testing ---------- */
  /* A uniform grid over the map: cell c holds items[start[c] .. start[c+1]). */
  function buildGrid() {
    const t0 = performance.now();
    const n = state.n;
    const size = Math.max(8, Math.min(1024, Math.ceil(Math.sqrt(n / 3))));
    const start = new Int32Array(size * size + 1);
    const cellOf = new Int32Array(n);
    const cell = (v) => Math.min(size - 1, Math.max(0, Math.floor(((v + 1) / 2) * size)));
    for (let i = 0; i < n; i++) {
      cellOf[i] = cell(state.y[i]) * size + cell(state.x[i]);
      start[cellOf[i] + 1] += 1;
    }
    for (let c = 0; c < size * size; c++) start[c + 1] += start[c];
    const fill = start.slice(0, size * size);
    const items = new Int32Array(n);
    for (let i = 0; i < n; i++) items[fill[cellOf[i]]++] = i;
    state.grid = { size, start, items, cell };
    timings.gridBuildMs = performance.now() - t0;
  }

  /* The point nearest to canvas position (sx, sy) within `radius` CSS pixels, or -1. */
  function pick(sx, sy, radius = PICK_RADIUS) {
    const g = state.grid;
    if (!g) return -1;
    const r = radius / state.view.scale;
    const x = toDataX(sx), y = toDataY(sy);
    const c0 = g.cell(x - r), c1 = g.cell(x + r), r0 = g.cell(y - r), r1 = g.cell(y + r);
    let best = -1, bestD = r * r;
    for (let row = r0; row <= r1; row++) {
      for (let col = c0; col <= c1; col++) {
        const c = row * g.size + col;
        for (let k = g.start[c]; k < g.start[c + 1]; k++) {
          const i = g.items[k];
          const dx = state.x[i] - x, dy = state.y[i] - y;
          const d2 = dx * dx + dy * dy;
          if (d2 <= bestD) { bestD = d2; best = i; }
        }
      }
    }
    return best;
  }

  /* ---------------------------------------------------------------- API ------------------ */
  /* Every call sends back the index version of the first answer: once the index has been
   * rebuilt, the server refuses (409) and says to reload, rather than answering for another
   * sound under the same id. */
  async function api(path, options = {}) {
    if (state.metric) path += (path.includes("?") ? "&" : "?") + "metric=" + encodeURIComponent(state.metric);
    const headers = new Headers(options.headers || {});
    if (state.indexVersion) headers.set(VERSION_HEADER, state.indexVersion);
    const response = await fetch(path, { ...options, headers });
    if (!state.indexVersion) state.indexVersion = response.headers.get(VERSION_HEADER);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail;
      const text = typeof detail === "string" ? detail
        : Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : response.statusText;
      throw new Error(`${response.status}: ${text}`);
    }
    return body;
  }

  /* A per-instrument index plays the chosen instrument's stem of each song. */
  const audioUrl = (i) => {
    if (!state.instrument || state.instrument === "mix") return `api/items/${i}/audio`;
    const metric = state.metric ? `&metric=${encodeURIComponent(state.metric)}` : "";
    return `api/items/${i}/stem?aspect=${encodeURIComponent(state.instrument)}${metric}`;
  };
  const baseName = (p) => p.split("/").pop();

  /* ---------------------------------------------------------------- status --------------- */
  function say(text, isError = false) {
    const el = $("status-message");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  let mapDoc = null;
  function showStats() {
    if (!mapDoc) return;
    const method = mapDoc.method === "tsne" ? "t-SNE" : mapDoc.method.toUpperCase();
    const how = mapDoc.from_cache ? "cached" : `computed in ${mapDoc.seconds.toFixed(1)} s`;
    const drawn = timings.lastDrawMs === null ? "" : ` · drawn in ${timings.lastDrawMs.toFixed(1)} ms`;
    $("status-stats").textContent = `${state.n.toLocaleString()} sounds · ${state.labels.length} labels · map: ${method} (${how})${drawn}`;
  }

  /* ---------------------------------------------------------------- sidebar -------------- */
  function swatch(j) {
    const s = document.createElement("span");
    s.className = "swatch";
    s.style.background = state.css[j] || "#999";
    return s;
  }

  function labelIndex(name) {
    return state.labels.indexOf(name);
  }

  function showSelected(title, meta, j) {
    const box = $("selected");
    box.classList.remove("muted");
    box.replaceChildren();
    const name = document.createElement("div");
    name.className = "name";
    if (j !== undefined && j >= 0) name.append(swatch(j), " ");
    name.append(title);
    const m = document.createElement("div");
    m.className = "meta";
    m.textContent = meta;
    box.append(name, m);
  }

  function play(src, id) {
    if (state.objectUrl && state.objectUrl !== src) {
      URL.revokeObjectURL(state.objectUrl);
      state.objectUrl = null;
    }
    if (src.startsWith("blob:")) state.objectUrl = src;
    state.playing = id;
    player.src = src;
    const attempt = player.play();
    if (attempt && attempt.catch) attempt.catch(() => {});  // autoplay may be refused
    for (const li of $("results").children) {
      li.classList.toggle("playing", Number(li.dataset.id) === id);
    }
  }

  function renderResults(title, neighbours) {
    $("results-title").textContent = title;
    const list = $("results");
    list.replaceChildren();
    if (!neighbours.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No other sound in the index.";
      list.append(li);
      return;
    }
    for (const nb of neighbours) list.append(resultRow(nb));
  }

  function resultRow(nb) {
    const li = document.createElement("li");
    li.dataset.id = nb.id;
    li.title = nb.path;
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = nb.rank;
    const button = document.createElement("button");
    button.className = "play";
    button.type = "button";
    button.textContent = "▶";
    button.title = `Play ${nb.name}`;
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      play(audioUrl(nb.id), nb.id);
    });
    const what = document.createElement("span");
    what.className = "what";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = nb.name;
    const label = document.createElement("span");
    label.className = "label";
    label.append(swatch(labelIndex(nb.label)), nb.label);
    what.append(name, label);
    const dist = document.createElement("span");
    dist.className = "distance";
    dist.textContent = nb.distance.toFixed(3);
    dist.title = nb.aspect_distances
      ? "Weighted sum of the aspects' cosine distances: " + Object.entries(nb.aspect_distances)
        .map(([a, d]) => `${a} ${d.toFixed(3)}`).join(", ")
      : "Distance between embeddings";
    li.append(rank, button, what, dist);
    li.addEventListener("click", () => select(nb.id, { centre: true }));
    return li;
  }

  function renderLegend() {
    const list = $("legend");
    list.replaceChildren();
    state.labels.forEach((name, j) => {
      const li = document.createElement("li");
      li.dataset.label = j;
      const lname = document.createElement("span");
      lname.className = "lname";
      lname.textContent = name;
      lname.title = name;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = state.counts[j].toLocaleString();
      li.append(swatch(j), lname, count);
      li.addEventListener("click", () => focusLabel(state.focusLabel === j ? -1 : j));
      list.append(li);
    });
  }

  function focusLabel(j) {
    state.focusLabel = j;
    for (const li of $("legend").children) {
      const k = Number(li.dataset.label);
      li.classList.toggle("active", k === j);
      li.classList.toggle("dim", j >= 0 && k !== j);
    }
    scheduleDraw();
  }

  /* ---------------------------------------------------------------- actions -------------- */
  async function select(i, { centre = false, autoplay = true } = {}) {
    const token = ++state.requestToken;
    state.selected = i;
    state.marked = [];
    if (centre) centreOn(i);
    scheduleDraw();
    const path = state.paths[i];
    showSelected(baseName(path), `${path} · ${state.labels[state.label[i]]}`, state.label[i]);
    if (autoplay) play(audioUrl(i), i);
    if (state.aspects.length && !Object.values(state.weights).some((w) => w > 0)) {
      say("Move an aspect slider above 0 to rank the nearest sounds.", true);
      return;
    }
    say(`Finding the sounds nearest to ${baseName(path)}…`);
    try {
      neighbourRequests += 1;
      const result = await api(neighboursPath(i));
      if (token !== state.requestToken) return;
      state.marked = result.neighbors.map((nb) => nb.id);
      renderResults(`Nearest to ${baseName(path)}`, result.neighbors);
      say(`${baseName(path)} (${state.labels[state.label[i]]}): ${result.neighbors.length} nearest sounds`);
      scheduleDraw();
    } catch (error) {
      if (token === state.requestToken) say(`Neighbours of ${baseName(path)}: ${error.message}`, true);
    }
  }

  /* With aspects, the neighbours are ranked by the sliders' weighted mix of them. */
  function neighboursPath(i) {
    if (!state.aspects.length) return `api/items/${i}/neighbors?k=${NEIGHBOURS}`;
    const weights = state.aspects.map((a) => `${a}=${state.weights[a]}`).join(",");
    return `api/items/${i}/aspect-neighbors?k=${NEIGHBOURS}&weights=${encodeURIComponent(weights)}`;
  }

  /* ---------------------------------------------------------------- aspects -------------- */
  let aspectTimer = null;

  function setupAspects(names) {
    state.aspects = names || [];
    if (!state.aspects.length) return;
    const box = $("aspect-sliders");
    box.replaceChildren();
    state.aspects.forEach((name, j) => {
      state.weights[name] = 1;
      const label = document.createElement("label");
      label.htmlFor = `aspect-${j}`;
      label.textContent = name;
      label.title = name;
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: "0", max: "1", step: "0.05", value: "1",
                              id: `aspect-${j}` });
      slider.dataset.aspect = name;
      const value = document.createElement("output");
      value.htmlFor = slider.id;
      value.textContent = "1.00";
      slider.addEventListener("input", () => {
        state.weights[name] = Number(slider.value);
        value.textContent = Number(slider.value).toFixed(2);
        clearTimeout(aspectTimer);  // debounced: one request when the slider rests
        aspectTimer = setTimeout(rerank, ASPECT_DEBOUNCE_MS);
      });
      box.append(label, slider, value);
    });
    $("aspects-panel").hidden = false;
    setupInstruments(state.info && state.info.instruments);
    const select = $("map-space");
    select.replaceChildren(new Option("whole embedding", ""),
                           ...state.aspects.map((a) => new Option(`aspect: ${a}`, a)));
    select.addEventListener("change", () => showMapOf(select.value));
    select.hidden = false;
  }

  /* A per-instrument index: one radio button per instrument ("mix" included) sets the
   * aspect sliders to that instrument alone and plays its stem; moving a slider by hand
   * leaves the choice as it is (the sliders rank, the instrument plays). */
  function setupInstruments(names) {
    if (!names || !names.length) return;
    const box = $("instruments");
    box.replaceChildren();
    for (const name of names) {
      const label = document.createElement("label");
      const radio = document.createElement("input");
      Object.assign(radio, { type: "radio", name: "instrument", value: name, id: `instrument-${name}` });
      radio.addEventListener("change", () => chooseInstrument(name));
      label.append(radio, ` ${name}`);
      box.append(label);
    }
    box.hidden = false;
  }

  function chooseInstrument(name) {
    state.instrument = name;
    state.aspects.forEach((a, j) => {
      const w = a === name ? 1 : 0;
      state.weights[a] = w;
      const slider = $(`aspect-${j}`);
      slider.value = String(w);
      slider.nextElementSibling.textContent = w.toFixed(2);
    });
    if (state.selected >= 0) select(state.selected, { autoplay: true });
  }

  function rerank() {
    if (state.selected >= 0) select(state.selected, { autoplay: false });
  }

  /* The map of the whole embedding ("") or of one aspect's sub-space, fetched once. */
  async function showMapOf(aspect) {
    state.mapAspect = aspect;
    const what = aspect ? `the aspect ${aspect}` : "the whole embedding";
    say(`Loading the map of ${what} (computed once, then cached)…`);
    try {
      if (!state.maps.has(aspect)) {
        state.maps.set(aspect, await api(aspect ? `api/map?aspect=${encodeURIComponent(aspect)}` : "api/map"));
      }
      if (state.mapAspect !== aspect) return;
      loadMap(state.maps.get(aspect));
      fitView();
      say(`The map shows ${what}.`);
    } catch (error) {
      say(`Map of ${what}: ${error.message}`, true);
    }
  }

  async function queryByExample(file) {
    if (!file) return;
    if (file.size > state.maxUpload) {
      say(`${file.name}: ${(file.size / 1e6).toFixed(1)} MB, larger than the server's limit of ${(state.maxUpload / 1e6).toFixed(1)} MB`, true);
      return;
    }
    const token = ++state.requestToken;
    state.selected = -1;
    state.marked = [];
    scheduleDraw();
    showSelected(file.name, "uploaded sound (query by example)");
    play(URL.createObjectURL(file), -1);
    say(`Analysing ${file.name}…`);
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const result = await api(`api/query?k=${NEIGHBOURS}`, { method: "POST", body: form });
      if (token !== state.requestToken) return;
      state.marked = result.neighbors.map((nb) => nb.id);
      if (result.in_index && result.item_ids.length) state.selected = result.item_ids[0];
      const note = result.in_index ? " (it is in the index: itself left out)" : "";
      renderResults(`Nearest to ${file.name}`, result.neighbors);
      say(`${file.name}: ${result.neighbors.length} nearest sounds${note}`);
      scheduleDraw();
    } catch (error) {
      if (token === state.requestToken) say(`${file.name}: ${error.message}`, true);
    }
  }

  /* ---------------------------------------------------------------- search --------------- */
  let searchTimer = null;
  let searchHits = [];

  function setupSearch() {
    const input = $("search");
    const box = $("search-results");
    input.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => runSearch(input.value), 150);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && searchHits.length) chooseHit(searchHits[0].id);
      if (event.key === "Escape") { box.hidden = true; input.blur(); }
    });
    document.addEventListener("click", (event) => {
      if (!event.target.closest(".search")) box.hidden = true;
    });
  }

  async function runSearch(q) {
    const box = $("search-results");
    if (!q.trim()) { box.hidden = true; searchHits = []; return; }
    try {
      const result = await api(`api/search?q=${encodeURIComponent(q)}&limit=30`);
      if ($("search").value !== q) return;
      searchHits = result.items;
      renderHits(result);
    } catch (error) {
      say(`Search: ${error.message}`, true);
    }
  }

  function renderHits(result) {
    const box = $("search-results");
    box.replaceChildren();
    if (!result.items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No file name matches.";
      box.append(li);
    }
    for (const item of result.items) {
      const li = document.createElement("li");
      li.dataset.id = item.id;
      const name = document.createElement("span");
      name.textContent = item.name;
      const path = document.createElement("span");
      path.className = "path";
      path.textContent = item.path;
      li.append(swatch(labelIndex(item.label)), name, path);
      li.addEventListener("click", () => chooseHit(item.id));
      box.append(li);
    }
    if (result.total > result.items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = `…and ${(result.total - result.items.length).toLocaleString()} more`;
      box.append(li);
    }
    box.hidden = false;
  }

  function chooseHit(id) {
    $("search-results").hidden = true;
    select(id, { centre: true });
  }

  /* ---------------------------------------------------------------- input ---------------- */
  function canvasPoint(event) {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  function setupPointer() {
    let drag = null;
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [sx, sy] = canvasPoint(event);
      const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
      zoomAt(sx, sy, Math.exp(-delta * 0.0015));
    }, { passive: false });
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, moved: false, id: event.pointerId };
    });
    canvas.addEventListener("pointermove", (event) => {
      if (drag && (drag.moved || Math.hypot(event.clientX - drag.x, event.clientY - drag.y) > 4)) {
        if (!drag.moved) { canvas.setPointerCapture(drag.id); canvas.classList.add("dragging"); }
        drag.moved = true;
        state.view.cx -= (event.clientX - drag.x) / state.view.scale;
        state.view.cy += (event.clientY - drag.y) / state.view.scale;
        drag.x = event.clientX;
        drag.y = event.clientY;
        hideTooltip();
        scheduleDraw();
        return;
      }
      hover(...canvasPoint(event));
    });
    canvas.addEventListener("pointerup", (event) => {
      const wasClick = drag && !drag.moved;
      drag = null;
      canvas.classList.remove("dragging");
      if (!wasClick) return;
      const i = pick(...canvasPoint(event));
      if (i >= 0) select(i);
    });
    canvas.addEventListener("pointerleave", () => { if (!drag) { state.hover = -1; hideTooltip(); scheduleDraw(); } });
    canvas.addEventListener("dblclick", fitView);
    $("reset-view").addEventListener("click", fitView);
  }

  function hover(sx, sy) {
    const i = pick(sx, sy);
    if (i !== state.hover) { state.hover = i; scheduleDraw(); }
    if (i < 0) { hideTooltip(); return; }
    const tip = $("tooltip");
    tip.replaceChildren(baseName(state.paths[i]));
    const lab = document.createElement("span");
    lab.className = "tip-label";
    lab.textContent = state.labels[state.label[i]];
    tip.append(lab);
    tip.hidden = false;
    const left = Math.min(sx + 14, state.width - tip.offsetWidth - 6);
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${sy + (sy > state.height - 40 ? -34 : 14)}px`;
    canvas.style.cursor = "pointer";
  }

  function hideTooltip() {
    $("tooltip").hidden = true;
    canvas.style.cursor = "";
  }

  function setupUpload() {
    $("upload").addEventListener("change", (event) => {
      queryByExample(event.target.files[0]);
      event.target.value = "";
    });
    const overlay = $("drop-overlay");
    let depth = 0;
    const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
    window.addEventListener("dragenter", (event) => { if (hasFiles(event)) { depth += 1; overlay.hidden = false; } });
    window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
    window.addEventListener("dragover", (event) => { if (hasFiles(event)) event.preventDefault(); });
    window.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      overlay.hidden = true;
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) queryByExample(file);
    });
  }

  /* ---------------------------------------------------------------- loading -------------- */
  function loadMap(doc) {
    const t0 = performance.now();
    mapDoc = doc;
    state.n = doc.n;
    state.x = Float32Array.from(doc.x);
    state.y = Float32Array.from(doc.y);
    state.label = Int32Array.from(doc.label);
    state.labels = doc.labels;
    state.paths = doc.paths;
    state.counts = new Array(doc.labels.length).fill(0);
    const b = { minX: Infinity, maxX: -Infinity, minY: Infinity, maxY: -Infinity };
    for (let i = 0; i < state.n; i++) {
      state.counts[state.label[i]] += 1;
      b.minX = Math.min(b.minX, state.x[i]); b.maxX = Math.max(b.maxX, state.x[i]);
      b.minY = Math.min(b.minY, state.y[i]); b.maxY = Math.max(b.maxY, state.y[i]);
    }
    state.bounds = state.n ? b : null;
    prepareColours();
    buildGrid();
    timings.mapParseMs = performance.now() - t0;
  }

  function setupPlayer() {
    player.addEventListener("error", () => {
      if (state.playing < 0) return;  // an upload: the server's answer says what is wrong
      say(`Cannot play ${baseName(state.paths[state.playing])}: the file is missing or the browser cannot decode it`, true);
    });
  }

  async function start() {
    setupPlayer();
    setupPointer();
    setupSearch();
    setupUpload();
    new ResizeObserver(resizeCanvas).observe($("map-pane"));
    resizeCanvas();
    try {
      await setupMetrics();
      state.info = await api("api/info");
      state.maxUpload = state.info.server.max_upload_bytes;
      $("index-name").textContent = `${state.info.index.split("/").pop()} · ${state.info.feature} · ${state.info.model}`;
      say(`Loading the map of ${state.info.n_items.toLocaleString()} sounds (computed once, then cached)…`);
      const t0 = performance.now();
      const doc = await api("api/map");
      timings.mapFetchMs = performance.now() - t0;
      state.maps.set("", doc);
      setupAspects(state.info.aspects);
      loadMap(doc);
      renderLegend();
      fitView();
      draw();
      say("Click a point to play it and list its nearest sounds; drop a sound file to query by example.");
      window.mirsim.ready = true;
    } catch (error) {
      window.mirsim.error = error.message;
      say(`Could not load the library: ${error.message}`, true);
    }
  }

  /* ---------------------------------------------------------------- metrics -------------- */
  /* Several indexes of one library (a group metric, a listener's own...): a menu reloads the
   * page with ?metric=NAME, so that the map, the neighbours and the version are that index's. */
  async function setupMetrics() {
    const served = await api("api/metrics");
    if (!served.metrics.some((m) => m.name === state.metric)) state.metric = served.default;
    if (served.metrics.length < 2) return;
    const menu = $("metric");
    menu.replaceChildren(...served.metrics.map((m) =>
      new Option(`${m.name} (${m.feature} · ${m.model})`, m.name)));
    menu.value = state.metric;
    menu.hidden = false;
    menu.addEventListener("change", () => {
      const url = new URL(window.location.href);
      url.searchParams.set("metric", menu.value);
      window.location.assign(url.toString());
    });
  }

  /* ---------------------------------------------------------------- test hooks ----------- */
  window.mirsim = {
    ready: false,
    error: null,
    timings,
    /** Viewport (client) CSS-pixel position of item i on the canvas. */
    pointToPixel(i) {
      const rect = canvas.getBoundingClientRect();
      return { x: rect.left + toScreenX(state.x[i]), y: rect.top + toScreenY(state.y[i]) };
    },
    /** Item under a viewport position (or -1), as a click would find it. */
    pickAt(clientX, clientY) {
      const rect = canvas.getBoundingClientRect();
      return pick(clientX - rect.left, clientY - rect.top);
    },
    /** Mean milliseconds of one hit-test over `count` random positions of the canvas. */
    timePicks(count = 1000) {
      const t0 = performance.now();
      for (let k = 0; k < count; k++) pick(Math.random() * state.width, Math.random() * state.height);
      return (performance.now() - t0) / count;
    },
    /** Redraw now; returns the draw time in ms. */
    redraw() { draw(); return timings.lastDrawMs; },
    select: (i) => select(i),
    get selected() { return state.selected; },
    get marked() { return state.marked.slice(); },
    get n() { return state.n; },
    get aspects() { return state.aspects.slice(); },
    get weights() { return { ...state.weights }; },
    get mapAspect() { return state.mapAspect; },
    get instrument() { return state.instrument; },
    get metric() { return state.metric; },
    get mapX() { return Array.from(state.x || []); },
    get neighbourRequests() { return neighbourRequests; },
  };

  start();
})();
