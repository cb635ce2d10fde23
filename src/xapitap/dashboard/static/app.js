// xapitap dashboard: one page over the dashboard's JSON API. No framework, no network access
// beyond this origin. Everything from the store is shown with textContent, never as HTML:
// object names and reasons come from the traffic.
"use strict";

const EXT = "https://w3id.org/xapi/video/extensions/";
const SOURCE = "https://xapitap.github.io/xapi/extensions/source";
const MAX_ROWS = 500; // the feed's DOM stays bounded under a flood
const SVGNS = "http://www.w3.org/2000/svg";
const VIDEO_VERBS = ["initialized", "played", "paused", "seeked", "interacted", "completed", "terminated"];

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (response.status === 401 || response.status === 403) {
    showProblem("The dashboard needs its token: open the address printed when it started (…/?token=…).");
    throw new Error("not authorised");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function showProblem(text) {
  const p = $("problem");
  p.textContent = text;
  p.hidden = !text;
}

const seconds = (t) => {
  if (t === null || t === undefined) return "";
  const s = Math.max(0, Number(t));
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
};
const percent = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 1000) / 10}%`);
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "–");
const short = (id) => (id && id.length > 12 ? id.slice(0, 10) + "…" : id || "–");
const firstValue = (map) => (map && typeof map === "object" ? Object.values(map)[0] : undefined);

// ---- one statement as a feed row -------------------------------------------------------

function rowOf(st) {
  const context = (st.context && st.context.extensions) || {};
  const result = (st.result && st.result.extensions) || {};
  const source = context[SOURCE] || {};
  const actor = st.actor || {};
  const who = (actor.account && actor.account.name) || actor.mbox_sha1sum || actor.mbox || actor.openid || "";
  const verb = firstValue(st.verb && st.verb.display) || String((st.verb && st.verb.id) || "").split("/").pop();
  const definition = (st.object && st.object.definition) || {};
  let position = "";
  if (result[EXT + "time-to"] !== undefined) position = `${seconds(result[EXT + "time-from"])} → ${seconds(result[EXT + "time-to"])}`;
  else if (result[EXT + "time"] !== undefined) position = seconds(result[EXT + "time"]);
  if (result[EXT + "progress"] !== undefined) position += `${position ? " · " : ""}${percent(result[EXT + "progress"])}`;
  return {
    time: clock(st.timestamp),
    platform: source.platform || "",
    actor: who,
    verb,
    object: firstValue(definition.name) || (st.object && st.object.id) || "",
    position,
    inferred: source.inferred === true,
  };
}

// ---- live feed ---------------------------------------------------------------------------

const feed = { source: null, last: 0, paused: false, pending: [], frame: 0, selected: null, missed: 0 };

function filterQuery() {
  const q = new URLSearchParams();
  for (const name of ["platform", "verb", "actor", "video"]) {
    const value = $("f-" + name).value.trim();
    if (value) q.set(name, value);
  }
  return q;
}

function feedRow(st) {
  const r = rowOf(st);
  const open = () => showStatement(st, tr);
  const tr = el(
    "tr",
    { tabindex: 0, class: r.inferred ? "inferred" : "", onclick: open, onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } } },
    el("td", { text: r.time }),
    el("td", { text: r.platform }),
    el("td", { text: short(r.actor), title: r.actor }),
    el("td", { text: r.verb }),
    el("td", { text: r.object, title: r.object, class: "object" }),
    el("td", { text: r.position }),
    el("td", { text: r.inferred ? "inferred" : "", class: "mark" }),
  );
  tr.dataset.id = st.id;
  return tr;
}

function showStatement(st, tr) {
  if (feed.selected) feed.selected.classList.remove("selected");
  feed.selected = tr;
  tr.classList.add("selected");
  $("statement-json").textContent = JSON.stringify(st, null, 2);
  $("statement").hidden = false;
}

function render() {
  feed.frame = 0;
  const batch = feed.pending.splice(0);
  if (!batch.length) return;
  const rows = $("feed-rows");
  const fragment = document.createDocumentFragment();
  for (let i = batch.length - 1; i >= 0 && fragment.childNodes.length < MAX_ROWS; i--) fragment.append(feedRow(batch[i]));
  rows.prepend(fragment);
  while (rows.childNodes.length > MAX_ROWS) rows.lastChild.remove();
  feedState();
}

function feedState() {
  const shown = $("feed-rows").childNodes.length;
  const text = feed.paused
    ? `paused${feed.missed ? ": newer statements are waiting" : ""}`
    : `live · showing the newest ${shown}${shown >= MAX_ROWS ? " (older ones are in the store and the API)" : ""}`;
  if ($("feed-state").textContent !== text) $("feed-state").textContent = text;
}

// New rows are drawn at most four times a second: a flood costs a few layouts a second, not
// one per frame.
const DRAW_EVERY_MS = 250;
let drawnAt = 0;

function queue(statement) {
  feed.pending.push(statement);
  if (feed.pending.length > MAX_ROWS) feed.pending.splice(0, feed.pending.length - MAX_ROWS);
  if (feed.frame) return;
  const wait = Math.max(0, drawnAt + DRAW_EVERY_MS - performance.now());
  feed.frame = setTimeout(() => requestAnimationFrame(() => { drawnAt = performance.now(); render(); }), wait);
}

async function startFeed() {
  stopFeed();
  const q = filterQuery();
  q.set("limit", "200");
  const page = await api("/api/statements?" + q);
  $("feed-rows").replaceChildren();
  feed.pending = [];
  for (const st of page.statements) feed.pending.push(st);
  render();
  feed.last = page.last;
  feed.missed = 0;
  openStream();
  feedState();
}

function openStream() {
  const q = filterQuery();
  q.set("after", String(feed.last));
  const source = new EventSource("/api/stream?" + q);
  source.addEventListener("statement", (e) => {
    feed.last = Number(e.lastEventId);
    queue(JSON.parse(e.data));
    soon(refreshStatus);
  });
  source.onerror = () => {
    // EventSource reconnects by itself, with Last-Event-ID: nothing is missed or repeated.
    if (source.readyState === EventSource.CLOSED) setTimeout(() => { if (feed.source === source) openStream(); }, 2000);
  };
  feed.source = source;
}

function stopFeed() {
  if (feed.source) feed.source.close();
  feed.source = null;
}

function togglePause() {
  feed.paused = !feed.paused;
  const button = $("pause");
  button.textContent = feed.paused ? "Resume" : "Pause";
  button.setAttribute("aria-pressed", String(feed.paused));
  if (feed.paused) stopFeed();
  else startFeed();
  feedState();
}

function setOptions(select, values) {
  const current = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  for (const [value, label] of values) {
    if (!known.has(value)) select.append(el("option", { value, text: label }));
  }
  select.value = current;
}

// ---- status: header, accounting, delivery ------------------------------------------------

// Run `task` at most once a second however often it is asked for (a flood of statements
// refreshes the header once a second, not once per statement).
const pendingTasks = new Set();
function soon(task) {
  if (pendingTasks.has(task)) return;
  pendingTasks.add(task);
  setTimeout(() => { pendingTasks.delete(task); task(); }, 1000);
}

const seenTypes = new Set();
let firstStatus = true;
let lastStatus = null;

async function refreshStatus() {
  let s;
  try {
    s = await api("/api/status");
  } catch (e) {
    return;
  }
  lastStatus = s;
  const about = s.about;
  $("mode").textContent = about.mode === "live" ? "live, in the proxy" : "reading a store";
  $("mode").title = about.store;
  $("g-statements").textContent = s.statements;
  $("g-sessions").textContent = s.open_sessions;
  $("g-translation").textContent = s.translation.behind ? `${s.translation.behind} requests behind` : "caught up";
  $("g-last").textContent = s.last_stored_at ? new Date(s.last_stored_at).toLocaleString() : "–";
  const stuck = s.targets.reduce((n, t) => n + t.queued, 0);
  const dead = s.targets.reduce((n, t) => n + t.dead, 0);
  $("g-delivery").textContent = s.targets.length ? `${stuck} queued · ${dead} dead` : "no LRS (store only)";
  $("g-delivery").className = dead ? "bad" : "";
  showEmpty(s);
  renderAccounting(s);
  renderDelivery(s);
  const platforms = new Set(s.accounting.filter((r) => r.fate === "translated").map((r) => r.platform));
  setOptions($("f-platform"), [...platforms].sort().map((p) => [p, p]));
  firstStatus = false;
}

function showEmpty(s) {
  const nothing = s.statements === 0 && s.accounting.length === 0;
  $("empty").hidden = !nothing;
  if (!nothing) return;
  const steps = $("empty-steps");
  const about = s.about;
  const items =
    about.mode === "live"
      ? [
          `Set the learner's browser to use the proxy at ${about.proxy || "the proxy's address"} (HTTP and HTTPS).`,
          `Install the proxy's CA certificate in that browser: ${about.ca || "mitmproxy-ca-cert.pem in the proxy's confdir"} (or open http://mitm.it through the proxy).`,
          "Open a course page and play a video: statements appear here as they are stored.",
          "Open this dashboard in a window that does not use the proxy: the proxy refuses requests to the dashboard.",
        ]
      : [`The store ${about.store} holds no statements yet.`];
  steps.replaceChildren(...items.map((text) => el("li", { text })));
}

