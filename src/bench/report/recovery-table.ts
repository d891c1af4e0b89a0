/**
 * Scenario H's table: one blue/green promote with the SDK's clients (resume with since + epoch) next to the same
 * promote with reference clients that reconnect but do not resume, same bench run.
 */
import { fmt } from "../format.js";
import type { BenchResults } from "../results.js";

type Markdown = (header: string[], rows: string[][], numericFrom?: number) => string;

export const RECOVERY_HEADER = ["figure", "SDK (resume)", "reference: reconnect without resume"];

/** [label, figure key (without the sdk/ref prefix), formatter]. */
const ROWS: [string, string, ((v: number | undefined) => string)?][] = [
  ["H clients", "clients"],
  ["H clients left out: first subscribe never answered", "unansweredSubscribes"],
  ["H messages published during the run", "published"],
  ["H messages missed, total", "missed"],
  ["H messages missed per 1,000 clients (goal 0)", "missedPer1000"],
  ["H clients that missed any message", "clientsMissing"],
  ["H duplicate deliveries", "duplicates"],
  ["H out-of-order deliveries", "outOfOrder"],
  ["H history_gap reports", "gaps"],
  ["H clients resumed with recovered: true", "recoveredClients"],
  ["H clients moved to green", "movedClients"],
  ["H clients that left blue and never subscribed again", "strandedClients"],
  ["H clients without the final message", "clientsWithoutFinal"],
  ["H failed connection attempts", "failedAttempts"],
  ["H closes other than the drain's 1012", "unexpectedCloses"],
  ["H publish retries (to 200)", "publishRetries"],
  ["H move took (ms), first reconnect → last resubscribe", "moveMs"],
  ["H time away per client (ms), mean", "awayMeanMs"],
  ["H time away per client (ms), p99", "awayP99Ms"],
  ["H new connection → subscribe answered (ms), p99", "resubscribeP99Ms"],
  ["H SIGTERM → blue exited (ms)", "blueExitMs"],
  ["H blue's exit code", "blueExitCode"],
];

/** The rows as text cells, shared by the Markdown and the HTML report. */
export function recoveryRows(results: BenchResults): string[][] | undefined {
  const run = results.runs.find((r) => r.scenario === "H");
  if (!run || run.skipped || !run.ok) return undefined;
  const f = (key: string): number | undefined => {
    const v = run.figures[key];
    return v !== undefined && v !== null && Number.isFinite(v) ? v : undefined;
  };
  const cap = (k: string) => `${k[0]?.toUpperCase()}${k.slice(1)}`;
  return ROWS.map(([label, key, format = fmt]) => [
    label,
    format(f(`sdk${cap(key)}`)),
    format(f(`ref${cap(key)}`)),
  ]);
}

/** What the H table shows, under its title. */
export function recoveryNote(results: BenchResults): string {
  const run = results.runs.find((r) => r.scenario === "H");
  const n = (key: string) => fmt(run?.figures[key]);
  return (
    `H recovery across a blue/green promote, raw WS: ${n("clients")} SDK clients on one channel, blue → green ` +
    `(${n("workers")} worker(s) each, one shared redis-server, blue --drain-timeout ${n("drainTimeoutMs")} ms), ` +
    `${n("rate")} msgs/s published over HTTP, one per request with an idempotency key, retried until 200, to the ` +
    "live colour. Missed = acknowledged messages above a client's first offset that it never received. " +
    "Reference column: the same promote with clients that reconnect but do not resume (subscribe again without " +
    "since/epoch, as a hand-written client or plain Socket.IO does); it is not Switchboard's SDK behaviour."
  );
}

/** The H table, a "not run" line, or nothing when H was not asked for. */
export function recoveryTable(results: BenchResults, markdown: Markdown): string | undefined {
  const run = results.runs.find((r) => r.scenario === "H");
  if (!run) return undefined;
  if (run.skipped) return `H recovery across a promote: ${run.skipped}`;
  const rows = recoveryRows(results);
  if (!rows) return undefined; // listed under "Failed runs"
  return [recoveryNote(results), "", markdown(RECOVERY_HEADER, rows)].join("\n");
}
