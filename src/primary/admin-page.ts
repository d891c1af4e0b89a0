/**
 * The admin page (`GET /` on the admin port): one self-contained document — no CDN, no font, no request but to
 * this origin. It reads `/feed` (server-sent events: five minutes of history, then a sample per second) and
 * `/channels` for the search, and draws its charts on canvases.
 */
export const ADMIN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard admin</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg:#0f1419; --panel:#182028; --line:#2a3642; --text:#e6edf3; --dim:#8b98a5; --ok:#3fb950; --warn:#d29922; --bad:#f85149; --a:#58a6ff; --b:#bc8cff; --c:#3fb950; --d:#f0883e; }
  * { box-sizing:border-box; }
  body { margin:0; background:var(--bg); color:var(--text); font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display:flex; flex-wrap:wrap; gap:16px; align-items:baseline; padding:14px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  .badge { padding:2px 8px; border-radius:10px; background:var(--line); font-size:12px; }
  .badge.blue { background:#1f4f8f; } .badge.green { background:#1d5b2c; }
  .badge.ok { background:#1d5b2c; } .badge.warn { background:#6b4c0f; } .badge.bad { background:#7d1f1c; }
  .dim { color:var(--dim); }
  main { padding:16px 20px; display:grid; gap:16px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:12px; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
  .card .v { font-size:24px; font-variant-numeric:tabular-nums; }
  .card .k { color:var(--dim); font-size:12px; }
  .charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(420px, 1fr)); gap:12px; }
  .chart { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:8px 10px; }
  .chart h2, section h2 { font-size:13px; margin:0 0 6px; color:var(--dim); font-weight:600; }
  .legend span { margin-right:10px; font-size:12px; }
  canvas { width:100%; height:140px; display:block; }
  table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
  th, td { text-align:right; padding:4px 8px; border-bottom:1px solid var(--line); }
  th:first-child, td:first-child { text-align:left; }
  th { color:var(--dim); font-weight:600; font-size:12px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
  #drain { display:none; border-color:var(--warn); }
  input { background:var(--bg); color:var(--text); border:1px solid var(--line); border-radius:6px; padding:5px 8px; width:260px; }
  .two { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
</style>
</head>
<body>
<header>
  <h1>Switchboard <span id="instance" class="badge">…</span></h1>
  <span>phase <b id="phase">…</b></span>
  <span class="dim">version <span id="version">…</span></span>
  <span class="dim">up <span id="uptime">…</span></span>
  <span>Redis <span id="redis" class="badge">…</span></span>
  <span id="link" class="dim">connecting…</span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="v" id="connections">–</div><div class="k">connections (<span id="conn-split">–</span>)</div></div>
    <div class="card"><div class="v" id="published-rate">–</div><div class="k">published / s</div></div>
    <div class="card"><div class="v" id="deliveries-rate">–</div><div class="k">deliveries / s</div></div>
    <div class="card"><div class="v" id="fanout">–</div><div class="k">fan-out p50 / p99 ms</div></div>
    <div class="card"><div class="v" id="slow">–</div><div class="k">slow-consumer closes / s</div></div>
    <div class="card"><div class="v" id="limited">–</div><div class="k">rate-limited frames / s</div></div>
    <div class="card"><div class="v" id="restarts">–</div><div class="k">worker restarts <span id="crashloop"></span></div></div>
    <div class="card"><div class="v" id="workers-live">–</div><div class="k">workers ready</div></div>
  </div>
  <section id="drain"><h2>Draining</h2><span id="drain-left">–</span> connections left · <span id="drain-told">–</span> clients told to reconnect</section>
  <div class="charts">
    <div class="chart"><h2>Connections</h2><div class="legend"><span style="color:var(--a)">■ raw</span><span style="color:var(--b)">■ Socket.IO</span></div><canvas id="c-conn"></canvas></div>
    <div class="chart"><h2>Messages per second</h2><div class="legend"><span style="color:var(--a)">■ published</span><span style="color:var(--c)">■ deliveries</span></div><canvas id="c-rate"></canvas></div>
    <div class="chart"><h2>Fan-out latency (accepted → written), ms</h2><div class="legend"><span style="color:var(--a)">■ p50</span><span style="color:var(--d)">■ p99</span></div><canvas id="c-fanout"></canvas></div>
    <div class="chart"><h2>Event-loop delay p99 per worker, ms</h2><div class="legend" id="lag-legend"></div><canvas id="c-lag"></canvas></div>
  </div>
  <section>
    <h2>Workers</h2>
    <table><thead><tr><th>slot</th><th>pid</th><th>state</th><th>raw</th><th>Socket.IO</th><th>loop p99 ms</th><th>busy</th><th>RSS MiB</th><th>IPC queued</th></tr></thead>
    <tbody id="workers"></tbody></table>
  </section>
  <section>
    <h2>Channels</h2>
    <input id="q" placeholder="search channels (name contains…)" autocomplete="off">
    <div class="two">
      <table><thead><tr><th>by subscribers</th><th>subscribers</th><th>msgs/s</th></tr></thead><tbody id="by-subs"></tbody></table>
      <table><thead><tr><th>by rate</th><th>subscribers</th><th>msgs/s</th></tr></thead><tbody id="by-rate"></tbody></table>
    </div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const samples = [];
const KEEP = 300;
const fmt = (n) => n === null || n === undefined || Number.isNaN(n) ? "–" : n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : n >= 100 ? Math.round(n).toLocaleString("en") : String(Math.round(n * 10) / 10);
const dur = (s) => s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
const COLORS = ["#58a6ff", "#bc8cff", "#3fb950", "#f0883e", "#f85149", "#d29922", "#39c5cf", "#db61a2"];

function draw(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = max > 0 ? max * 1.15 : 1;
  g.strokeStyle = "#2a3642"; g.fillStyle = "#8b98a5"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = 4 + (h - 16) * (i / 2);
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
    g.fillText(fmt(max * (1 - i / 2)), 4, y + 11);
  }
  g.fillText("5 min", w - 34, h - 2);
  for (const s of series) {
    g.strokeStyle = s.color; g.lineWidth = 1.6; g.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (v === null) { started = false; return; }
      const x = w * (i + KEEP - s.values.length) / (KEEP - 1);
      const y = 4 + (h - 16) * (1 - v / max);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    });
    g.stroke();
  }
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
  return tr;
}

function render() {
  const s = samples[samples.length - 1];
  if (!s) return;
  const inst = $("instance");
  inst.textContent = s.instance;
  inst.className = "badge" + (s.instance === "blue" || s.instance === "green" ? " " + s.instance : "");
  $("phase").textContent = s.phase;
  $("version").textContent = s.version;
  $("uptime").textContent = dur(s.uptimeSeconds);
  const redis = $("redis");
  redis.textContent = s.redis ? s.redis.state + (s.redis.pingMs !== null ? " · " + s.redis.pingMs.toFixed(1) + " ms" : "") : "not used";
  redis.className = "badge" + (s.redis ? (s.redis.state === "up" ? " ok" : s.redis.state === "down" ? " bad" : " warn") : "");
  $("connections").textContent = fmt(s.connections.raw + s.connections.sio);
  $("conn-split").textContent = fmt(s.connections.raw) + " raw, " + fmt(s.connections.sio) + " Socket.IO";
  $("published-rate").textContent = fmt(s.publishedPerSec);
  $("deliveries-rate").textContent = fmt(s.deliveriesPerSec);
  $("fanout").textContent = fmt(s.fanout.p50Ms) + " / " + fmt(s.fanout.p99Ms);
  $("slow").textContent = fmt(s.slowPerSec);
  $("limited").textContent = fmt(s.rateLimitedPerSec);
  $("restarts").textContent = String(s.restarts);
  $("crashloop").textContent = s.crashLoop ? "· CRASH LOOP" : "";
  $("crashloop").style.color = "var(--bad)";
  $("workers-live").textContent = s.workers.filter((w) => w.state === "ready").length + " / " + s.workers.length;
  $("drain").style.display = s.drain.active ? "block" : "none";
  $("drain-left").textContent = fmt(s.drain.connectionsLeft);
  $("drain-told").textContent = fmt(s.drain.drained);
  const body = $("workers");
  body.replaceChildren(...s.workers.map((w) => row([w.slot, w.pid ?? "–", w.state, fmt(w.raw), fmt(w.sio), w.lagMs === null ? "–" : w.lagMs.toFixed(1), w.utilization === null ? "–" : Math.round(100 * w.utilization) + "%", fmt(w.rssMiB), fmt(w.ipcPendingBytes)])));
  const pick = (f) => samples.map(f);
  draw($("c-conn"), [{ color: COLORS[0], values: pick((x) => x.connections.raw) }, { color: COLORS[1], values: pick((x) => x.connections.sio) }]);
  draw($("c-rate"), [{ color: COLORS[0], values: pick((x) => x.publishedPerSec) }, { color: COLORS[2], values: pick((x) => x.deliveriesPerSec) }]);
  draw($("c-fanout"), [{ color: COLORS[0], values: pick((x) => x.fanout.p50Ms) }, { color: COLORS[3], values: pick((x) => x.fanout.p99Ms) }]);
  const slots = [...new Set(samples.flatMap((x) => x.workers.map((w) => w.slot)))].sort((a, b) => a - b);
  $("lag-legend").replaceChildren(...slots.map((slot, i) => { const e = document.createElement("span"); e.style.color = COLORS[i % COLORS.length]; e.textContent = "■ worker " + slot; return e; }));
  draw($("c-lag"), slots.map((slot, i) => ({ color: COLORS[i % COLORS.length], values: pick((x) => { const w = x.workers.find((v) => v.slot === slot); return w ? w.lagMs : null; }) })));
  document.body.dataset.samples = String(samples.length);
}

function connect() {
  const feed = new EventSource("feed");
  feed.addEventListener("history", (e) => { samples.splice(0, samples.length, ...JSON.parse(e.data)); render(); });
  feed.addEventListener("sample", (e) => { samples.push(JSON.parse(e.data)); if (samples.length > KEEP) samples.shift(); render(); });
  feed.onopen = () => { $("link").textContent = "live"; };
  feed.onerror = () => { $("link").textContent = "reconnecting…"; };
}

let searchTimer = null;
async function search() {
  const res = await fetch("channels?limit=15&q=" + encodeURIComponent($("q").value));
  if (!res.ok) return;
  const { bySubscribers, byRate } = await res.json();
  const rows = (list) => list.map((c) => row([c.channel, fmt(c.subscribers), fmt(c.perSec)]));
  $("by-subs").replaceChildren(...rows(bySubscribers));
  $("by-rate").replaceChildren(...rows(byRate));
}
$("q").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 250); });
setInterval(search, 10000);
search();
connect();
window.addEventListener("resize", render);
</script>
</body>
</html>
`;
