/**
 * The self-contained HTML report: machine, targets, the figures table, inline SVG charts (latency
 * percentiles and deliveries/s per rate for C and D; bars for A, B, E) and each step of every run.
 */
import { type ScenarioId, SERVER_LABEL } from "../bench-config.js";
import { fmt } from "../format.js";
import type { BenchResults, RunResult } from "../results.js";
import { SUSTAINED_MAX_P99_MS, SUSTAINED_MIN_DELIVERED_PCT } from "../scenarios/step-result.js";
import { buildRows, FIGURES_HEADER, figureRowCells, PROTOCOL_LABEL } from "./figure-rows.js";
import { RECOVERY_HEADER, recoveryNote, recoveryRows } from "./recovery-table.js";
import { barChart, escapeXml, lineChart, type Series } from "./svg-chart.js";

const COLORS: Record<string, string> = {
  "switchboard/ws": "#1f6fb4",
  "switchboard/sio": "#23a6b8",
  "switchboard/http": "#1f6fb4",
  "baseline/sio": "#d62728",
  "baseline/http": "#d62728",
  "ws/ws": "#ff8c1a",
  "ws/http": "#ff8c1a",
};

const SHORT_LABEL = { ...SERVER_LABEL, baseline: "recipe" };
const SHORT_PROTOCOL = { ws: "WS", sio: "SIO", http: "" } as const;

function runName(r: RunResult): string {
  return `${SERVER_LABEL[r.server]} (${PROTOCOL_LABEL[r.protocol]})`;
}

/** Legend name: short enough for the chart's side column. */
function shortName(r: RunResult): string {
  return r.server === "ws" ? SHORT_LABEL.ws : `${SHORT_LABEL[r.server]} ${SHORT_PROTOCOL[r.protocol]}`.trim();
}

