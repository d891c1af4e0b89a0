/**
 * Scenario G's table: one host vs two hosts through Redis, same shape, same bench run; the cross-host
 * latency apart for subscribers on the publishing host and on the other host, and what the Redis hop adds.
 */
import { fmt, fmtRatio } from "../format.js";
import type { BenchResults } from "../results.js";

type Markdown = (header: string[], rows: string[][], numericFrom?: number) => string;

function signed(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "—";
  return `${n >= 0 ? "+" : "−"}${fmt(Math.abs(n))}`;
}

/** The G table, a "not run" line, or nothing when G was not asked for. */
export function crossHostTable(results: BenchResults, markdown: Markdown): string | undefined {
  const run = results.runs.find((r) => r.scenario === "G");
  if (!run) return undefined;
  if (run.skipped) return `G cross-host: ${run.skipped}`;
  if (!run.ok) return undefined; // listed under "Failed runs"
  const f = (key: string): number | undefined => {
    const v = run.figures[key];
    return v !== undefined && v !== null && Number.isFinite(v) ? v : undefined;
  };
  const n = (key: string) => fmt(f(key));
  const atLeast = (prefix: string, key: string) =>
    `${f(`${prefix}SustainedIsLowerBound`) === 1 ? "≥ " : ""}${n(`${prefix}${key}`)}`;
  const ref = f("crossRefRate") ?? f("oneHostRefRate");
  const rows = [
    [
      `G p50 latency at ${fmt(ref)} msgs/s (ms)`,
      n("oneHostRefP50Ms"),
      n("crossRefP50Ms"),
      n("localRefP50Ms"),
      n("remoteRefP50Ms"),
      signed(f("addedP50Ms")),
    ],
    [
      `G p99 latency at ${fmt(ref)} msgs/s (ms)`,
      n("oneHostRefP99Ms"),
      n("crossRefP99Ms"),
      n("localRefP99Ms"),
      n("remoteRefP99Ms"),
      signed(f("addedP99Ms")),
    ],
    [
      "G highest sustained publish rate (msgs/s)",
      atLeast("oneHost", "SustainedRate"),
      atLeast("cross", "SustainedRate"),
      "—",
      "—",
      "—",
    ],
    [
      "G highest sustained deliveries/s",
      atLeast("oneHost", "SustainedDeliveriesPerSec"),
      atLeast("cross", "SustainedDeliveriesPerSec"),
      "—",
      "—",
      // Both limits above the rates tried: the ratio of two lower bounds says nothing.
      f("oneHostSustainedIsLowerBound") === 1 && f("crossSustainedIsLowerBound") === 1
        ? "— (both ≥)"
        : fmtRatio(f("sustainedDeliveriesRatio")),
    ],
    [
      "G peak deliveries/s received",
      n("oneHostMaxDeliveriesPerSec"),
      n("crossMaxDeliveriesPerSec"),
      n("localMaxDeliveriesPerSec"),
      n("remoteMaxDeliveriesPerSec"),
      fmtRatio(f("peakDeliveriesRatio")),
    ],
  ];
  return [
    `G cross-host, raw WS: ${n("subscribers")} subscribers on one channel, half on each host; publishes to host A. ` +
      "One host: one Switchboard, 2 workers. Cross-host: two Switchboards, 1 worker each, + redis-server.",
    "",
    markdown(
      [
        "figure",
        "one host",
        "cross-host: all",
        "publishing host",
        "other host",
        "added latency / deliveries ratio",
      ],
      rows,
    ),
  ].join("\n");
}
