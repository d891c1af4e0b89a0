/**
 * The results as Markdown tables (figures per server with ratios, and the targets): printed on the terminal,
 * written to results.md, and ready to paste into the README's Performance section.
 */
import { fmt } from "../format.js";
import type { BenchResults, TargetResult } from "../results.js";
import { crossHostTable } from "./cross-host-table.js";
import { buildRows, FIGURES_HEADER, figureRowCells } from "./figure-rows.js";
import { recoveryTable } from "./recovery-table.js";

/** A Markdown table; columns from `numericFrom` on are right-aligned. */
function markdown(header: string[], rows: string[][], numericFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < numericFrom ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const sep = `|${widths.map((w, i) => `${"-".repeat(w + 1)}${i < numericFrom ? "-" : ":"}`).join("|")}|`;
  return [line(header), sep, ...rows.map(line)].join("\n");
}

export function figuresTable(results: BenchResults): string {
  return markdown(FIGURES_HEADER, buildRows(results.runs).map(figureRowCells));
}

function mark(t: TargetResult): string {
  return t.met === null ? "not measured" : t.met ? "met" : "NOT MET";
}

export function targetsTable(targets: TargetResult[]): string {
  return markdown(
    ["target", "goal", "measured", "status"],
    targets.map((t) => [t.figure, t.target, t.measured, mark(t)]),
    4,
  );
}

/** Client CPU per run, to show the load client was not the bottleneck. */
export function cpuTable(results: BenchResults): string {
  const rows = results.runs
    .filter((r) => r.clientCpuPct !== undefined)
    .map((r) => [
      `${r.scenario} ${r.server}/${r.protocol}`,
      `${fmt(r.clientCpuPct)} %`,
      `${fmt(r.serverCpuPct)} %`,
      `${fmt(r.otherCpuPct)} %`,
    ]);
  return markdown(
    ["CPU, % of one core (C, D: highest step)", "load clients", "server tree", "other processes"],
    rows,
  );
}

export function fullReport(results: BenchResults): string {
  const m = results.meta;
  const failed = results.runs.filter((r) => !r.ok);
  const crossHost = crossHostTable(results, markdown);
  const recovery = recoveryTable(results, markdown);
  return [
    `Machine: ${m.cpuModel}, ${m.cpus} cores, ${m.memTotalMiB.toLocaleString("en-US")} MiB RAM, Linux ${m.kernel}, Node ${m.node}, ` +
      `load average ${m.loadAverageAtStart.toFixed(2)} at start` +
      (m.smoke ? " — SMOKE sizes, figures not meaningful" : ""),
    "",
    // Only G or H asked for: no row of the per-server table.
    ...(buildRows(results.runs).length > 0
      ? [
          figuresTable(results),
          "",
          "† the recipe speaks Socket.IO only: raw-WS rows compare Switchboard's raw WebSocket with the recipe's Socket.IO figure.",
          "≥ every publish rate tried was sustained; the limit lies higher.",
          "",
        ]
      : []),
    ...(crossHost ? [crossHost, ""] : []),
    ...(recovery ? [recovery, ""] : []),
    targetsTable(results.targets),
    ...(results.runs.some((r) => r.clientCpuPct !== undefined) ? ["", cpuTable(results)] : []),
    ...(failed.length > 0
      ? [
          "",
          "Failed runs:",
          ...failed.map(
            (r) => `- ${r.scenario} ${r.server}/${r.protocol}: ${(r.error ?? "").split("\n")[0]}`,
          ),
        ]
      : []),
  ].join("\n");
}
