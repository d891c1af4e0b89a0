/**
 * The performance targets (issues 4 and 12), each evaluated from one run's results: met, not met, or not measured
 * (null). Headline comparisons use Switchboard's raw WebSocket path; the Socket.IO rows compare like with like.
 */
import { fmt, fmtRatio } from "../format.js";
import type { RunResult, TargetResult } from "../results.js";
import { figureOf } from "./figure-rows.js";

function compare(
  figure: string,
  target: string,
  a: number | undefined,
  b: number | undefined,
  test: (ratio: number) => boolean,
  unit: string,
): TargetResult {
  if (a === undefined || b === undefined) return { figure, target, measured: "not measured", met: null };
  // b = 0 happens when the other server sustained no rate at all.
  const r = b === 0 ? (a > 0 ? Number.POSITIVE_INFINITY : Number.NaN) : a / b;
  const shown = Number.isFinite(r) ? fmtRatio(r) : "∞";
  return {
    figure,
    target,
    measured: `${shown} (${fmt(a)} vs ${fmt(b)} ${unit})`,
    met: Number.isNaN(r) ? false : test(r),
  };
}

/** An absolute goal for one figure (`value unit` shown as measured). */
function threshold(
  figure: string,
  target: string,
  value: number | undefined,
  test: (v: number) => boolean,
  unit: string,
): TargetResult {
  if (value === undefined) return { figure, target, measured: "not measured", met: null };
  return { figure, target, measured: `${fmt(value)} ${unit}`, met: test(value) };
}

export function evaluateTargets(runs: RunResult[], scaleConnections: number): TargetResult[] {
  const f = figureOf.bind(null, runs);
  const out: TargetResult[] = [];
  const rss: [string, string][] = [
    ["rssPerConnKiB", "1 channel each, settled"],
    ["rssPeakPerConnKiB", "1 channel each, peak"],
    ["rssPerConnManyKiB", "10 channels each, settled"],
    ["rssPeakPerConnManyKiB", "10 channels each, peak"],
  ];
  for (const [key, what] of rss)
    out.push(
      compare(
        `RSS per subscribed raw WS connection, ${what} (A)`,
        "≤ 0.8 × ws server",
        f("A", "switchboard", "ws", key),
        f("A", "ws", "ws", key),
        (r) => r <= 0.8,
        "KiB",
      ),
    );
  out.push(
    compare(
      "RSS per subscribed Socket.IO connection, settled (A)",
      "≤ 0.5 × recipe",
      f("A", "switchboard", "sio", "rssPerConnKiB"),
      f("A", "baseline", "sio", "rssPerConnKiB"),
      (r) => r <= 0.5,
      "KiB",
    ),
    compare(
      "connections opened per second (B)",
      "≥ 2 × recipe",
      f("B", "switchboard", "ws", "connPerSec"),
      f("B", "baseline", "sio", "connPerSec"),
      (r) => r >= 2,
      "/s",
    ),
  );
  const p99 = f("C", "switchboard", "ws", "refP99Ms");
  const ref = f("C", "switchboard", "ws", "refRate") ?? 5;
  out.push(
    threshold(`p99 latency at ${ref} msgs/s (C)`, "≤ 100 ms", p99, (v) => v <= 100, "ms"),
    compare(
      `p99 latency at ${ref} msgs/s (C)`,
      "≤ 0.5 × recipe's",
      p99,
      f("C", "baseline", "sio", "refP99Ms"),
      (r) => r <= 0.5,
      "ms",
    ),
  );
  const sustC = f("C", "switchboard", "ws", "sustainedDeliveriesPerSec");
  const publishes =
    f("C", "switchboard", "ws", "batched") === 1 ? "batched publishes" : "one-message publishes";
  out.push(
    threshold(
      `highest sustained deliveries/s, one channel, ${publishes} (C)`,
      "≥ 1,000,000 /s",
      sustC,
      (v) => v >= 1_000_000,
      "/s",
    ),
    compare(
      `highest sustained deliveries/s, one channel, ${publishes} (C)`,
      "≥ 10 × recipe",
      sustC,
      f("C", "baseline", "sio", "sustainedDeliveriesPerSec"),
      (r) => r >= 10,
      "/s",
    ),
  );
  for (const scenario of ["C", "D"] as const)
    out.push(
      compare(
        `highest sustained deliveries/s, Socket.IO (${scenario})`,
        "≥ 5 × recipe",
        f(scenario, "switchboard", "sio", "sustainedDeliveriesPerSec"),
        f(scenario, "baseline", "sio", "sustainedDeliveriesPerSec"),
        (r) => r >= 5,
        "/s",
      ),
    );
  out.push(
    compare(
      "highest sustained deliveries/s, many channels (D)",
      "≥ 3 × ws server",
      f("D", "switchboard", "ws", "sustainedDeliveriesPerSec"),
      f("D", "ws", "ws", "sustainedDeliveriesPerSec"),
      (r) => r >= 3,
      "/s",
    ),
    threshold(
      "publish API (E)",
      "≥ 10,000 publishes/s",
      f("E", "switchboard", "http", "publishesPerSec"),
      (v) => v >= 10_000,
      "/s",
    ),
  );
  const healths = runs
    .filter((r) => r.ok && r.server === "switchboard" && Number.isFinite(r.figures.healthP99Ms))
    .map((r) => r.figures.healthP99Ms as number);
  out.push(
    threshold(
      "/health p99 during every scenario (worst run)",
      "< 20 ms",
      healths.length > 0 ? Math.max(...healths) : undefined,
      (v) => v < 20,
      "ms",
    ),
  );
  const opened = f("F", "switchboard", "ws", "opened");
  const received = f("F", "switchboard", "ws", "received");
  const treeMiB = f("F", "switchboard", "ws", "rssMiB");
  const pssMiB = f("F", "switchboard", "ws", "pssMiB");
  const scale = `${fmt(scaleConnections)} subscribed connections (F)`;
  const goal = "all open, all receive the broadcast, tree RSS ≤ 600 MiB";
  out.push(
    opened === undefined || received === undefined
      ? { figure: scale, target: goal, measured: "not run (--scenarios …,F)", met: null }
      : {
          figure: scale,
          target: goal,
          measured:
            `${fmt(opened)} open, ${fmt(received)} received, RSS ${treeMiB === undefined ? "?" : `${fmt(treeMiB)} MiB`}` +
            (pssMiB === undefined ? "" : ` (PSS ${fmt(pssMiB)} MiB)`),
          met: opened >= scaleConnections && received >= opened && treeMiB !== undefined && treeMiB <= 600,
        },
  );
  return out;
}
