/**
 * Scenario A: resident memory of the server's whole process tree per idle connection. RSS is read before and
 * after opening the connections (each time after a settle pause; the second one long enough for the servers' GC to
 * return the garbage of the handshakes), and the difference divided by the count.
 */

import { fmt } from "../format.js";
import type { Protocol } from "../load/client-conn.js";
import type { ScenarioOutcome } from "./outcome.js";
import { connectWithProgress, kibPerConn, type RunContext, rssDelta, withSession } from "./session.js";

export function runMemory(ctx: RunContext, protocol: Protocol): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const total = config.connections;
  return withSession(ctx, { workers: config.workers, connections: total }, async (s) => {
    const rss = await rssDelta(s, config.settleMs, config.idleSettleMs, async () => {
      const conn = await connectWithProgress(ctx, s, protocol, total);
      ctx.progress.status(
        `${ctx.tag}: ${fmt(conn.opened)} connections open, idle for ${config.idleSettleMs / 1000} s`,
      );
      return conn;
    });
    const { result: conn, beforeBytes: before, afterBytes: after } = rss;
    const perConnKiB = kibPerConn(rss, conn.opened);
    ctx.progress.log(
      `${ctx.tag}: ${fmt(conn.opened)} idle connections, RSS ${fmt(before / 2 ** 20)} → ${fmt(after / 2 ** 20)} MiB = ` +
        `${fmt(perConnKiB)} KiB/connection`,
    );
    return {
      figures: {
        rssPerConnKiB: perConnKiB,
        rssBeforeMiB: before / 2 ** 20,
        rssAfterMiB: after / 2 ** 20,
        opened: conn.opened,
        failed: conn.failed,
      },
    };
  });
}
