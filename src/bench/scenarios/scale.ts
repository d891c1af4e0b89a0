/**
 * Scenario F: the scale run. Many raw WebSocket connections (100,000 by default) on one channel, spread over
 * client processes and loopback source addresses, Switchboard with enough workers for the file cap; one
 * broadcast to all of them, and the RSS of the server's process tree.
 */

import { setTimeout as sleep } from "node:timers/promises";
import { fmt } from "../format.js";
import { epochMs, Histogram } from "../histogram.js";
import { treePssBytes } from "../proc-tree.js";
import { RatePublisher } from "../rate-publisher.js";
import type { ScenarioOutcome } from "./outcome.js";
import { connectWithProgress, kibPerConn, type RunContext, rssDelta, withSession } from "./session.js";

const SUBSCRIBE_TIMEOUT_MS = 120_000;
const BROADCAST_WAIT_MS = 60_000;
const STEP = 1;

export function runScale(ctx: RunContext): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const total = config.scaleConnections;
  return withSession(ctx, { workers: config.scaleWorkers, connections: total }, async (s) => {
    const rss = await rssDelta(s, config.settleMs, config.settleMs, async () => {
      const conn = await connectWithProgress(ctx, s, "ws", total);
      ctx.progress.log(
        `${ctx.tag}: ${fmt(conn.opened)} connected (${conn.failed} failed) in ${(conn.elapsedMs / 1000).toFixed(1)} s`,
      );
      const sub = await s.fleet.subscribe(1, "scale", SUBSCRIBE_TIMEOUT_MS);
      return { conn, sub };
    });
    const { conn, sub } = rss.result;
    const after = rss.afterBytes;
    const pss = treePssBytes(s.server.pid);
    ctx.progress.log(
      `${ctx.tag}: ${fmt(sub.acked)} subscribed; tree RSS ${fmt(after / 2 ** 20)} MiB; broadcasting`,
    );

    const publisher = new RatePublisher(s.server.port, 1, { batch: false });
    const startedAt = epochMs();
    const publish = await publisher.run({ step: STEP, rate: 1, durationMs: 1, channelOf: () => "scale0" });
    publisher.close();
    const until = performance.now() + BROADCAST_WAIT_MS;
    let received = 0;
    while (performance.now() < until && received < sub.acked && publish.published > 0) {
      received = await s.fleet.received(STEP);
      ctx.progress.status(`${ctx.tag}: ${fmt(received)}/${fmt(sub.acked)} received the broadcast`);
      await sleep(200);
    }
    const reports = await s.fleet.take(STEP);
    const latency = new Histogram();
    for (const r of reports) {
      latency.merge(r.firstHalf);
      latency.merge(r.secondHalf);
    }
    const lastAt = Math.max(startedAt, ...reports.map((r) => r.lastAt));
    const status = await s.fleet.status();
    const figures = {
      opened: conn.opened,
      failed: conn.failed,
      connectSeconds: conn.elapsedMs / 1000,
      subscribed: sub.acked,
      received: latency.count,
      deliveredPct: (100 * latency.count) / Math.max(1, conn.opened),
      p50Ms: latency.percentile(0.5),
      p99Ms: latency.percentile(0.99),
      lastDeliveryMs: lastAt - startedAt,
      rssMiB: after / 2 ** 20,
      pssMiB: pss / 2 ** 20,
      rssPerConnKiB: kibPerConn(rss.beforeBytes, rss.afterBytes, conn.opened),
      droppedByServer: status.droppedByServer,
      clientRssMiB: status.rssBytes / 2 ** 20,
    };
    ctx.progress.log(
      `${ctx.tag}: ${fmt(figures.received)}/${fmt(conn.opened)} received the broadcast, p50 ${fmt(figures.p50Ms)} / ` +
        `p99 ${fmt(figures.p99Ms)} ms, last after ${fmt(figures.lastDeliveryMs)} ms; RSS ${fmt(figures.rssMiB)} MiB, ` +
        `PSS ${fmt(figures.pssMiB)} MiB`,
    );
    return { figures };
  });
}
