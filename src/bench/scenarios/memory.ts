/**
 * Scenario A: resident memory of the server's whole process tree per idle connection that holds subscriptions,
 * the way an app's connections do. Each connection subscribes to a channel of its own (like `user:<id>`), RSS is
 * read at its peak (from the connection storm until the tree settled) and settled, after a pause long enough for
 * the servers' GC to return the handshakes' garbage; then each subscribes to 9 more (channels of 10 subscribers, like rooms) and both are read
 * again. Every figure is the difference from the fresh server, divided by the connections.
 */

import { setTimeout as sleep } from "node:timers/promises";
import { fmt } from "../format.js";
import type { Protocol } from "../load/client-conn.js";
import { treeRssBytes } from "../proc-tree.js";
import type { ScenarioOutcome } from "./outcome.js";
import {
  assertAlive,
  connectWithProgress,
  kibPerConn,
  RssPeak,
  type RunContext,
  withSession,
} from "./session.js";
import { SUBSCRIBE_TIMEOUT_MS } from "./stepping.js";

/** Channels each connection holds in the second reading. */
const MANY = 10;

export function runMemory(ctx: RunContext, protocol: Protocol): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const total = config.connections;
  return withSession(ctx, { workers: config.workers, connections: total }, async (s) => {
    await sleep(config.settleMs);
    const before = treeRssBytes(s.server.pid);
    /**
     * Runs `storm`, then idles; returns the tree's highest RSS from the storm's start to the end of the idle (what
     * sizes a box: some servers keep growing for a while after the storm) and its RSS after the idle.
     */
    const measure = async (storm: () => Promise<void>, what: string) => {
      const peak = new RssPeak(s.server.pid);
      await storm();
      ctx.progress.status(`${ctx.tag}: ${what}, idle for ${config.idleSettleMs / 1000} s`);
      await sleep(config.idleSettleMs);
      assertAlive(s.server);
      const settledBytes = treeRssBytes(s.server.pid);
      return { peakBytes: Math.max(peak.stop(), settledBytes), settledBytes };
    };

    let opened = 0;
    let failed = 0;
    let subscribeErrors = 0;
    const one = await measure(async () => {
      const conn = await connectWithProgress(ctx, s, protocol, total);
      opened = conn.opened;
      failed = conn.failed;
      subscribeErrors += (await s.fleet.subscribe(total, "user:", SUBSCRIBE_TIMEOUT_MS)).errors;
    }, "1 channel each");
    const many = await measure(async () => {
      subscribeErrors += (await s.fleet.subscribe(total, "room:", SUBSCRIBE_TIMEOUT_MS, MANY - 1)).errors;
    }, `${MANY} channels each`);
    const mib = (b: number) => fmt(b / 2 ** 20);
    ctx.progress.log(
      `${ctx.tag}: ${fmt(opened)} idle connections, RSS ${mib(before)} MiB fresh; 1 channel each: peak ` +
        `${mib(one.peakBytes)}, settled ${mib(one.settledBytes)} MiB; ${MANY} each: peak ${mib(many.peakBytes)}, ` +
        `settled ${mib(many.settledBytes)} MiB` +
        (subscribeErrors > 0 ? `; ${fmt(subscribeErrors)} subscribe errors` : ""),
    );
    return {
      figures: {
        rssPerConnKiB: kibPerConn(before, one.settledBytes, opened),
        rssPeakPerConnKiB: kibPerConn(before, one.peakBytes, opened),
        rssPerConnManyKiB: kibPerConn(before, many.settledBytes, opened),
        rssPeakPerConnManyKiB: kibPerConn(before, many.peakBytes, opened),
        rssBeforeMiB: before / 2 ** 20,
        rssAfterMiB: one.settledBytes / 2 ** 20,
        opened,
        failed,
        subscribeErrors,
      },
    };
  });
}
