/**
 * Scenario G (opt-in): cross-host delivery. Two Switchboard instances (one worker each) share a fresh local
 * redis-server; half the subscribers sit on each, every publish goes to instance A. The same shape runs on one
 * host first (one Switchboard, two workers, no Redis), so the table shows what the Redis hop adds: latency
 * (cross-host minus one-host p50/p99 at the reference rate) and the ratio of highest sustained deliveries/s.
 * Latency and deliveries/s are also given apart for subscribers on the publishing host and on the other one.
 */
import { fmt } from "../format.js";
import { LoadFleet } from "../load/load-fleet.js";
import { RatePublisher } from "../rate-publisher.js";
import { RedisProcess, redisInstalled } from "../redis-process.js";
import type { StepResult } from "../results.js";
import { ServerProcess } from "../server-process.js";
import { summarize } from "./fanout.js";
import type { ScenarioOutcome } from "./outcome.js";
import { CpuMeter, type RunContext, sleep } from "./session.js";
import { toStepResult } from "./step-result.js";

/** Subscribers in G at most (all on one channel, half on each host). */
export const CROSS_HOST_SUBSCRIBERS = 2000;
const WORKERS_PER_HOST = 1;
const ONE_HOST_WORKERS = 2;
const CHANNEL = "g0";
const PUBLISH_CONNECTIONS = 4;
const STALL_MS = 1500;
const READY_TIMEOUT_MS = 60_000;
const SUBSCRIBE_TIMEOUT_MS = 60_000;

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
}

async function received(groups: Group[], step: number): Promise<number> {
  const counts = await Promise.all(groups.map((g) => g.fleet.received(step)));
  return counts.reduce((a, b) => a + b, 0);
}

async function awaitDeliveries(groups: Group[], step: number, expected: number, graceMs: number) {
  const until = performance.now() + graceMs;
  let last = -1;
  let lastChange = performance.now();
  while (performance.now() < until) {
    const got = await received(groups, step);
    if (got >= expected) return;
    if (got !== last) {
      last = got;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_MS) return;
    await sleep(100);
  }
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
  const out: HostSteps = { all: [], local: [], remote: [] };
  const publisher = new RatePublisher(servers[0].port, PUBLISH_CONNECTIONS);
  try {
    for (const [i, server] of servers.entries()) {
      const fleet = LoadFleet.start(LoadFleet.processesFor(halves[i] ?? 0, perFleet));
      groups.push({ server, fleet, acked: 0 });
      await fleet.connect({ port: server.port, protocol: "ws", total: halves[i] ?? 0, concurrency: 200 });
    }
    for (const g of groups) g.acked = (await g.fleet.subscribe(1, "g", SUBSCRIBE_TIMEOUT_MS)).acked;
    const [a, b] = groups as [Group, Group];
    const fanout = a.acked + b.acked;
    ctx.progress.log(`${ctx.tag} ${label}: ${fmt(a.acked)} + ${fmt(b.acked)} subscribed to ${CHANNEL}`);
    if (a.acked === 0 || b.acked === 0) throw new Error(`${label}: a host has no acknowledged subscription`);
    // Subscriptions travel to Redis asynchronously: give the other host a moment before the first publish.
    await sleep(500);
    const durationMs = config.durationS * 1000;
    const graceMs = Math.min(20_000, Math.max(2000, 2 * durationMs));
    const channelOf = () => CHANNEL;
    if (!config.smoke) {
      const warm = await publisher.run({ step: 0, rate: 10, durationMs: 200, channelOf });
      await awaitDeliveries(groups, 0, warm.published * fanout, graceMs);
      await Promise.all(groups.map((g) => g.fleet.take(0)));
    }
    let fails = 0;
    for (const [i, rate] of config.ratesC.entries()) {
      for (const s of new Set(servers)) if (!s.running) throw new Error(`server died:\n${s.tail()}`);
      const step = i + 1;
      const meters = groups.map((g) => new CpuMeter(g));
      for (const m of meters) await m.start();
      ctx.progress.status(`${ctx.tag} ${label}: publishing ${fmt(rate)} msgs/s for ${config.durationS} s`);
      const scheduled = Math.max(1, Math.round((rate * durationMs) / 1000));
      const publish = await publisher.run({ step, rate, durationMs, channelOf });
      await awaitDeliveries(groups, step, publish.published * fanout, graceMs);
      const [ra, rb] = await Promise.all(groups.map((g) => g.fleet.take(step)));
      const [ua, ub] = await Promise.all(meters.map((m) => m.read()));
      if (!ra || !rb || !ua || !ub) throw new Error("missing step reports");
      // Each meter counts the other group's clients (and, cross-host, server) as "other processes".
      const sameServer = servers[0] === servers[1];
      const cpu = {
        clientCpuPct: ua.clientCpuPct + ub.clientCpuPct,
        serverCpuPct: sameServer ? ua.serverCpuPct : ua.serverCpuPct + ub.serverCpuPct,
        otherCpuPct: Math.max(0, ua.otherCpuPct - ub.clientCpuPct - (sameServer ? 0 : ub.serverCpuPct)),
      };
      const base = { rate, scheduled, publish, durationMs, ...cpu };
      const all = toStepResult({ ...base, fanout, reports: [...ra, ...rb] });
      out.all.push(all);
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
      fails = all.sustained ? 0 : fails + 1;
      if (fails >= config.stopAfterFail) break;
    }
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

async function stopAll(ctx: RunContext, servers: (ServerProcess | undefined)[]): Promise<void> {
  const codes = await Promise.all(servers.map((s) => s?.stop(5000)));
  for (const code of codes)
    if (code !== 0 && code !== null && code !== undefined)
      ctx.progress.log(`${ctx.tag}: server exited with code ${code}`);
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
    one = await ServerProcess.start(ctx.spec.command(ONE_HOST_WORKERS), READY_TIMEOUT_MS);
    oneHost = await measure(ctx, "one host", [one, one], subscribers);
  } finally {
    await stopAll(ctx, [one]);
  }

  // Two hosts through Redis: one worker each, publishes to A.
  const redis = await RedisProcess.start();
  const hosts: (ServerProcess | undefined)[] = [];
  let cross: HostSteps;
  try {
    ctx.progress.log(`${ctx.tag}: redis-server pid ${redis.pid} on ${redis.url}`);
    for (let i = 0; i < 2; i++) {
      const cmd = ctx.spec.command(WORKERS_PER_HOST);
      hosts.push(
        await ServerProcess.start({ ...cmd, args: [...cmd.args, "--redis", redis.url] }, READY_TIMEOUT_MS),
      );
    }
    cross = await measure(ctx, "cross-host", hosts as [ServerProcess, ServerProcess], subscribers);
  } finally {
    await stopAll(ctx, hosts);
    await redis.stop();
  }

  const fig = {
    one: summarize(oneHost.all, refRate, subscribers).figures,
    cross: summarize(cross.all, refRate, subscribers).figures,
    local: summarize(cross.local, refRate, Math.ceil(subscribers / 2)).figures,
    remote: summarize(cross.remote, refRate, Math.floor(subscribers / 2)).figures,
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
