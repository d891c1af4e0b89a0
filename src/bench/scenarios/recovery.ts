/**
 * Scenario H (opt-in): recovery across a blue/green promote, measured from outside. A fresh redis-server, a
 * Switchboard "blue" (`--redis`, `--instance blue`), N SDK clients on one channel whose URL function names the
 * live colour, and a publisher sending one message per HTTP request with an idempotency key, retried until 200,
 * always to the live colour. The promote: start "green" (same Redis and prefix), switch clients and publisher to
 * it, SIGTERM blue (its drain sends every raw client a `reconnect` frame over the drain window), wait for blue to
 * exit, publish a few seconds more, then one final message every client must get.
 * Figures: messages missed per 1,000 clients (acknowledged messages above a client's first offset it never
 * received; the product's promise is 0), duplicates, out-of-order deliveries, history_gap reports, resumes served
 * in full, how long the move took and blue's exit code. The same promote runs again with reference clients that
 * reconnect but do not resume (subscribe again without since/epoch), so the table shows what resume buys.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { type RedisServer, redisInstalled, startRedis } from "../../harness/redis-server.js";
import type { ServerProcess } from "../../harness/server-process.js";
import { fmt } from "../format.js";
import { PromotePublisher } from "../recovery/promote-publisher.js";
import {
  type ClientsSummary,
  RecoveryClients,
  type ResumeMode,
  until,
} from "../recovery/recovery-clients.js";
import type { ScenarioOutcome } from "./outcome.js";
import { type RunContext, startServer, stopServer } from "./session.js";

const CHANNEL = "h0";
/** Blue's --drain-timeout: its drain window is 60% of it, paced at ~500 clients/s per worker within. */
export const PROMOTE_DRAIN_TIMEOUT_MS = 10_000;
const CONNECT_BATCH = 200;
/** Connecting moves on when no first subscribe was confirmed for this long (one per client normally takes ms). */
const SUBSCRIBE_STALL_MS = 10_000;
/** How long the final message may take to reach every client, and the move to finish, at most. */
const SETTLE_TIMEOUT_MS = 20_000;

interface Timing {
  /** Publishing to blue before green starts, and to green after blue exited. */
  beforeMs: number;
  afterMs: number;
}

/** One promote's outcome, before it is turned into figures. */
interface PromoteOutcome {
  clients: ClientsSummary;
  /** Clients that connected but whose first subscribe was never answered (left out of every other figure). */
  unanswered: number;
  planned: number;
  published: number;
  publishRetries: number;
  publishFailures: number;
  duplicateAcks: number;
  epochs: number;
  blueExitCode: number | string;
  /** SIGTERM to blue → blue's exit. */
  blueExitMs: number;
  /** Green's start (spawn → ready line). */
  greenStartMs: number;
  /** The whole promote run, first client connecting → figures. */
  runMs: number;
  /** The bench process's event loop delay p99 while publishing (the clients run in it). */
  loopDelayP99Ms: number;
  cpuPct: number;
}

function serverArgs(ctx: RunContext, redisUrl: string, prefix: string, instance: string) {
  const cmd = ctx.spec.command(ctx.config.workers);
  return {
    ...cmd,
    args: [
      ...cmd.args,
      ...["--redis", redisUrl, "--redis-prefix", prefix, "--instance", instance],
      ...["--drain-timeout", String(PROMOTE_DRAIN_TIMEOUT_MS)],
    ],
  };
}