function renderAccounting(s) {
  const requests = new Map();
  const events = new Map();
  const now = Date.now();
  for (const r of s.accounting) {
    if (r.fate === "request" || r.fate === "unreadable") {
      const row = requests.get(r.rule) || { matched: 0, unreadable: [] };
      if (r.fate === "request") row.matched += r.count;
      else row.unreadable.push(`${r.count} ${r.reason}`);
      requests.set(r.rule, row);
      continue;
    }
    const key = `${r.platform}\u0000${r.event_type}`;
    const row = events.get(key) || { platform: r.platform, type: r.event_type, translated: [], ignored: [], rejected: [], quarantined: [], first: r.first_seen };
    row[r.fate].push(r.reason ? `${r.count} ${r.reason}` : String(r.count));
    if (r.first_seen && (!row.first || r.first_seen < row.first)) row.first = r.first_seen;
    events.set(key, row);
  }
  $("request-rows").replaceChildren(
    ...[...requests].map(([rule, row]) => el("tr", {}, el("td", { text: rule }), el("td", { text: row.matched }), el("td", { text: row.unreadable.join("; ") || "0" }))),
  );
  // A type is new when the store first saw it in the last day while its platform was seen
  // before that, or when it appears while this page is open.
  const platformFirst = new Map();
  for (const row of events.values()) {
    if (row.first && (!platformFirst.has(row.platform) || row.first < platformFirst.get(row.platform))) platformFirst.set(row.platform, row.first);
  }
  const rows = [];
  for (const [key, row] of events) {
    const first = row.first ? Date.parse(row.first) : NaN;
    const recent = first > now - 86400e3 && Date.parse(platformFirst.get(row.platform)) < now - 86400e3;
    const appeared = !firstStatus && !seenTypes.has(key);
    seenTypes.add(key);
    const isNew = recent || appeared || row.highlight;
    const name = el("td", { text: row.type || "(whole request)" });
    if (isNew) name.append(" ", el("mark", { class: "new", text: "new", title: "first seen " + (row.first || "just now") }));
    rows.push(
      el(
        "tr",
        { class: isNew ? "new" : "" },
        el("td", { text: row.platform }),
        name,
        el("td", { text: row.translated.join("; ") || "0" }),
        el("td", { text: row.ignored.join("; ") || "0" }),
        el("td", { text: row.rejected.join("; ") || "0", class: row.rejected.length ? "bad" : "" }),
        el("td", { text: row.quarantined.join("; ") || "0", class: row.quarantined.length ? "bad" : "" }),
        el("td", { text: row.first ? new Date(row.first).toLocaleString() : "–" }),
      ),
    );
  }
  if (!firstStatus) for (const r of rows) if (r.classList.contains("new")) r.dataset.appeared = "1";
  $("event-rows").replaceChildren(...rows);
  $("quarantine-rows").replaceChildren(
    ...s.quarantine.map((q) => el("tr", {}, el("td", { text: q.platform }), el("td", { text: q.reason }), el("td", { text: q.count }))),
  );
}

