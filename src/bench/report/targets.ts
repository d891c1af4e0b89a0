/**
 * Issue 4's targets, each evaluated from one run's results: met, not met, or not measured (null).
 * Headline comparisons use Switchboard's raw WebSocket path (the one the issue asks to be several times faster);
 * the Socket.IO row compares like with like.
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
  const rssRaw = f("A", "switchboard", "ws", "rssPerConnKiB");
  out.push(
    compare(
      "RSS per idle raw WS connection (A)",
      "≤ 0.8 × ws server",
      rssRaw,
      f("A", "ws", "ws", "rssPerConnKiB"),
      (r) => r <= 0.8,
      "KiB",
    ),
    compare(
      "RSS per idle raw WS connection (A)",
      "≤ 0.25 × recipe",
      rssRaw,
      f("A", "baseline", "sio", "rssPerConnKiB"),
      (r) => r <= 0.25,
      "KiB",
    ),
    compare(
      "RSS per idle Socket.IO connection (A)",
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
  out.push(
    compare(
      "highest sustained deliveries/s, one channel (C)",
      "≥ 5 × recipe",
      sustC,
      f("C", "baseline", "sio", "sustainedDeliveriesPerSec"),
      (r) => r >= 5,
      "/s",
    ),
    compare(
      "highest sustained deliveries/s, one channel (C)",
      "≥ 5 × ws server",
      sustC,
      f("C", "ws", "ws", "sustainedDeliveriesPerSec"),
      (r) => r >= 5,
      "/s",
    ),
    compare(
      "highest sustained deliveries/s, many channels (D)",
      "≥ 3 × ws server",
      f("D", "switchboard", "ws", "sustainedDeliveriesPerSec"),
      f("D", "ws", "ws", "sustainedDeliveriesPerSec"),
      (r) => r >= 3,
      "/s",
    ),
  );
  out.push(
    threshold(
      "publish API (E)",
      "≥ 10,000 publishes/s",
      f("E", "switchboard", "http", "publishesPerSec"),
      (v) => v >= 10_000,
      "/s",
    ),
  );
  const opened = f("F", "switchboard", "ws", "opened");
  const received = f("F", "switchboard", "ws", "received");
  const rss = f("F", "switchboard", "ws", "rssMiB");
  out.push(
    opened === undefined || received === undefined
      ? {
          figure: `${fmt(scaleConnections)} connections (F)`,
          target: "all open, all receive the broadcast, RSS reported",
          measured: "not run (--scenarios …,F)",
          met: null,
        }
      : {
          figure: `${fmt(scaleConnections)} connections (F)`,
          target: "all open, all receive the broadcast, RSS reported",
          measured: `${fmt(opened)} open, ${fmt(received)} received, RSS ${rss === undefined ? "?" : `${fmt(rss)} MiB`}`,
          met: opened >= scaleConnections && received >= opened && rss !== undefined,
        },
  );
  return out;
}
