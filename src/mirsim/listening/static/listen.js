/* mirsim listening test: one listener's session. The token is the last part of the page's
 * path (/t/<token>); every request names it. Trials come one at a time from
 * /api/t/<token>/session; each answer is POSTed and saved before the next trial is shown.
 *
 * Free sorting: sounds are discs on a canvas; a click plays one, a drag moves it. Discs
 * closer than GROUP_RADIUS (directly or through others) form one group, so there are as many
 * groups as the listener makes. The board grows taller to hold every disc, with room below
 * them to make groups in. `window.mirsimListen` exposes hooks for tests. */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const api = `/api/t/${encodeURIComponent(token)}`;
  const DISC = 16;             // disc radius, canvas pixels
  const GROUP_RADIUS = 60;     // discs nearer than this are in one group
  const MARGIN = 40;           // from the board's edges to the first discs
  const BOARD_HEIGHT = $("board").height;  // the board's height when it is not enlarged
  const COLOURS = ["#2f6db5", "#e8702a", "#2a9d8f", "#d1495b", "#8e6cbf", "#e0a526",
                   "#4f8f5b", "#c2549d", "#1f9bcf", "#9b5b2a", "#1b4965", "#52b788"];
  const state = { session: null, trial: null, audio: null, discs: [], drag: null,
                  moved: false, sending: false };

  function show(id, visible) { $(id).hidden = !visible; }
  function say(text) { $("message").textContent = text || ""; }

  async function request(path, options) {
    const response = await fetch(api + path, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : "the server refused";
      throw new Error(detail);
    }
    return body;
  }

  function play(item, button) {
    if (state.audio) { state.audio.pause(); }
    document.querySelectorAll(".play.playing").forEach((b) => b.classList.remove("playing"));
    state.audio = new Audio(`${api}/audio/${item}`);
    if (button) {
      button.classList.add("playing");
      state.audio.addEventListener("ended", () => button.classList.remove("playing"));
    }
    state.audio.play().catch(() => say("this sound cannot be played"));
  }

  function progress(session) {
    $("progress").textContent = `${session.listener}: ${session.done} of ` +
      `${session.n_trials} answered`;
  }

  function render(session) {
    state.session = session;
    state.trial = session.next;
    progress(session);
    ["triplets", "pairwise", "sorting"].forEach((id) => show(id, false));
    if (!state.trial) {
      show("submit", false);
      show("finished", true);
      return;
    }
    show("submit", true);
    if (session.kind === "triplets") { startTriplet(); }
    else if (session.kind === "pairwise") { startPair(); }
    else { startSorting(); }
  }

  // -- triplets and pairs ---------------------------------------------------------------------
  function bindPlayers(section) {
    document.querySelectorAll(`#${section} .play`).forEach((button) => {
      button.onclick = () => play(state.trial.trial[button.dataset.slot], button);
    });
  }

  function checked(name) {
    const input = document.querySelector(`input[name="${name}"]:checked`);
    return input ? input.value : null;
  }

  function startTriplet() {
    document.querySelectorAll("#triplets input").forEach((i) => { i.checked = false; });
    bindPlayers("triplets");
    show("triplets", true);
    updateTriplet();
  }

  function updateTriplet() {
    $("submit").disabled = !(checked("choice") && checked("confidence"));
  }

  function startPair() {
    $("similarity").value = 50;
    bindPlayers("pairwise");
    show("pairwise", true);
    $("submit").disabled = false;
  }

  // -- free sorting ---------------------------------------------------------------------------
  function startSorting() {
    const canvas = $("board");
    const items = state.trial.trial.items;
    const step = GROUP_RADIUS + 10;  // apart enough that no two discs start in one group
    const columns = Math.max(1, Math.floor((canvas.width - 2 * MARGIN) / step) + 1);
    const rows = Math.ceil(items.length / columns);
    // every disc on the board, with room below the last row to make groups in
    canvas.height = Math.max(BOARD_HEIGHT, 2 * MARGIN + (rows - 1) * step + BOARD_HEIGHT / 2);
    state.discs = items.map((item, k) => ({
      item,
      x: MARGIN + (k % columns) * step,
      y: MARGIN + Math.floor(k / columns) * step,
    }));
    show("sorting", true);
    $("submit").disabled = false;
    draw();
  }

  function groups() {
    const n = state.discs.length;
    const parent = [...Array(n).keys()];
    const find = (i) => (parent[i] === i ? i : (parent[i] = find(parent[i])));
    for (let i = 0; i < n; i += 1) {
      for (let j = i + 1; j < n; j += 1) {
        const a = state.discs[i], b = state.discs[j];
        if (Math.hypot(a.x - b.x, a.y - b.y) < GROUP_RADIUS) { parent[find(i)] = find(j); }
      }
    }
    const byRoot = new Map();
    state.discs.forEach((d, i) => {
      const root = find(i);
      if (!byRoot.has(root)) { byRoot.set(root, []); }
      byRoot.get(root).push(d.item);
    });
    return [...byRoot.values()];
  }

  function draw() {
    const canvas = $("board");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const found = groups();
    const colour = new Map();
    let k = 0;
    found.forEach((g) => {
      const c = g.length > 1 ? COLOURS[k++ % COLOURS.length] : "#8b949e";
      g.forEach((item) => colour.set(item, c));
    });
    state.discs.forEach((d) => {
      ctx.beginPath();
      ctx.arc(d.x, d.y, DISC, 0, 2 * Math.PI);
      ctx.fillStyle = colour.get(d.item);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.font = "12px system-ui";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(String(d.item), d.x, d.y);
    });
    $("n-groups").textContent = `${found.length} group(s)`;
  }

  function canvasPoint(event) {
    const canvas = $("board");
    const box = canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left) * (canvas.width / box.width),
             y: (event.clientY - box.top) * (canvas.height / box.height) };
  }

  function bindBoard() {
    const canvas = $("board");
    canvas.addEventListener("pointerdown", (event) => {
      const p = canvasPoint(event);
      const hit = state.discs.findLast((d) => Math.hypot(d.x - p.x, d.y - p.y) <= DISC);
      if (!hit) { return; }
      state.drag = { disc: hit, dx: hit.x - p.x, dy: hit.y - p.y };
      state.moved = false;
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!state.drag) { return; }
      const p = canvasPoint(event);
      const d = state.drag.disc;
      d.x = Math.min(canvas.width - DISC, Math.max(DISC, p.x + state.drag.dx));
      d.y = Math.min(canvas.height - DISC, Math.max(DISC, p.y + state.drag.dy));
      state.moved = true;
      draw();
    });
    canvas.addEventListener("pointerup", () => {
      if (state.drag && !state.moved) { play(state.drag.disc.item, null); }
      state.drag = null;
    });
  }

  // -- answers --------------------------------------------------------------------------------
  function currentAnswer() {
    const kind = state.session.kind;
    if (kind === "triplets") {
      return { choice: checked("choice"), confidence: Number(checked("confidence")) };
    }
    if (kind === "pairwise") { return { similarity: Number($("similarity").value) / 100 }; }
    return { groups: groups() };
  }

  async function submit() {
    if (state.sending || !state.trial) { return; }
    state.sending = true;
    $("submit").disabled = true;
    try {
      const session = await request("/answers", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ trial: state.trial.id, answer: currentAnswer() }),
      });
      say("");
      if (state.audio) { state.audio.pause(); }
      render(session);
    } catch (error) {
      say(`Not saved: ${error.message}`);
      $("submit").disabled = false;
    } finally {
      state.sending = false;
    }
  }

  async function init() {
    document.querySelectorAll("#triplets input").forEach((i) => {
      i.addEventListener("change", updateTriplet);
    });
    $("submit").addEventListener("click", submit);
    $("start").addEventListener("click", () => { show("intro", false); render(state.session); });
    bindBoard();
    try {
      const session = await request("/session");
      state.session = session;
      progress(session);
      $("instructions").textContent = session.instructions;
      if (session.next) { show("intro", true); } else { render(session); }
    } catch (error) {
      say(error.message);
    }
  }

  window.mirsimListen = { state, groups, submit, draw };
  init();
})();