function renderDelivery(s) {
  const box = $("targets");
  if (!s.targets.length) {
    box.replaceChildren(el("p", { text: "No LRS is configured: statements are kept in the store only. Set xapi_lrs_endpoint (or xapi_targets_file) to forward them." }));
  } else {
    box.replaceChildren(
      ...s.targets.map((t) => {
        const facts = el(
          "dl",
          { class: "facts" },
          ...[
            ["state", t.state],
            ["xAPI", t.version || "?"],
            ["delivered", t.delivered],
            ["queued", t.queued],
            ["dead letters", t.dead],
            ["last success", t.last_success_at ? new Date(t.last_success_at).toLocaleString() : "never"],
            ["last error", t.last_error ? `${new Date(t.last_error_at).toLocaleString()}: ${t.last_error}` : "none"],
            ["crashes", t.crashes ? `${t.crashes}, last: ${t.last_crash}` : "0"],
          ].map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))),
        );
        const card = el("article", { class: "target" }, el("h2", { text: `${t.target} · ${t.endpoint}` }), facts);
        if (t.dead) {
          const button = el("button", { type: "button", text: `Retry ${t.dead} dead letters`, onclick: () => retry(t.target, button) });
          if (!s.about.actions) {
            button.disabled = true;
            button.title = "This dashboard only reads the store: run `xapitap retry`.";
          }
          card.append(button);
        }
        return card;
      }),
    );
  }
  $("dead-rows").replaceChildren(
    ...s.dead_letters.map((d) => el("tr", {}, el("td", { text: d.target }), el("td", { text: d.statement_id }), el("td", { text: d.reason }))),
  );
}

