/**
 * Scenario E: publish API throughput. The load clients POST single messages in a closed loop over several
 * keep-alive connections (a channel without subscribers) for `--duration` seconds.
 */

import { fmt } from "../format.js";
import { Histogram } from "../histogram.js";
import type { ScenarioOutcome } from "./outcome.js";
import { assertAlive, CpuMeter, type RunContext, withSession } from "./session.js";

const MIN_DURATION_MS = 1000;

export function runPublishApi(ctx: RunContext): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const durationMs = Math.max(MIN_DURATION_MS, config.durationS * 1000);
  // No WebSocket connections: the client processes only publish.
  return withSession(ctx, { workers: config.workers, connections: 0 }, async (s) => {
    ctx.progress.status(`${ctx.tag}: publishing over ${config.publishConnections} keep-alive connections`);
    const cpu = new CpuMeter(s);
    await cpu.start();
    const r = await s.fleet.publishLoad(s.server.port, config.publishConnections, durationMs);
    const usage = await cpu.read();
    assertAlive(s.server);
    const latency = Histogram.from(r.latency);
    const perSec = (r.requests * 1000) / r.elapsedMs;
    ctx.progress.log(
      `${ctx.tag}: ${fmt(perSec)} publishes/s (${fmt(r.requests)} ok, ${r.non200} refused, ${r.errors} errors, ` +
        `${fmt(r.connects)} TCP connections), p50 ${fmt(latency.percentile(0.5))} / p99 ${fmt(latency.percentile(0.99))} ms; ` +
        `CPU: server ${fmt(usage.serverCpuPct)}%, clients ${fmt(usage.clientCpuPct)}%, other ${fmt(usage.otherCpuPct)}%`,
    );
    return {
      figures: {
        publishesPerSec: perSec,
        requests: r.requests,
        refused: r.non200,
        errors: r.errors,
        tcpConnections: r.connects,
        p50Ms: latency.percentile(0.5),
        p99Ms: latency.percentile(0.99),
      },
      ...usage,
    };
  });
}
