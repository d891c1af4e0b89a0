/**
 * Scenario G (opt-in): cross-host delivery. Two Switchboard instances (one worker each) share a fresh local
 * redis-server; half the subscribers sit on each, every publish goes to instance A. The same shape runs on one
 * host first (one Switchboard, two workers, no Redis), so the table shows what the Redis hop adds: latency
 * (cross-host minus one-host p50/p99 at the reference rate) and the ratio of highest sustained deliveries/s.
 * Latency and deliveries/s are also given apart for subscribers on the publishing host and on the other one.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { redisInstalled, startRedis } from "../../harness/redis-server.js";
import type { ServerProcess } from "../../harness/server-process.js";
import { fmt } from "../format.js";
import { LoadFleet } from "../load/load-fleet.js";
import { RatePublisher } from "../rate-publisher.js";
import type { StepResult } from "../results.js";
import { summarize } from "./fanout.js";
import type { ScenarioOutcome } from "./outcome.js";
import { assertAlive, CpuMeter, type RunContext, startServer, stopServer } from "./session.js";
import { toStepResult } from "./step-result.js";
import {
  awaitDeliveries,
  graceFor,
  PUBLISH_CONNECTIONS,
  SUBSCRIBE_TIMEOUT_MS,
  stepUp,
  warmUp,
} from "./stepping.js";

/** Subscribers in G at most (all on one channel, half on each host). */
export const CROSS_HOST_SUBSCRIBERS = 2000;
const WORKERS_PER_HOST = 1;
const ONE_HOST_WORKERS = 2;
const CHANNEL = "g0";

/** One group of subscribers: a fleet of load clients connected to one server. */
interface Group {
  server: ServerProcess;
  fleet: LoadFleet;
  acked: number;
}

interface HostSteps {
  all: StepResult[];
  /** Subscribers on the publishing host (A) and on the other host (B); one-host: both halves of one server. */
  local: StepResult[];
  remote: StepResult[];
  /** Acknowledged subscriptions on A and on B: the fan-outs the steps were measured with. */
  acked: [number, number];
}

/** Every group's clients as one: deliveries summed, reports per group. */
function clientsOf(groups: Group[]) {
  return {
    received: async (step: number) =>
      (await Promise.all(groups.map((g) => g.fleet.received(step)))).reduce((a, b) => a + b, 0),
    take: (step: number) => Promise.all(groups.map((g) => g.fleet.take(step))),
  };
}

/** Runs the stepped-rate measurement with `servers[0]` as the publishing host; `servers` may repeat one server. */
async function measure(
  ctx: RunContext,
  label: string,
  servers: [ServerProcess, ServerProcess],
  subscribers: number,
): Promise<HostSteps> {
  const { config } = ctx;
  const halves = [Math.ceil(subscribers / 2), Math.floor(subscribers / 2)];
  const perFleet = Math.max(1, Math.ceil(config.clientProcesses / 2));
  const groups: Group[] = [];
  const out: HostSteps = { all: [], local: [], remote: [], acked: [0, 0] };
  const publisher = new RatePublisher(servers[0].port, PUBLISH_CONNECTIONS, { batch: true });
  try {
    for (const [i, server] of servers.entries()) {
      const fleet = LoadFleet.start(LoadFleet.processesFor(halves[i] ?? 0, perFleet));
      groups.push({ server, fleet, acked: 0 });
      await fleet.connect({ port: server.port, protocol: "ws", total: halves[i] ?? 0, concurrency: 200 });
    }
    for (const g of groups) g.acked = (await g.fleet.subscribe(1, "g", SUBSCRIBE_TIMEOUT_MS)).acked;
    const [a, b] = groups as [Group, Group];
    out.acked = [a.acked, b.acked];
    const fanout = a.acked + b.acked;
    ctx.progress.log(`${ctx.tag} ${label}: ${fmt(a.acked)} + ${fmt(b.acked)} subscribed to ${CHANNEL}`);
    if (a.acked === 0 || b.acked === 0) throw new Error(`${label}: a host has no acknowledged subscription`);
    // Subscriptions travel to Redis asynchronously: give the other host a moment before the first publish.
    await sleep(500);
    const durationMs = config.durationS * 1000;
    const graceMs = graceFor(durationMs);
    const channelOf = () => CHANNEL;
    const clients = clientsOf(groups);
    if (!config.smoke) await warmUp(publisher, channelOf, fanout, graceMs, clients);
    out.all = await stepUp(config.ratesC, config.stopAfterFail, async (rate, step) => {
      for (const s of new Set(servers)) assertAlive(s);
      const meters = groups.map((g) => new CpuMeter(g));
      for (const m of meters) await m.start();
      ctx.progress.status(`${ctx.tag} ${label}: publishing ${fmt(rate)} msgs/s for ${config.durationS} s`);
      const publish = await publisher.run({ step, rate, durationMs, channelOf });
      await awaitDeliveries(() => clients.received(step), publish.published * fanout, graceMs);
      const [ra, rb] = await clients.take(step);
      const [ua, ub] = await Promise.all(meters.map((m) => m.read()));
      if (!ra || !rb || !ua || !ub) throw new Error("missing step reports");
      // Each meter counts the other group's clients (and, cross-host, server) as "other processes".
      const sameServer = servers[0] === servers[1];
      const cpu = {
        clientCpuPct: ua.clientCpuPct + ub.clientCpuPct,
        serverCpuPct: sameServer ? ua.serverCpuPct : ua.serverCpuPct + ub.serverCpuPct,
        otherCpuPct: Math.max(0, ua.otherCpuPct - ub.clientCpuPct - (sameServer ? 0 : ub.serverCpuPct)),
      };
      const base = { rate, publish, durationMs, ...cpu };
      const all = toStepResult({ ...base, fanout, reports: [...ra, ...rb] });
      out.local.push(toStepResult({ ...base, fanout: a.acked, reports: ra }));
      out.remote.push(toStepResult({ ...base, fanout: b.acked, reports: rb }));
      const side = (r: StepResult | undefined) =>
        `p50 ${fmt(r?.p50Ms)} / p99 ${fmt(r?.p99Ms)} ms, ${fmt(r?.deliveredPct)}%`;
      ctx.progress.log(
        `${ctx.tag} ${label}: ${fmt(rate)} msgs/s: ${all.deliveredPct.toFixed(2)}% of ${fmt(all.expected)}, ` +
          `p50 ${fmt(all.p50Ms)} / p99 ${fmt(all.p99Ms)} ms, ${fmt(all.deliveriesPerSec)} deliveries/s ` +
          `(publishing host ${side(out.local.at(-1))}; other host ${side(out.remote.at(-1))}), ` +
          `CPU server ${fmt(cpu.serverCpuPct)}%, clients ${fmt(cpu.clientCpuPct)}%` +
          (all.sustained ? "" : "  ✗ not sustained"),
      );
      return all;
    });
  } finally {
    publisher.close();
    await Promise.allSettled(groups.map((g) => g.fleet.close()));
  }
  return out;
}