async function retry(target, button) {
  button.disabled = true;
  try {
    const done = await api("/api/retry?target=" + encodeURIComponent(target), { method: "POST" });
    button.textContent = `Re-queued ${done.requeued}`;
  } catch (e) {
    button.textContent = "Retry failed";
  }
  refreshStatus();
}

// ---- videos ------------------------------------------------------------------------------

let selectedVideo = null;

async function refreshVideos() {
  const { videos } = await api("/api/videos");
  setOptions($("f-video"), videos.map((v) => [v.id, v.name || v.id]));
  $("video-rows").replaceChildren(
    ...videos.map((v) => {
      const open = () => showVideo(v.key);
      return el(
        "tr",
        { tabindex: 0, class: v.key === selectedVideo ? "selected" : "", onclick: open, onkeydown: (e) => { if (e.key === "Enter") open(); } },
        el("td", { text: v.name || v.id, title: v.id }),
        el("td", { text: v.platform }),
        el("td", { text: v.length ? seconds(v.length) : "unknown" }),
        el("td", { text: v.learners }),
        el("td", { text: v.sessions }),
        el("td", { text: percent(v.median_progress) }),
        el("td", { text: `${percent(v.completion_rate)} (${v.completed_sessions})` }),
      );
    }),
  );
  if (selectedVideo) showVideo(selectedVideo);
}

async function showVideo(key) {
  selectedVideo = key;
  const v = await api("/api/videos/" + key);
  $("video-detail").hidden = false;
  $("video-title").textContent = v.name || v.id;
  const half = v.reached.findIndex((n) => n < v.sessions / 2);
  $("video-summary").textContent =
    `${v.sessions} sessions by ${v.learners} learners; median progress ${percent(v.median_progress)}; ` +
    `${v.completed_sessions} completed (${percent(v.completion_rate)}). ` +
    (half >= 0 ? `Half of the sessions got no further than ${seconds(half * v.bin_seconds)}.` : "");
  $("views-chart-box").replaceChildren(viewsChart(v));
  $("timelines").replaceChildren(...v.timelines.map((t) => timeline(t, v.length || v.views.length * v.bin_seconds)));
}

function viewsChart(v) {
  const width = 800, height = 160, n = Math.max(v.views.length, 1);
  const top = Math.max(v.sessions, 1);
  const chart = svg("svg", { id: "views-chart", viewBox: `0 0 ${width} ${height + 20}`, role: "img", "aria-label": `Views across the video, ${n} bins of ${v.bin_seconds} s` });
  chart.dataset.views = JSON.stringify(v.views);
  chart.dataset.reached = JSON.stringify(v.reached);
  chart.dataset.binSeconds = String(v.bin_seconds);
  const w = width / n;
  v.views.forEach((count, i) => {
    if (!count) return;
    const h = (count / top) * height;
    const bar = svg("rect", { x: i * w, y: height - h, width: Math.max(w, 0.5), height: h, class: "bar" });
    const tip = svg("title", {});
    tip.textContent = `${seconds(i * v.bin_seconds)}: ${count} sessions played it`;
    bar.append(tip);
    chart.append(bar);
  });
  const points = v.reached.map((count, i) => `${(i + 0.5) * w},${height - (count / top) * height}`).join(" ");
  if (points) chart.append(svg("polyline", { points, class: "reached" }));
  chart.append(svg("line", { x1: 0, y1: height, x2: width, y2: height, class: "axis" }));
  for (const [x, label] of [[0, "0:00"], [width, seconds(n * v.bin_seconds)]]) {
    const text = svg("text", { x, y: height + 15, "text-anchor": x ? "end" : "start" });
    text.textContent = label;
    chart.append(text);
  }
  return chart;
}

