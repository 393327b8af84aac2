// k8sco ui: the page. Plain JavaScript, no build step, nothing loaded from elsewhere.
// Every string from the server reaches the page as text (textContent, createElement):
// no innerHTML, so a node's name, log or doc cannot inject markup.
"use strict";

(function () {
  const ROW_H = 22;
  const OVERSCAN = 20;
  const STATE_NAMES = { p: "pending", q: "queued", r: "running", d: "done", e: "error", k: "killed", s: "skipped" };
  const STATE_ICONS = { p: "○", q: "◔", r: "▶", d: "✓", e: "✗", k: "■", s: "–" };
  const COUNT_ORDER = "pqrdeks"; // Conducto's P Q R D E K, and skipped
  const KIND_LABEL = { S: "Serial", P: "Parallel", E: "Exec" };
  const token = document.querySelector('meta[name="k8sco-token"]').content;
  const readOnly = document.querySelector('meta[name="k8sco-read-only"]').content === "true";
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  // --- timing, read by bench/ui.py and the browser test -------------------------------
  const timing = (window.k8scoTiming = { tree: null, firstRows: null, rows: 0 });

  // --- durations ------------------------------------------------------------------------
  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "";
    seconds = Math.max(0, seconds);
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + "s";
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return m + "m" + String(s).padStart(2, "0") + "s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + "h" + String(m % 60).padStart(2, "0") + "m";
    return Math.floor(h / 24) + "d" + String(h % 24).padStart(2, "0") + "h";
  }
  function serverNow() { return Date.now() / 1000 - clockSkew; }
  let clockSkew = 0;

  function toast(message, isError) {
    const t = $("toast");
    t.textContent = message;
    t.className = isError ? "error" : "";
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // --- server-sent events -----------------------------------------------------------------
  let streams = [];
  function stream(url, handlers) {
    const es = new EventSource(url);
    es.onopen = () => $("conn").classList.add("on");
    es.onerror = () => {
      $("conn").classList.remove("on");
      if (handlers.onclose && es.readyState === EventSource.CLOSED) handlers.onclose();
    };
    for (const name of Object.keys(handlers)) {
      if (name === "onclose") continue;
      es.addEventListener(name, (ev) => handlers[name](JSON.parse(ev.data)));
    }
    streams.push(es);
    return es;
  }
  function closeStreams() { streams.forEach((s) => s.close()); streams = []; }

  async function control(action, ref, path, extra) {
    const res = await fetch("/api/control", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-K8sco-Token": token },
      body: JSON.stringify(Object.assign({}, extra || {}, { p: ref, action: action, path: path || "/" })),
      credentials: "same-origin",
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body.message;
  }

  // --- routing: #/ (the list), #/p/<ref>[/<node path>] ----------------------------------
  function route() {
    closeStreams();
    const hash = location.hash || "#/";
    const m = hash.match(/^#\/p\/([^/]+)(\/.*)?$/);
    if (m) {
      showPipeline(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : null);
    } else {
      showList();
    }
  }
  window.addEventListener("hashchange", () => {
    const m = (location.hash || "").match(/^#\/p\/([^/]+)(\/.*)?$/);
    if (m && view && view.ref === decodeURIComponent(m[1])) {
      select(m[2] ? decodeURIComponent(m[2]) : null); // the same pipeline: keep its stream
      return;
    }
    route();
  });

  // --- the list of pipelines --------------------------------------------------------------
  let listRows = [];
  function showList() {
    view = null;
    $("list-view").hidden = false;
    $("pipeline-view").hidden = true;
    $("crumb").textContent = "";
    document.title = "k8sco";
    stream("/api/events/list", { list: renderList });
  }
  function renderList(data) {
    listRows = data.pipelines;
    const err = $("list-error");
    err.hidden = !data.error;
    err.textContent = data.error || "";
    const body = document.querySelector("#pipelines tbody");
    body.textContent = "";
    for (const p of listRows) {
      const tr = el("tr");
      tr.dataset.ref = p.ref;
      const name = el("td");
      name.appendChild(el("span", "", p.name));
      if (p.id && p.id !== p.name) name.appendChild(el("span", "muted", "  " + p.id));
      tr.appendChild(name);
      tr.appendChild(el("td", "phase-cell", p.error ? "damaged" : p.phase));
      tr.appendChild(el("td", "", p.error || p.progress));
      tr.appendChild(el("td", "age", p.created ? duration(serverNow() - p.created) : ""));
      tr.appendChild(el("td", "muted", p.where || ""));
      tr.addEventListener("click", () => { location.hash = "#/p/" + encodeURIComponent(p.ref); });
      body.appendChild(tr);
    }
    $("list-empty").hidden = listRows.length > 0;
  }

  // --- one pipeline -----------------------------------------------------------------------
  let view = null; // the open pipeline: its tree, states and what the tree pane shows

  function showPipeline(ref, path) {
    $("list-view").hidden = true;
    $("pipeline-view").hidden = false;
    $("crumb").textContent = ref;
    document.title = ref + " · k8sco";
    $("detail").hidden = true;
    $("detail-empty").hidden = false;
    $("tree-rows").textContent = "";
    view = { ref: ref, selected: null, pendingSelect: path, tree: null };
    const mine = view;
    stream("/api/events/tree?p=" + encodeURIComponent(ref), {
      tree: (t) => { if (view === mine) loadTree(t); },
      states: (s) => { if (view === mine) loadStates(s); },
      error: (msg) => { if (view === mine) banner(msg, true); },
    });
  }

  function banner(text, isError) {
    const b = $("p-message");
    b.hidden = !text;
    b.textContent = text || "";
    b.className = "banner" + (isError ? " error" : "");
  }

  function loadTree(t) {
    const n = t.paths.length;
    const parents = Int32Array.from(t.parents);
    const depth = new Int32Array(n);
    const end = new Int32Array(n); // one past the last descendant (pre-order)
    const nkids = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      end[i] = i + 1;
      if (i > 0) { depth[i] = depth[parents[i]] + 1; nkids[parents[i]]++; }
    }
    for (let i = n - 1; i > 0; i--) if (end[i] > end[parents[i]]) end[parents[i]] = end[i];
    const names = t.paths.map((p, i) => (i === 0 ? "/" : p.slice(p.lastIndexOf("/") + 1)));
    const index = new Map();
    t.paths.forEach((p, i) => index.set(p, i));
    Object.assign(view, {
      tree: t, n: n, parents: parents, depth: depth, end: end, nkids: nkids, names: names,
      index: index, kinds: t.kinds, jobs: t.jobs || null, controls: t.controls || [],
      states: "p".repeat(n), counts: new Int32Array(n * 7), start: new Float64Array(n).fill(NaN),
      finish: new Float64Array(n).fill(NaN), reasons: new Map(), attempts: new Map(),
      expanded: new Uint8Array(n), touched: new Uint8Array(n), visible: new Int32Array(0),
      live: true, lower: [],
    });
    view.lower = t.paths.map((p) => p.toLowerCase());
    timing.tree = performance.now();
    document.body.classList.toggle("no-jobs", !view.jobs);
    $("p-title").textContent = view.ref;
    const can = (a) => !readOnly && view.controls.indexOf(a) >= 0;
    $("p-stop").hidden = !can("stop");
    $("p-delete").hidden = !can("delete");
  }

  function loadStates(s) {
    if (!view.tree) return;
    const n = view.n;
    clockSkew = Date.now() / 1000 - s.now;
    view.states = s.states;
    view.live = s.live;
    view.start.fill(NaN);
    view.finish.fill(NaN);
    for (const [i, a, b] of s.times) { view.start[i] = a; view.finish[i] = b === null ? NaN : b; }
    view.reasons = new Map(s.reasons);
    view.attempts = new Map(s.attempts);
    // Per-branch counts by state and time span, children before parents.
    const counts = view.counts;
    counts.fill(0);
    const kinds = view.kinds, parents = view.parents, st = s.states;
    const start = view.start, finish = view.finish;
    const open = new Uint8Array(n); // a branch with a node still to finish below
    for (let i = n - 1; i >= 0; i--) {
      if (kinds[i] === "E") {
        counts[i * 7 + COUNT_ORDER.indexOf(st[i])]++;
        if (st[i] === "r" || (isNaN(finish[i]) && !isNaN(start[i]))) open[i] = 1;
      }
      if (i > 0) {
        const p = parents[i];
        for (let k = 0; k < 7; k++) counts[p * 7 + k] += counts[i * 7 + k];
        if (!isNaN(start[i]) && !(start[p] <= start[i])) start[p] = start[i];
        if (!isNaN(finish[i]) && !(finish[p] >= finish[i])) finish[p] = finish[i];
        if (open[i]) open[p] = 1;
      }
    }
    for (let i = 0; i < n; i++) if (kinds[i] !== "E" && open[i]) finish[i] = NaN;
    // Collapsed by default, except the root and the branches with running or failed work.
    for (let i = 0; i < n; i++) {
      if (view.touched[i]) continue;
      const c = i * 7;
      view.expanded[i] = i === 0 || counts[c + 2] + counts[c + 4] + counts[c + 5] > 0 ? 1 : 0;
    }
    const phase = s.phase || s.root;
    $("p-phase").textContent = phase;
    $("p-phase").className = "phase s-" + st[0];
    const pc = $("p-counts");
    pc.textContent = "";
    for (const k of COUNT_ORDER) {
      const v = counts[COUNT_ORDER.indexOf(k)]; // the root's
      if (v) pc.appendChild(el("b", "s-" + k, v + " " + STATE_NAMES[k]));
    }
    banner(s.message || "", false);
    $("p-stop").hidden = readOnly || view.controls.indexOf("stop") < 0 || !s.live;
    layout();
    if (timing.firstRows === null && view.visible.length) {
      timing.firstRows = performance.now();
      timing.rows = view.visible.length;
      document.body.dataset.ready = "1";
    }
    if (view.pendingSelect !== null) {
      const p = view.pendingSelect;
      view.pendingSelect = null;
      select(p);
    } else if (view.selected !== null) {
      refreshDetailState();
      const i = view.selected;
      // A node run again (a rerun, a retry) has a new log: follow that one.
      if (view.kinds[i] === "E" && view.start[i] !== view.selectedStart && !isNaN(view.start[i])) {
        view.selectedStart = view.start[i];
        if (logStream) { logStream.close(); logStream = null; }
        $("d-log").textContent = "";
        followLog(view.tree.paths[i]);
      }
    }
  }

  // --- the virtualised tree ---------------------------------------------------------------
  function filterActive() { return $("filter").value !== "" || $("search").value.trim() !== ""; }

  function computeVisible() {
    const n = view.n, end = view.end, expanded = view.expanded;
    const out = new Int32Array(n);
    let count = 0;
    if (filterActive()) {
      // Matching nodes and their ancestors, every branch open.
      const want = $("filter").value, q = $("search").value.trim().toLowerCase();
      const keep = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        if ((want && view.states[i] !== want) || (q && view.lower[i].indexOf(q) < 0)) continue;
        for (let j = i; j >= 0 && !keep[j]; j = view.parents[j]) keep[j] = 1;
      }
      for (let i = 0; i < n; i++) if (keep[i]) out[count++] = i;
    } else {
      let i = 0;
      while (i < n) {
        out[count++] = i;
        i = expanded[i] ? i + 1 : end[i];
      }
    }
    view.visible = out.subarray(0, count);
  }

  function layout() {
    computeVisible();
    $("tree-spacer").style.height = view.visible.length * ROW_H + "px";
    paint();
  }

  const pool = [];
  function rowElement(k) {
    while (pool.length <= k) {
      const r = el("div", "row");
      r.appendChild(el("span", "name"));
      r.appendChild(el("span", "st"));
      r.appendChild(el("span", "dur"));
      r.appendChild(el("span", "cnt"));
      r.appendChild(el("span", "job"));
      r.addEventListener("click", onRowClick);
      pool.push(r);
    }
    return pool[k];
  }

  function paint() {
    if (!view || !view.tree) return;
    const scroller = $("tree-scroll");
    const rows = $("tree-rows");
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(view.visible.length, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW_H) + OVERSCAN);
    rows.style.top = first * ROW_H + "px";
    const now = serverNow();
    let k = 0;
    for (let v = first; v < last; v++, k++) {
      const r = rowElement(k);
      fillRow(r, view.visible[v], now);
      if (r.parentNode !== rows) rows.appendChild(r);
    }
    while (rows.childNodes.length > k) rows.removeChild(rows.lastChild);
  }

  function fillRow(r, i, now) {
    const st = view.states[i], kind = view.kinds[i];
    r.dataset.i = i;
    r.dataset.path = view.tree.paths[i];
    r.className = "row" + (view.selected === i ? " selected" : "");
    const [name, state, dur, cnt, job] = r.childNodes;
    name.textContent = "";
    name.style.paddingLeft = 6 + view.depth[i] * 16 + "px";
    const tog = el("span", "tog", kind === "E" ? "" : view.nkids[i] === 0 ? "" : (filterActive() || view.expanded[i]) ? "▾" : "▸");
    name.appendChild(tog);
    if (kind !== "E") name.appendChild(el("span", "kind", kind === "S" ? "→" : "⇉"));
    name.appendChild(el("span", "s-" + st, view.names[i]));
    state.textContent = STATE_ICONS[st] + " " + STATE_NAMES[st];
    state.className = "st s-" + st;
    const a = view.start[i], b = view.finish[i];
    dur.textContent = isNaN(a) ? "" : duration((isNaN(b) ? now : b) - a);
    cnt.textContent = "";
    if (kind !== "E") {
      for (let k = 0; k < 7; k++) {
        const v = view.counts[i * 7 + k];
        if (v) cnt.appendChild(el("b", "s-" + COUNT_ORDER[k], COUNT_ORDER[k].toUpperCase() + v));
      }
    } else if (view.reasons.has(i)) {
      cnt.appendChild(el("span", "s-" + st, view.reasons.get(i)));
    }
    job.textContent = view.jobs && view.jobs[i] ? view.jobs[i] : "";
  }

  function onRowClick(ev) {
    const i = Number(ev.currentTarget.dataset.i);
    const onToggle = ev.target.classList.contains("tog");
    if (view.kinds[i] !== "E" && (onToggle || ev.detail === 2)) {
      view.expanded[i] = view.expanded[i] ? 0 : 1;
      view.touched[i] = 1;
      layout();
      if (onToggle) return;
    }
    location.hash = "#/p/" + encodeURIComponent(view.ref) + encodeURIComponent(view.tree.paths[i]).replace(/%2F/g, "/");
  }

  $("tree-scroll").addEventListener("scroll", () => requestAnimationFrame(paint));
  window.addEventListener("resize", () => requestAnimationFrame(paint));
  $("filter").addEventListener("change", () => view && view.tree && layout());
  $("search").addEventListener("input", () => view && view.tree && layout());
  $("expand-all").addEventListener("click", () => {
    if (!view || !view.tree) return;
    view.expanded.fill(1); view.touched.fill(1); layout();
  });
  $("collapse-all").addEventListener("click", () => {
    if (!view || !view.tree) return;
    view.touched.fill(0);
    for (let i = 0; i < view.n; i++) {
      const c = i * 7;
      view.expanded[i] = i === 0 || view.counts[c + 2] + view.counts[c + 4] + view.counts[c + 5] > 0 ? 1 : 0;
    }
    layout();
  });
  setInterval(() => {
    if (view && view.tree && view.live) paint();
    document.querySelectorAll("#pipelines tbody tr").forEach((tr, k) => {
      const p = listRows[k];
      if (p && p.created) tr.querySelector(".age").textContent = duration(serverNow() - p.created);
    });
  }, 1000);

  for (const b of document.querySelectorAll("#toolbar .control")) {
    b.addEventListener("click", async () => {
      if (!view) return;
      const action = b.dataset.action;
      const what = view.ref.indexOf("local:") === 0
        ? " and its run directory (a run in progress is stopped first)?" : ", its Jobs and their pods?";
      if (action === "delete" && !confirm("Delete " + view.ref + what)) return;
      try { toast(await control(action, view.ref, "/")); } catch (e) { toast(e.message, true); }
      if (action === "delete") location.hash = "#/";
    });
  }
  $("d-rerun").addEventListener("click", async () => {
    if (!view || view.selected === null) return;
    try { toast(await control("rerun", view.ref, view.tree.paths[view.selected])); } catch (e) { toast(e.message, true); }
  });
  // Live controls (k8sco reset, skip, unskip, modify): the server runs the CLI's code.
  for (const b of document.querySelectorAll("#d-actions .live")) {
    b.addEventListener("click", async () => {
      if (!view || view.selected === null) return;
      const action = b.dataset.action, path = view.tree.paths[view.selected];
      let extra = null;
      if (action === "modify") {
        const sets = prompt("Parameters to set on " + path + ", NAME=VALUE separated by spaces (e.g. cpu=2 max_time=1h); empty for none", "");
        if (sets === null) return;
        const command = view.kinds[view.selected] === "E" ? prompt("New command (empty: keep it)", "") : "";
        if (command === null) return;
        extra = { set: sets.trim().split(/\s+/).filter((x) => x).join("\n") };
        if (command) extra.command = command;
      } else if (action === "reset" && !confirm("Reset " + path + "? Its nodes run again, done ones too.")) {
        return;
      }
      try { toast(await control(action, view.ref, path, extra)); } catch (e) { toast(e.message, true); }
    });
  }

  // --- a node's detail --------------------------------------------------------------------
  let logStream = null;
  function select(path) {
    if (!view || !view.tree) { if (view) view.pendingSelect = path; return; }
    if (logStream) { logStream.close(); logStream = null; }
    if (path === null || !view.index.has(path)) {
      view.selected = null;
      $("detail").hidden = true;
      $("detail-empty").hidden = false;
      paint();
      return;
    }
    const i = view.index.get(path);
    view.selected = i;
    view.selectedStart = view.start[i];
    // Open the branches down to it, so it shows in the tree.
    for (let j = view.parents[i]; j >= 0; j = view.parents[j]) { view.expanded[j] = 1; view.touched[j] = 1; }
    layout();
    scrollTo(i);
    $("detail-empty").hidden = true;
    $("detail").hidden = false;
    $("d-path").textContent = path;
    $("d-facts").textContent = "";
    $("d-doc").textContent = "";
    $("d-command").textContent = "";
    document.querySelector("#d-params tbody").textContent = "";
    $("d-log").textContent = "";
    // A finished local run is not run again (k8sco rerun says so); a cluster's Pipeline is.
    const ended = view.ref.indexOf("local:") === 0 && !view.live;
    $("d-rerun").hidden = readOnly || view.controls.indexOf("rerun") < 0 || ended;
    for (const b of document.querySelectorAll("#d-actions .live")) {
      b.hidden = readOnly || view.controls.indexOf(b.dataset.action) < 0 || ended;
    }
    const exec = view.kinds[i] === "E";
    $("d-log-title").hidden = !exec;
    $("d-log").hidden = !exec;
    // What the page knows already shows at once; command, parameters and doc follow.
    view.detail = { path: path, kind: KIND_LABEL[view.kinds[i]], job: view.jobs ? view.jobs[i] : null };
    renderFacts(view.detail);
    loadDetail(path, i);
    if (exec) followLog(path);
  }

  function scrollTo(i) {
    const v = Array.prototype.indexOf.call(view.visible, i);
    if (v < 0) return;
    const sc = $("tree-scroll");
    const top = v * ROW_H;
    if (top < sc.scrollTop || top > sc.scrollTop + sc.clientHeight - ROW_H) sc.scrollTop = Math.max(0, top - sc.clientHeight / 3);
    paint();
  }

  async function loadDetail(path, i) {
    const mine = view;
    const res = await fetch("/api/node?p=" + encodeURIComponent(view.ref) + "&path=" + encodeURIComponent(path));
    const d = await res.json();
    if (view !== mine || view.selected !== i) return;
    if (!res.ok) { toast(d.error || res.statusText, true); return; }
    view.detail = d;
    renderFacts(d);
    if (d.doc) renderMarkdown(d.doc, $("d-doc"));
    $("d-command").textContent = d.command || (d.kind + " (its children run)");
    const body = document.querySelector("#d-params tbody");
    for (const p of d.params) {
      const tr = el("tr");
      tr.appendChild(el("td", "", p.name));
      let value = p.value;
      if (value && typeof value === "object" && value.secret) value = "secret " + value.secret + " / " + value.key;
      else if (typeof value !== "string") value = JSON.stringify(value);
      tr.appendChild(el("td", "", value));
      tr.appendChild(el("td", "muted", p.from));
      body.appendChild(tr);
    }
  }

  function renderFacts(d) {
    const dl = $("d-facts");
    dl.textContent = "";
    const i = view.selected;
    const st = view.states[i];
    const add = (k, v, cls) => {
      if (v === null || v === undefined || v === "") return;
      dl.appendChild(el("dt", "", k));
      dl.appendChild(el("dd", cls || "", v));
    };
    add("Kind", d.kind);
    add("State", STATE_NAMES[st], "s-" + st);
    const a = view.start[i], b = view.finish[i];
    if (!isNaN(a)) {
      add("Started", new Date(a * 1000).toLocaleString());
      add("Finished", isNaN(b) ? "" : new Date(b * 1000).toLocaleString());
      add("Duration", duration((isNaN(b) ? serverNow() : b) - a));
    }
    if (d.kind === "Exec") {
      const tries = view.attempts.get(i) || (isNaN(a) ? 0 : 1);
      add("Attempts", d.retries === undefined ? tries : tries + " of " + (d.retries + 1));
      add("Exit code", d.exit_code);
      add("Reason", view.reasons.get(i), "error");
      add("Job", d.job);
    } else {
      const parts = [];
      for (let k = 0; k < 7; k++) {
        const v = view.counts[i * 7 + k];
        if (v) parts.push(v + " " + STATE_NAMES[COUNT_ORDER[k]]);
      }
      add("Below", parts.join(", "));
    }
  }

  function refreshDetailState() {
    if (view.detail && view.detail.path === view.tree.paths[view.selected]) renderFacts(view.detail);
  }

  function followLog(path) {
    const box = $("d-log");
    const writer = new LogWriter(box);
    $("d-log-state").textContent = "(following)";
    logStream = stream("/api/events/log?p=" + encodeURIComponent(view.ref) + "&path=" + encodeURIComponent(path), {
      log: (m) => writer.write(m.text),
      end: () => { writer.close(); $("d-log-state").textContent = ""; if (logStream) logStream.close(); },
      error: (msg) => { writer.write("[k8sco: " + msg + "]\n"); },
    });
  }

  // --- logs with <ConductoMarkdown> blocks ------------------------------------------------
  const OPEN = "<ConductoMarkdown>", CLOSE = "</ConductoMarkdown>";
  class LogWriter {
    constructor(box) { this.box = box; this.partial = ""; this.block = null; this.plain = null; this.size = 0; }
    write(text) {
      this.size += text.length;
      const stick = this.box.scrollTop + this.box.clientHeight >= this.box.scrollHeight - 4;
      let rest = this.partial + text;
      const cut = rest.lastIndexOf("\n");
      if (cut < 0) { this.partial = rest; return; }
      this.partial = rest.slice(cut + 1);
      this.feed(rest.slice(0, cut + 1));
      if (stick) this.box.scrollTop = this.box.scrollHeight;
    }
    feed(rest) {
      while (rest) {
        if (this.block === null) {
          const at = rest.indexOf(OPEN);
          if (at < 0) { this.text(rest); return; }
          if (rest.slice(0, at).trim()) this.text(rest.slice(0, at) + "\n");
          this.block = [];
          rest = rest.slice(at + OPEN.length);
        } else {
          const at = rest.indexOf(CLOSE);
          if (at < 0) { this.block.push(rest); return; }
          this.block.push(rest.slice(0, at));
          const md = el("div", "markdown");
          renderMarkdown(this.block.join(""), md);
          this.box.appendChild(md);
          this.plain = null;
          this.block = null;
          rest = rest.slice(at + CLOSE.length).replace(/^\r?\n/, "");
        }
      }
    }
    text(t) {
      if (!this.plain) { this.plain = el("div", "plain"); this.box.appendChild(this.plain); }
      this.plain.appendChild(document.createTextNode(t));
    }
    close() {
      if (this.partial) { this.feed(this.partial + "\n"); this.partial = ""; }
      if (this.block !== null) {
        const md = el("div", "markdown");
        renderMarkdown(this.block.join(""), md);
        this.box.appendChild(md);
        this.block = null;
      }
    }
  }

  // --- a small markdown renderer: builds elements, never parses HTML -------------------
  function renderMarkdown(src, into) {
    const lines = src.replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (/^\s*```/.test(line)) {
        const code = [];
        for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) code.push(lines[i]);
        i++;
        const pre = el("pre");
        pre.appendChild(el("code", "", code.join("\n")));
        into.appendChild(pre);
        continue;
      }
      const h = line.match(/^(#{1,6})\s+(.*)$/);
      if (h) { inline(h[2], into.appendChild(el("h" + h[1].length))); i++; continue; }
      if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
        const ordered = /^\s*\d/.test(line);
        const list = into.appendChild(el(ordered ? "ol" : "ul"));
        while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
          inline(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""), list.appendChild(el("li")));
          i++;
        }
        continue;
      }
      if (/^\s*\|.*\|\s*$/.test(line)) {
        const table = into.appendChild(el("table"));
        let first = true;
        while (i < lines.length && /^\s*\|.*\|\s*$/.test(lines[i])) {
          const cells = lines[i].trim().slice(1, -1).split("|");
          i++;
          if (cells.every((c) => /^\s*:?-+:?\s*$/.test(c))) continue;
          const tr = table.appendChild(el("tr"));
          for (const c of cells) inline(c.trim(), tr.appendChild(el(first ? "th" : "td")));
          first = false;
        }
        continue;
      }
      if (/^\s*>/.test(line)) {
        const q = into.appendChild(el("blockquote"));
        while (i < lines.length && /^\s*>/.test(lines[i])) { inline(lines[i].replace(/^\s*>\s?/, ""), q); q.appendChild(el("br")); i++; }
        continue;
      }
      if (!line.trim()) { i++; continue; }
      const para = [];
      while (i < lines.length && lines[i].trim() && !/^(#{1,6}\s|\s*```|\s*([-*+]|\d+[.)])\s|\s*\||\s*>)/.test(lines[i])) para.push(lines[i++]);
      inline(para.join(" "), into.appendChild(el("p")));
    }
  }

  // `code`, **strong**, *em* / _em_, [text](http(s) url); everything else is text.
  function inline(text, into) {
    const re = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[[^\]]+\]\([^)\s]+\))/g;
    let at = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > at) into.appendChild(document.createTextNode(text.slice(at, m.index)));
      const t = m[0];
      if (m[1]) into.appendChild(el("code", "", t.slice(1, -1)));
      else if (m[2]) inline(t.slice(2, -2), into.appendChild(el("strong")));
      else if (m[3]) inline(t.slice(1, -1), into.appendChild(el("em")));
      else {
        const mm = t.match(/^\[([^\]]+)\]\(([^)\s]+)\)$/);
        if (/^https?:\/\//i.test(mm[2])) {
          const a = el("a", "", mm[1]);
          a.href = mm[2];
          a.rel = "noopener noreferrer";
          a.target = "_blank";
          into.appendChild(a);
        } else {
          into.appendChild(document.createTextNode(mm[1]));
        }
      }
      at = m.index + t.length;
    }
    if (at < text.length) into.appendChild(document.createTextNode(text.slice(at)));
  }
  window.k8scoMarkdown = renderMarkdown; // for the browser test

  route();
})();