async function promoteOnce(
  ctx: RunContext,
  redis: RedisServer,
  mode: ResumeMode,
  timing: Timing,
): Promise<PromoteOutcome> {
  const { config, progress } = ctx;
  const label = `${ctx.tag} ${mode === "resume" ? "SDK (resume)" : "reference (no resume)"}`;
  const prefix = `bench-h-${mode}`;
  const started = performance.now();
  let blue: ServerProcess | undefined;
  let green: ServerProcess | undefined;
  let clients: RecoveryClients | undefined;
  let publisher: PromotePublisher | undefined;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  try {
    blue = await startServer(serverArgs(ctx, redis.url, prefix, "blue"));
    const live = { port: blue.port };
    const wsUrl = () => `ws://127.0.0.1:${live.port}/ws`;
    const httpUrl = () => `http://127.0.0.1:${live.port}`;

    clients = new RecoveryClients(config.recoveryClients, mode, CHANNEL, wsUrl);
    await clients.connect(CONNECT_BATCH, SUBSCRIBE_STALL_MS);
    if (clients.firstSubscribed === 0)
      throw new Error(`${label}: no client subscribed within ${SUBSCRIBE_STALL_MS / 1000} s\n${blue.tail()}`);
    // A client whose subscribe was never answered is reported and left out (it is owed nothing).
    const unanswered = clients.dropUnsubscribed();
    if (unanswered.dropped > 0)
      progress.log(
        `${label}: ${unanswered.dropped} client(s) still without an answer to their first subscribe ` +
          `${SUBSCRIBE_STALL_MS / 1000} s after the last one was answered; left out:\n${unanswered.described}`,
      );
    progress.log(`${label}: ${fmt(clients.firstSubscribed)} clients subscribed to ${CHANNEL} on blue`);
    // Subscriptions reach Redis asynchronously; the first publish follows them.
    await sleep(300);

    publisher = new PromotePublisher(httpUrl, CHANNEL);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    loop.enable();
    publisher.start(config.recoveryRate);
    await sleep(timing.beforeMs);

    // The promote: green up, everyone pointed at it, blue drained.
    const greenStarted = performance.now();
    green = await startServer(serverArgs(ctx, redis.url, prefix, "green"));
    const greenStartMs = performance.now() - greenStarted;
    live.port = green.port;
    clients.promoting = true;
    const sigterm = performance.now();
    progress.log(
      `${label}: green ready after ${fmt(greenStartMs)} ms on port ${green.port}; clients and publisher ` +
        `switched; SIGTERM to blue (pid ${blue.pid})`,
    );
    const blueExitCode = await blue.stop("SIGTERM", PROMOTE_DRAIN_TIMEOUT_MS + 10_000);
    const blueExitMs = performance.now() - sigterm;
    blue = undefined;
    await until(() => clients?.away === 0, performance.now() + SETTLE_TIMEOUT_MS);
    progress.log(
      `${label}: blue exited with code ${blueExitCode} after ${fmt(blueExitMs)} ms; ` +
        `${fmt(clients.moved)} clients subscribed again on green, ${fmt(clients.away)} still away`,
    );
    await sleep(timing.afterMs);
    await publisher.stop();
    loop.disable();
    const cpu = process.cpuUsage(cpu0);
    const cpuPct = (100 * (cpu.user + cpu.system)) / 1000 / Math.max(1, performance.now() - t0);

    // The final message: once every client has it, nothing else is on its way.
    await publisher.publishOne({ final: true });
    const size = clients.size;
    await until(() => (clients?.finals ?? 0) >= size, performance.now() + SETTLE_TIMEOUT_MS);
    // Anything a client got twice would arrive by now too.
    await sleep(200);

    const acked = [...publisher.acked.values()];
    const summary = clients.summarize(acked);
    return {
      clients: summary,
      unanswered: unanswered.dropped,
      planned: publisher.sent,
      published: acked.length,
      publishRetries: publisher.retries,
      publishFailures: publisher.failures.length,
      duplicateAcks: publisher.duplicateAcks,
      epochs: new Set(acked.map((a) => a.epoch)).size,
      blueExitCode,
      blueExitMs,
      greenStartMs,
      runMs: performance.now() - started,
      loopDelayP99Ms: loop.percentile(99) / 1e6,
      cpuPct,
    };
  } finally {
    loop.disable();
    clients?.close();
    publisher?.close();
    await stopServer(ctx, blue);
    await stopServer(ctx, green);
  }
}