function timeline(t, length) {
  const width = 800, height = 26, scale = (x) => (Math.min(x, length) / Math.max(length, 1)) * width;
  const strip = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "strip", role: "img", "aria-label": `Session ${t.session_id}` });
  strip.dataset.played = JSON.stringify(t.played);
  strip.append(svg("rect", { x: 0, y: 8, width, height: 10, class: "track" }));
  for (const [a, b] of t.played) strip.append(svg("rect", { x: scale(a), y: 8, width: Math.max(scale(b) - scale(a), 1), height: 10, class: "played" }));
  for (const m of t.marks) {
    if (m.verb === "paused" && m.time !== undefined) strip.append(svg("rect", { x: scale(m.time) - 1, y: 4, width: 2, height: 18, class: "pause" }));
    if (m.verb === "seeked" && m.time_from !== undefined) strip.append(svg("line", { x1: scale(m.time_from), y1: 4, x2: scale(m.time_to), y2: 4, class: "seek" }));
  }
  if (t.completed) strip.append(svg("circle", { cx: width - 6, cy: 13, r: 5, class: "done" }));
  const label = `${short(t.actor)} · ${new Date(t.started).toLocaleString()} · ${percent(t.progress)}${t.completed ? " · completed" : ""}${t.terminated ? "" : " · open"}`;
  return el("div", { class: "timeline" }, el("div", { class: "label", text: label }), strip);
}

// ---- over time ---------------------------------------------------------------------------

async function refreshActivity() {
  const { per_minute } = await api("/api/activity?minutes=60");
  const width = 800, height = 140, n = Math.max(per_minute.length, 1);
  const top = Math.max(1, ...per_minute.map(([, c]) => c));
  const chart = svg("svg", { id: "minute-chart", viewBox: `0 0 ${width} ${height + 20}`, role: "img", "aria-label": "Statements stored per minute" });
  chart.dataset.perMinute = JSON.stringify(per_minute);
  const w = width / n;
  per_minute.forEach(([minute, count], i) => {
    const h = (count / top) * height;
    const bar = svg("rect", { x: i * w + 1, y: height - h, width: Math.max(w - 2, 1), height: h, class: "bar" });
    const tip = svg("title", {});
    tip.textContent = `${minute}: ${count}`;
    bar.append(tip);
    chart.append(bar);
  });
  for (const [x, i] of [[0, 0], [width, n - 1]]) {
    const text = svg("text", { x, y: height + 15, "text-anchor": x ? "end" : "start" });
    text.textContent = per_minute[i] ? new Date(per_minute[i][0] + "Z").toLocaleTimeString() : "";
    chart.append(text);
  }
  const peak = svg("text", { x: 4, y: 12 });
  peak.textContent = `peak ${top}/min`;
  chart.append(peak);
  $("minute-chart-box").replaceChildren(chart);
}

// ---- tabs and start-up -------------------------------------------------------------------

const refreshers = { videos: refreshVideos, time: refreshActivity };
let activeTab = "feed";

function selectTab(tab) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  activeTab = tab.getAttribute("aria-controls");
  if (refreshers[activeTab]) refreshers[activeTab]().catch(() => {});
}

function start() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next);
    });
  }
  setOptions($("f-verb"), VIDEO_VERBS.map((v) => [v, v]));
  for (const id of ["f-platform", "f-verb", "f-video"]) $(id).addEventListener("change", () => { if (!feed.paused) startFeed(); });
  let typing = 0;
  $("f-actor").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { if (!feed.paused) startFeed(); }, 400); });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("pause").addEventListener("click", togglePause);
  $("close-statement").addEventListener("click", () => { $("statement").hidden = true; if (feed.selected) feed.selected.focus(); });
  startFeed().catch(() => {});
  refreshStatus();
  refreshVideos().catch(() => {});
  // Videos are looked at again when statements were added, on their tab (every 2 s at
  // most); the feed's video filter asks for them when it is opened.
  let lastSeen = -1;
  let videosBusy = false;
  $("f-video").addEventListener("focus", () => refreshVideos().catch(() => {}));
  setInterval(() => {
    if (document.hidden) return;
    refreshStatus().then(() => {
      if (!lastStatus || lastStatus.last_seq === lastSeen || activeTab !== "videos" || videosBusy) return;
      lastSeen = lastStatus.last_seq;
      videosBusy = true;
      refreshVideos().catch(() => {}).finally(() => { videosBusy = false; });
    });
    if (activeTab === "time") refreshActivity().catch(() => {});
  }, 2000);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("statement").hidden) $("close-statement").click();
  });
}

document.addEventListener("DOMContentLoaded", start);