/** `figures` with every key prefixed: ("cross", {refP50Ms}) → {crossRefP50Ms}. */
function prefixed(prefix: string, figures: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(figures).map(([k, v]) => [`${prefix}${k[0]?.toUpperCase()}${k.slice(1)}`, v]),
  );
}

export async function runCrossHost(ctx: RunContext): Promise<ScenarioOutcome> {
  if (!redisInstalled()) {
    ctx.progress.log(`${ctx.tag}: not run: redis-server not installed`);
    return { figures: {}, skipped: "not run: redis-server not installed" };
  }
  const subscribers = Math.max(2, Math.min(ctx.config.connections, CROSS_HOST_SUBSCRIBERS));
  const refRate = ctx.config.refRateC;

  // One host, the same shape: one Switchboard with two workers, no Redis.
  let one: ServerProcess | undefined;
  let oneHost: HostSteps;
  try {
    one = await startServer(ctx.spec.command(ONE_HOST_WORKERS));
    oneHost = await measure(ctx, "one host", [one, one], subscribers);
  } finally {
    await stopServer(ctx, one);
  }

  // Two hosts through Redis: one worker each, publishes to A.
  const redis = await startRedis();
  const hosts: (ServerProcess | undefined)[] = [];
  let cross: HostSteps;
  try {
    ctx.progress.log(`${ctx.tag}: redis-server pid ${redis.pid} on ${redis.url}`);
    for (let i = 0; i < 2; i++) {
      const cmd = ctx.spec.command(WORKERS_PER_HOST);
      hosts.push(await startServer({ ...cmd, args: [...cmd.args, "--redis", redis.url] }));
    }
    cross = await measure(ctx, "cross-host", hosts as [ServerProcess, ServerProcess], subscribers);
  } finally {
    await Promise.all(hosts.map((h) => stopServer(ctx, h)));
    await redis.destroy();
  }

  // The fan-outs the steps were measured with (acknowledged, not planned, subscriptions).
  const fig = {
    one: summarize(oneHost.all, refRate, oneHost.acked[0] + oneHost.acked[1]).figures,
    cross: summarize(cross.all, refRate, cross.acked[0] + cross.acked[1]).figures,
    local: summarize(cross.local, refRate, cross.acked[0]).figures,
    remote: summarize(cross.remote, refRate, cross.acked[1]).figures,
  };
  const diff = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? Number.NaN : a - b;
  const div = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? Number.NaN : a / b;
  const last = cross.all.at(-1);
  return {
    steps: cross.all,
    clientCpuPct: last?.clientCpuPct,
    serverCpuPct: last?.serverCpuPct,
    otherCpuPct: last?.otherCpuPct,
    figures: {
      subscribers,
      ...prefixed("oneHost", fig.one),
      ...prefixed("cross", fig.cross),
      ...prefixed("local", fig.local),
      ...prefixed("remote", fig.remote),
      addedP50Ms: diff(fig.cross.refP50Ms, fig.one.refP50Ms),
      addedP99Ms: diff(fig.cross.refP99Ms, fig.one.refP99Ms),
      sustainedDeliveriesRatio: div(fig.cross.sustainedDeliveriesPerSec, fig.one.sustainedDeliveriesPerSec),
      peakDeliveriesRatio: div(fig.cross.maxDeliveriesPerSec, fig.one.maxDeliveriesPerSec),
    },
  };
}
