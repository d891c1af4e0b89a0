/**
 * Scenario B: how fast a fresh server accepts connections: N handshakes (raw: HTTP 101; Socket.IO: namespace
 * connected) with a bounded number in flight, timed from the first connect() to the last handshake.
 */

import { fmt } from "../format.js";
import type { Protocol } from "../load/client-conn.js";
import type { ScenarioOutcome } from "./outcome.js";
import { assertAlive, CpuMeter, connectWithProgress, type RunContext, withSession } from "./session.js";

export function runConnectRate(ctx: RunContext, protocol: Protocol): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const total = config.connections;
  return withSession(ctx, { workers: config.workers, connections: total }, async (s) => {
    const cpu = new CpuMeter(s);
    await cpu.start();
    const conn = await connectWithProgress(ctx, s, protocol, total);
    const usage = await cpu.read();
    assertAlive(s.server);
    const seconds = conn.elapsedMs / 1000;
    const perSec = conn.opened / Math.max(seconds, 0.001);
    ctx.progress.log(
      `${ctx.tag}: ${fmt(conn.opened)} opened (${conn.failed} failed) in ${seconds.toFixed(2)} s = ${fmt(perSec)} connections/s; ` +
        `CPU: server ${fmt(usage.serverCpuPct)}%, clients ${fmt(usage.clientCpuPct)}%, other ${fmt(usage.otherCpuPct)}%`,
    );
    return {
      figures: { connPerSec: perSec, opened: conn.opened, failed: conn.failed, seconds },
      ...usage,
    };
  });
}