/** Per-promote figures, prefixed ("sdk" / "ref"). */
function figuresOf(prefix: string, o: PromoteOutcome): Record<string, number> {
  const c = o.clients;
  const f: Record<string, number> = {
    clients: c.clients,
    unansweredSubscribes: o.unanswered,
    published: o.published,
    publishFailures: o.publishFailures,
    publishRetries: o.publishRetries,
    duplicateAcks: o.duplicateAcks,
    epochs: o.epochs,
    owed: c.owed,
    missed: c.missed,
    missedPer1000: c.clients > 0 ? (c.missed * 1000) / c.clients : Number.NaN,
    clientsMissing: c.clientsMissing,
    duplicates: c.duplicates,
    outOfOrder: c.outOfOrder,
    gaps: c.gaps,
    recoveredClients: c.recoveredClients,
    movedClients: c.movedClients,
    strandedClients: c.strandedClients,
    failedAttempts: c.failedAttempts,
    unexpectedCloses: c.unexpectedCloses,
    drainCloses: c.drainCloses,
    reconnects: c.reconnects,
    clientsWithoutFinal: c.clientsWithoutFinal,
    foreignEpoch: c.foreignEpoch,
    moveMs: c.moveMs,
    awayMeanMs: c.awayMeanMs,
    awayP99Ms: c.awayP99Ms,
    resubscribeP50Ms: c.resubscribeP50Ms,
    resubscribeP99Ms: c.resubscribeP99Ms,
    blueExitCode: typeof o.blueExitCode === "number" ? o.blueExitCode : Number.NaN,
    blueExitMs: o.blueExitMs,
    greenStartMs: o.greenStartMs,
    runMs: o.runMs,
    loopDelayP99Ms: o.loopDelayP99Ms,
    clientCpuPct: o.cpuPct,
  };
  return Object.fromEntries(
    Object.entries(f).map(([k, v]) => [`${prefix}${k[0]?.toUpperCase()}${k.slice(1)}`, v]),
  );
}

function describe(label: string, o: PromoteOutcome): string {
  const c = o.clients;
  return (
    `${label}: ${fmt(c.clients)} clients, ${fmt(o.published)} published, missed ${fmt(c.missed)} ` +
    `(${fmt(c.clients > 0 ? (c.missed * 1000) / c.clients : Number.NaN)} per 1,000 clients), ` +
    `duplicates ${fmt(c.duplicates)}, out of order ${fmt(c.outOfOrder)}, gaps ${fmt(c.gaps)}, ` +
    `recovered ${fmt(c.recoveredClients)}, moved ${fmt(c.movedClients)} in ${fmt(c.moveMs)} ms ` +
    `(away per client mean ${fmt(c.awayMeanMs)} / p99 ${fmt(c.awayP99Ms)} ms; open → subscribed p50 ` +
    `${fmt(c.resubscribeP50Ms)} / p99 ${fmt(c.resubscribeP99Ms)} ms), ` +
    `failed attempts ${fmt(c.failedAttempts)}, without the final message ${fmt(c.clientsWithoutFinal)}; ` +
    `bench process CPU ${fmt(o.cpuPct)}%, event loop p99 ${fmt(o.loopDelayP99Ms)} ms`
  );
}

export async function runRecovery(ctx: RunContext): Promise<ScenarioOutcome> {
  if (!redisInstalled()) {
    ctx.progress.log(`${ctx.tag}: not run: redis-server missing`);
    return { figures: {}, skipped: "not run: redis-server missing" };
  }
  const timing: Timing = ctx.config.smoke
    ? { beforeMs: 500, afterMs: 500 }
    : { beforeMs: 2000, afterMs: 3000 };
  const redis = await startRedis();
  let sdk: PromoteOutcome;
  let ref: PromoteOutcome;
  try {
    ctx.progress.log(`${ctx.tag}: redis-server pid ${redis.pid} on ${redis.url}`);
    sdk = await promoteOnce(ctx, redis, "resume", timing);
    ctx.progress.log(describe(`${ctx.tag} SDK (resume)`, sdk));
    ref = await promoteOnce(ctx, redis, "fresh", timing);
    ctx.progress.log(describe(`${ctx.tag} reference (no resume)`, ref));
  } finally {
    await redis.destroy();
  }
  return {
    figures: {
      clients: ctx.config.recoveryClients,
      rate: ctx.config.recoveryRate,
      workers: ctx.config.workers,
      drainTimeoutMs: PROMOTE_DRAIN_TIMEOUT_MS,
      ...figuresOf("sdk", sdk),
      ...figuresOf("ref", ref),
    },
  };
}