function colorOf(r: RunResult): string {
  return COLORS[`${r.server}/${r.protocol}`] ?? "#555";
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:10px 0;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.met{color:#0a7d24;font-weight:600}.unmet{color:#c01818;font-weight:600}.na{color:#888}
svg{display:block;margin:12px 0;font-family:system-ui,sans-serif}
svg .title{font-size:14px;font-weight:600}svg .tick,svg .legend{font-size:11px;fill:#333}svg .axis{font-size:12px}
svg .grid{stroke:#e6e6e6}svg .plot{fill:none;stroke:#bbb}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}.note{color:#666;font-size:12px}`;

function table(header: string[], rows: string[][], numericFrom = 1): string {
  const th = header.map((h) => `<th>${escapeXml(h)}</th>`).join("");
  const trs = rows.map(
    (r) => `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="n"' : ""}>${c}</td>`).join("")}</tr>`,
  );
  return `<table><tr>${th}</tr>${trs.join("")}</table>`;
}

function fanoutCharts(runs: RunResult[], scenario: ScenarioId, title: string): string {
  const withSteps = runs.filter((r) => r.scenario === scenario && r.ok && r.steps && r.steps.length > 0);
  if (withSteps.length === 0) return "";
  const latency: Series[] = [];
  const deliveries: Series[] = [];
  for (const r of withSteps) {
    const steps = r.steps ?? [];
    const color = colorOf(r);
    latency.push({
      name: `${shortName(r)} p50`,
      color,
      points: steps.map((s) => [s.rate, s.p50Ms, s.sustained]),
    });
    latency.push({
      name: `${shortName(r)} p99`,
      color,
      dashed: true,
      points: steps.map((s) => [s.rate, s.p99Ms, s.sustained]),
    });
    deliveries.push({
      name: shortName(r),
      color,
      points: steps.map((s) => [s.rate, s.deliveriesPerSec, s.sustained]),
    });
  }
  const fanout = withSteps[0]?.figures.fanout ?? 1;
  const rates = [...new Set(withSteps.flatMap((r) => (r.steps ?? []).map((s) => s.rate)))].sort(
    (a, b) => a - b,
  );
  deliveries.push({
    name: "offered load",
    color: "#999",
    dashed: true,
    markers: false,
    points: rates.map((x) => [x, x * fanout, true]),
  });
  return [
    lineChart({
      title: `${title}: latency percentiles`,
      xLabel: "publish rate (msgs/s)",
      yLabel: "latency (ms)",
      series: latency,
    }),
    lineChart({
      title: `${title}: deliveries per second`,
      xLabel: "publish rate (msgs/s)",
      yLabel: "deliveries/s",
      series: deliveries,
    }),
    `<p class="note">Hollow markers: step not sustained (&lt; ${SUSTAINED_MIN_DELIVERED_PCT} % delivered, p99 ≥ ${SUSTAINED_MAX_P99_MS} ms, growing backlog, or publishes refused).</p>`,
  ].join("\n");
}

function bars(runs: RunResult[], scenario: ScenarioId, key: string, title: string, unit: string): string {
  const rs = runs.filter((r) => r.scenario === scenario && r.ok && Number.isFinite(r.figures[key]));
  if (rs.length === 0) return "";
  return barChart(
    title,
    unit,
    rs.map((r) => ({ label: runName(r), value: r.figures[key] ?? 0, color: colorOf(r) })),
  );
}

/** Scenario H: its own table (resume vs the no-resume reference), or its "not run" line. */
function recoverySection(results: BenchResults): string {
  const run = results.runs.find((r) => r.scenario === "H");
  if (!run) return "";
  if (run.skipped)
    return `<h2>Recovery across a promote (H)</h2>\n<p class="note">${escapeXml(run.skipped)}</p>`;
  const rows = recoveryRows(results);
  if (!rows) return "";
  return [
    "<h2>Recovery across a promote (H)</h2>",
    `<p>${escapeXml(recoveryNote(results))}</p>`,
    table(
      RECOVERY_HEADER,
      rows.map((r) => r.map(escapeXml)),
    ),
  ].join("\n");
}

function stepsTables(runs: RunResult[]): string {
  const out: string[] = [];
  for (const r of runs.filter((x) => x.steps && x.steps.length > 0)) {
    out.push(`<h3>${r.scenario} · ${escapeXml(runName(r))}</h3>`);
    out.push(
      table(
        [
          "msgs/s",
          "published",
          "expected",
          "received",
          "% delivered",
          "p50 ms",
          "p99 ms",
          "max ms",
          "deliveries/s",
          "client CPU %",
          "server CPU %",
          "other CPU %",
          "sustained",
        ],
        (r.steps ?? []).map((s) => [
          fmt(s.rate),
          fmt(s.published),
          fmt(s.expected),
          fmt(s.received),
          s.deliveredPct.toFixed(2),
          fmt(s.p50Ms),
          fmt(s.p99Ms),
          fmt(s.maxMs),
          fmt(s.deliveriesPerSec),
          fmt(s.clientCpuPct),
          fmt(s.serverCpuPct),
          fmt(s.otherCpuPct),
          s.sustained ? "yes" : `no${s.backlogGrowth ? " (backlog)" : ""}`,
        ]),
        0,
      ),
    );
  }
  return out.join("\n");
}

export function htmlReport(results: BenchResults): string {
  const { meta, runs, targets } = results;
  const rows = buildRows(runs).map((r) => figureRowCells(r).map(escapeXml));
  const targetRows = targets.map((t) => [
    escapeXml(t.figure),
    escapeXml(t.target),
    escapeXml(t.measured),
    t.met === null
      ? '<span class="na">not measured</span>'
      : t.met
        ? '<span class="met">met</span>'
        : '<span class="unmet">not met</span>',
  ]);
  const failed = runs.filter((r) => !r.ok);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard benchmark</title><style>${CSS}</style></head><body>
<h1>Switchboard benchmark${meta.smoke ? " (smoke sizes)" : ""}</h1>
<p>${escapeXml(meta.cpuModel)}, ${meta.cpus} cores, ${meta.memTotalMiB.toLocaleString("en-US")} MiB RAM, Linux ${escapeXml(meta.kernel)},
Node ${escapeXml(meta.node)}, load average ${meta.loadAverageAtStart.toFixed(2)} at start. Run ${escapeXml(meta.startedAt)} → ${escapeXml(meta.finishedAt)}.</p>
<h2>Targets (issue 4)</h2>
${table(["figure", "target", "measured", "status"], targetRows, 9)}
<h2>Figures</h2>
${table(FIGURES_HEADER, rows)}
<p class="note">† the recipe speaks Socket.IO only: raw-WS rows compare Switchboard's raw WebSocket with the recipe's Socket.IO figure.
≥: every rate tried was sustained, the limit lies higher.</p>
${recoverySection(results)}
<h2>Charts</h2>
${bars(runs, "A", "rssPerConnKiB", "A · RSS per idle connection (server process tree)", "KiB")}
${bars(runs, "B", "connPerSec", "B · connections opened per second", "/s")}
${fanoutCharts(runs, "C", "C · one channel")}
${fanoutCharts(runs, "D", "D · many channels")}
${bars(runs, "E", "publishesPerSec", "E · publish API throughput (keep-alive HTTP)", "/s")}
<h2>Steps</h2>
${stepsTables(runs)}
${failed.length > 0 ? `<h2>Failed runs</h2>${failed.map((r) => `<h3>${r.scenario} ${escapeXml(runName(r))}</h3><pre>${escapeXml(r.error ?? "")}</pre>`).join("\n")}` : ""}
<h2>Configuration</h2>
<pre>${escapeXml(JSON.stringify({ sources: meta.sources, ...meta.config }, null, 2))}</pre>
</body></html>
`;
}
