/**
 * The fleet on one machine (`npm run test:fleet`, root only; not part of `npm test`): three app hosts, two HAProxy
 * balancers and a client, each its own network namespace on a bridge the test makes (see fleet.ts for the
 * addresses), a Redis Cluster of 3 masters + 3 replicas spread over the app hosts, blue and green Switchboard under
 * pm2 on every host, and the shipped haproxy.multi-host.cfg on both balancers. Every client and publisher runs in
 * the client namespace (agent.ts) and goes through the balancers.
 *
 * 1. Delivery: every message published through either balancer reaches every subscriber on every host, raw and
 *    Socket.IO; long-polling sessions whose requests alternate between the balancers stay on their server.
 * 2. A green that never becomes ready on app2: app1 (already promoted) is rolled back, the fleet stays blue.
 * 3. `scripts/promote green` host by host under load: no refused connection, each client moves at most once,
 *    nothing lost or repeated, blue exits 0 everywhere. 4. `--rollback` host by host, the same way.
 * 5. The Redis master of the test channel's shard killed: its replica takes over, delivery resumes, what could not
 *    be delivered is reported as history_gap. 6. app3 cut off the bridge: its clients resume on the other hosts
 *    without loss. 7. lb1 killed: its clients reconnect through lb2, without loss.
 *
 * Everything it made (namespaces, the bridge, veths, processes, temp files) is removed at the end, on failure, on
 * SIGINT / SIGTERM, and by the next run if this one was killed outright.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { keySlot } from "../../src/bus/redis/key-slot.js";
import { deliveryProblems } from "../helpers/load.js";
import { until } from "../helpers/server.js";
import type { OpenArgs } from "./agent.js";
import type { FleetStats } from "./clients.js";
import { APPS, type App, Fleet, LBS, type PromoteRun } from "./fleet.js";
import { removeLeftovers } from "./netns.js";

const IS_ROOT = process.getuid?.() === 0;
const FINAL_N = 1_000_000;
type Acked = { n: number; offset: number; epoch: string; duplicate: boolean };
type Finished = { acked: Acked[]; failures: string[]; retries: number; lacking: number };

/** The test channel and the failover test's: chosen in `before` by the shard that holds them. */
let CHANNEL = "";
let FAILOVER_CHANNEL = "";
const started = Date.now();
/** Offsets missing between the first and the last of `sorted`. */
function holes(sorted: number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < sorted.length; i++)
    for (let o = (sorted[i - 1] as number) + 1; o < (sorted[i] as number); o++) out.push(o);
  return out;
}

describe("the fleet: 3 hosts, Redis Cluster, 2 HAProxy, promote across all of them", {
  skip: IS_ROOT ? false : "needs root (ip netns)",
  timeout: 175_000,
}, () => {
  let fleet: Fleet | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    fleet?.cleanup();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };

  before(async () => {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    process.once("exit", () => fleet?.cleanup());
    const stale = removeLeftovers();
    if (stale.length > 0) console.log(`# removed leftovers of an earlier run: ${stale.join(" ")}`);
    fleet = await Fleet.start((line) => console.log(`# ${line}`));
    // The test channel lives on app1's shard; the failover test's on app2's (app3's master goes with its host).
    const on = (app: App) => {
      for (let i = 0; ; i++)
        if ((fleet as Fleet).masterOfSlot(keySlot(`fleet-${i}`)).app === app) return `fleet-${i}`;
    };
    CHANNEL = on("app1");
    FAILOVER_CHANNEL = on("app2");
  });

  after(async () => {
    const net = fleet?.net;
    await fleet?.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (net) assert.deepEqual(net.remaining(), [], "every namespace of this run is gone");
    console.log(`# fleet test total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const f = () => fleet as Fleet;
  const agent = () => {
    const a = f().agent;
    if (!a) throw new Error("no agent");
    return a;
  };
  const open = (args: Omit<OpenArgs, "channel"> & { channel?: string }) =>
    agent().call<number>("open", { channel: CHANNEL, ...args });
  const stats = (group: string) => agent().call<FleetStats[]>("stats", { group });
  const finish = (group: string) =>
    agent().call<Finished>("finish", {
      group,
      finalN: FINAL_N + Math.floor(Math.random() * 1000),
      timeoutMs: 30_000,
    });

  const acked = (group: string) => agent().call<number>("acked", { group });
  /** Waits until the group's stream has `count` more acknowledged publishes than now. */
  async function morePublishes(group: string, count: number, timeoutMs = 20_000) {
    const mark = await acked(group);
    await until(async () => (await acked(group)) >= mark + count, timeoutMs, `${count} more publishes`);
  }
  /** Ends the group's stream with a final message and tallies what every client got. */
  async function conclude(t: { diagnostic(m: string): void }, group: string, label: string) {
    const fin = await finish(group);
    const all = await stats(group);
    const x = tally(all, fin);
    report(t, label, x);
    return { fin, all, x };
  }

  /** Totals over clients: moves, refused attempts, what was missed against what the stream had acknowledged. */
  function tally(all: FleetStats[], fin: Finished) {
    const problems = all.map((s) => ({ s, ...deliveryProblems(s, fin.acked) }));
    return {
      clients: all.length,
      raw: all.filter((s) => s.kind === "raw").length,
      sio: all.filter((s) => s.kind === "socket.io").length,
      published: fin.acked.length,
      publishFailures: fin.failures.length,
      missing: problems.reduce((n, p) => n + p.missing, 0),
      duplicates: problems.reduce((n, p) => n + p.duplicates, 0),
      outOfOrder: problems.reduce((n, p) => n + p.outOfOrder, 0),
      gaps: all.reduce((n, s) => n + s.gaps.length, 0),
      failedAttempts: all.reduce((n, s) => n + s.failedAttempts, 0),
      unexpectedCloses: all.reduce((n, s) => n + s.unexpectedCloses, 0),
      lackingFinal: fin.lacking,
      movesMax: Math.max(...all.map((s) => s.connects - 1)),
      moved: all.filter((s) => s.connects > 1).length,
      problems,
    };
  }

  function report(t: { diagnostic(m: string): void }, label: string, x: ReturnType<typeof tally>) {
    const { problems, ...figures } = x;
    t.diagnostic(`${label}: ${JSON.stringify(figures)}`);
    const odd = problems.filter(
      (p) => p.missing + p.duplicates > 0 || p.s.connects > 2 || p.s.gaps.length > 0,
    );
    for (const p of odd.slice(0, 6)) {
      const { received, ...rest } = p.s;
      t.diagnostic(
        `  ${JSON.stringify({ ...rest, missing: p.missing, dup: p.duplicates, got: received.length, last: received.at(-1) })}`,
      );
    }
  }

  /** What Redis and each host say about the channel: holes in its history, acks outside the main epoch, bus counters. */
  function busReport(t: { diagnostic(m: string): void }, fin: Finished, channel = CHANNEL) {
    const byEpoch = new Map<string, number[]>();
    for (const a of fin.acked)
      if (!a.duplicate) byEpoch.set(a.epoch, [...(byEpoch.get(a.epoch) ?? []), a.offset]);
    for (const [epoch, offsets] of byEpoch) {
      offsets.sort((x, y) => x - y);
      t.diagnostic(
        `acked in epoch ${epoch}: ${offsets.length} (${offsets[0]}..${offsets.at(-1)}), not acked: ${holes(offsets).join(",")}`,
      );
    }
    const master = f().masterOfSlot(keySlot(channel));
    const ids = f()
      .redisCli(master.app, master.port, "XRANGE", `switchboard:hist:{${channel}}`, "-", "+")
      .split("\n")
      .filter((l) => /^\d+-1$/.test(l))
      .map((l) => Number.parseInt(l, 10));
    const meta = f()
      .redisCli(master.app, master.port, "HGETALL", `switchboard:meta:{${channel}}`)
      .replace(/\n/g, " ");
    t.diagnostic(
      `history ${ids[0]}..${ids.at(-1)} (${ids.length}), holes: ${holes(ids).join(",")}; meta: ${meta}`,
    );
    for (const app of APPS)
      for (const port of [9001, 9002]) {
        const redis = f().redisStatus(app, port);
        if (!redis) continue;
        const { nodes: _n, socketio: _s, ...counts } = redis;
        t.diagnostic(`${app}:${port} ${JSON.stringify(counts)}`);
      }
  }

  /** The instance's link to Redis is up and no channel is still rejoining. */
  const linked = (app: App, adminPort = 9001) => {
    const redis = f().redisStatus(app, adminPort);
    return redis?.state === "up" && redis.joining === 0;
  };

  function assertNoLoss(x: ReturnType<typeof tally>) {
    assert.equal(x.lackingFinal, 0, "every client got the last message");
    const bad = x.problems.filter((p) => p.missing + p.duplicates + p.outOfOrder + p.s.gaps.length > 0);
    assert.deepEqual(
      bad.slice(0, 3).map((p) => ({ kind: p.s.kind, missing: p.missing, dup: p.duplicates, gaps: p.s.gaps })),
      [],
      `${bad.length} clients lost, repeated or reordered messages`,
    );
    assert.deepEqual(x.publishFailures, 0, "every publish was acknowledged");
  }

  /**
   * Runs `scripts/promote <target>` on every host at once (a deploy box, one session per host); when a host fails,
   * the hosts that switched are rolled back (`--rollback`, again all at once). At once rather than host by host:
   * with host by host, a client that leaves a draining host may land on another host's old colour, which is still
   * serving, and move again when that host's turn comes.
   */
  async function fleetPromote(target: string, env: Partial<Record<App, NodeJS.ProcessEnv>> = {}) {
    const args = target === "--rollback" ? ["--rollback"] : [target];
    const runs = await Promise.all(APPS.map((app) => f().promote(app, args, env[app])));
    const switched = runs.filter((r) => r.code === 0).map((r) => r.app);
    if (switched.length === APPS.length) return { ok: true, runs };
    runs.push(...(await Promise.all(switched.map((app) => f().promote(app, ["--rollback"])))));
    return { ok: false, runs };
  }

  const timing = (runs: PromoteRun[]) =>
    runs.map((r) => `${r.app} ${r.args.join(" ")} → ${r.code} in ${r.ms} ms`).join("; ");

  /** Both colours of every host on both balancers, as "admin/op" (admin 0 ready, 1 maint, 8 drain; op 2 UP). */
  async function colours() {
    return Object.fromEntries([...(await f().servers())].map(([k, s]) => [k, `${s.admin}/${s.op}`]));
  }

  test("every message through either balancer reaches every subscriber on every host, raw and Socket.IO", async (t) => {
    await open({ group: "d", raw: 60, sio: 24 });
    await agent().call("stream", { group: "d", everyMs: 40 });
    await morePublishes("d", 40);
    const { all, x } = await conclude(t, "d", "delivery");
    assertNoLoss(x);
    assert.equal(x.failedAttempts, 0);
    const hosts = new Set(all.flatMap((s) => s.servers));
    assert.deepEqual(
      [...hosts].sort(),
      ["app1-blue", "app2-blue", "app3-blue"],
      "raw subscribers on every host",
    );
    const via = new Set(all.flatMap((s) => s.balancers));
    assert.deepEqual([...via].sort(), [0, 1], "clients on both balancers");
    await agent().call("close", { group: "d" });

    // Long-polling by hand: each request through the other balancer, the SERVERID cookie carried along.
    const poll = await agent().call<{
      acks: { ok?: boolean }[];
      sessions: { server: string; servedBy: string[]; via: number[]; received: number[] }[];
      want: number[];
    }>("polling", { channel: CHANNEL, sessions: 6, messages: 5 });
    t.diagnostic(
      `polling sessions: ${poll.sessions.map((s) => `${s.server} (${s.servedBy.length} requests via lb1+lb2)`).join(", ")}`,
    );
    assert.ok(
      poll.acks.every((a) => a.ok === true),
      JSON.stringify(poll.acks),
    );
    for (const s of poll.sessions) {
      assert.deepEqual(
        new Set(s.servedBy),
        new Set([s.server]),
        "every request of a session reached its server",
      );
      assert.deepEqual(new Set(s.via), new Set([0, 1]), "through both balancers");
      assert.deepEqual(s.received, poll.want, "a polling session got every message");
    }
    assert.ok(
      new Set(poll.sessions.map((s) => s.server)).size >= 2,
      "polling sessions on more than one host",
    );
  });

  test("a green that never becomes ready on app2: app2 rolls back, app1 and app3 are rolled back, the fleet stays blue", async (t) => {
    await open({ group: "n", raw: 30, sio: 9 });
    await agent().call("stream", { group: "n", everyMs: 50 });
    const res = await fleetPromote("green", { app2: { SWITCHBOARD_GREEN_DIR: f().brokenRelease } });
    for (const r of res.runs) t.diagnostic(`${r.app} ${r.args.join(" ")} (${r.code}):\n${r.out}`);
    t.diagnostic(timing(res.runs));
    assert.equal(res.ok, false);
    assert.deepEqual(
      res.runs.map((r) => [r.app, r.args.join(" "), r.code]),
      [
        ["app1", "green", 0],
        ["app2", "green", 1],
        ["app3", "green", 0],
        ["app1", "--rollback", 0],
        ["app3", "--rollback", 0],
      ],
    );
    assert.match(res.runs[1]?.out ?? "", /not ready within/);
    assert.match(res.runs[1]?.out ?? "", /rolled back: the previous colour keeps serving/);
    for (const r of res.runs.slice(3)) assert.match(r.out, /green exited with code 0/);
    const now = await colours();
    for (const lb of LBS)
      for (const app of APPS) assert.equal(now[`${lb} ${app}-blue`], "0/2", `${lb} ${app}-blue ready and UP`);
    for (const app of APPS) {
      const green = (await f().apps(app)).find((a) => a.name === "switchboard-green");
      assert.notEqual(green?.status, "online", `${app}: green is not running`);
    }
    await agent().call("waitSubscribed", { group: "n", timeoutMs: 20_000 });
    const { x } = await conclude(t, "n", "failed promote");
    assertNoLoss(x);
    assert.equal(x.failedAttempts, 0);
    await agent().call("close", { group: "n" });
  });

  for (const [name, target, from, to] of [
    ["scripts/promote green", "green", "blue", "green"],
    ["scripts/promote --rollback", "--rollback", "green", "blue"],
  ] as const) {
    test(`${name} on every host under load: no refused connection, one move each, nothing lost, ${from} exits 0`, async (t) => {
      const group = `p-${to}`;
      await open({ group, raw: 90, sio: 30 });
      await agent().call("stream", { group, everyMs: 40 });
      await morePublishes(group, 10, 10_000);
      const res = await fleetPromote(target);
      for (const r of res.runs) t.diagnostic(`${r.app} ${r.args.join(" ")} (${r.code}):\n${r.out}`);
      t.diagnostic(`time per promote: ${timing(res.runs)}`);
      assert.equal(res.ok, true, timing(res.runs));
      for (const r of res.runs) {
        assert.match(
          r.out,
          new RegExp(`${from} exited with code 0; port \\d+ closed`),
          `${r.app}: ${from} exits 0`,
        );
        assert.match(r.out, new RegExp(`done: ${to} is active`));
      }
      const now = await colours();
      for (const lb of LBS) {
        for (const app of APPS) {
          assert.equal(now[`${lb} ${app}-${to}`], "0/2", `${lb} ${app}-${to} ready and UP`);
          assert.equal(now[`${lb} ${app}-${from}`]?.split("/")[0], "1", `${lb} ${app}-${from} in maint`);
        }
      }
      await agent().call("waitSubscribed", { group, timeoutMs: 20_000 });
      const { fin, all, x } = await conclude(t, group, name);
      busReport(t, fin);
      assert.equal(
        x.failedAttempts,
        0,
        `refused connection attempts: ${all.flatMap((s) => s.errors).slice(0, 5)}`,
      );
      assert.equal(x.unexpectedCloses, 0, "every move was asked for (reconnect frame / transport close)");
      assert.ok(x.movesMax <= 1, `a client moved ${x.movesMax} times`);
      const ends = all.filter((s) => s.kind === "raw").map((s) => s.servers.at(-1) ?? "");
      assert.ok(
        ends.every((s) => s.endsWith(`-${to}`)),
        `every raw client ends on ${to}: ${ends.filter((s) => !s.endsWith(to))}`,
      );
      await agent().call("close", { group });
      assertNoLoss(x);
    });
  }

  test("app3 cut off the network: its clients resume through the balancers on app1 and app2 without loss", async (t) => {
    const group = "c";
    await open({
      group,
      raw: 45,
      sio: 15,
      heartbeat: { intervalMs: 1500, timeoutMs: 2000 },
      watchdogMs: 3000,
    });
    await agent().call("stream", { group, everyMs: 40 });
    await morePublishes(group, 20, 10_000);
    const onApp3 = (await stats(group)).filter((s) => s.servers.at(-1)?.startsWith("app3-")).length;
    f().net.link("app3", false);
    try {
      await f().waitServers(
        (name, s) => !name.startsWith("app3-") || s.op !== 2,
        "app3 DOWN on both balancers",
      );
      await until(
        async () => (await stats(group)).every((s) => s.subscribed && !s.servers.at(-1)?.startsWith("app3-")),
        30_000,
        "every client subscribed on app1 or app2",
        200,
      );
      await morePublishes(group, 20);
      const { x } = await conclude(t, group, "host cut off");
      t.diagnostic(`raw clients on app3 before the cut: ${onApp3}`);
      assert.ok(onApp3 > 0, "some raw clients were on app3");
      assertNoLoss(x);
    } finally {
      f().net.link("app3", true);
      await agent().call("close", { group });
      // The next parts start from a whole fleet: app3 UP on both balancers and linked to Redis again.
      await f().waitServers((name, s) => !name.startsWith("app3-blue") || s.op === 2, "app3 UP again");
      await until(() => linked("app3"), 20_000, "app3's Redis link up", 200);
    }
  });

  test("lb1 killed: its clients reconnect through lb2 and resume without loss", async (t) => {
    const group = "b";
    await open({ group, raw: 40, sio: 14 });
    await agent().call("stream", { group, everyMs: 40 });
    await morePublishes(group, 20, 10_000);
    const onLb1 = (await stats(group)).filter((s) => s.balancers.at(-1) === 0).length;
    await f().haproxy.get("lb1")?.stop("SIGKILL");
    await until(
      async () => (await stats(group)).every((s) => s.subscribed && s.balancers.at(-1) === 1),
      30_000,
      "every client subscribed through lb2",
      200,
    );
    await morePublishes(group, 20);
    const { x } = await conclude(t, group, "balancer killed");
    t.diagnostic(`clients on lb1 before: ${onLb1}`);
    assert.ok(onLb1 > 0);
    await agent().call("close", { group });
    // The next part starts from a whole fleet: lb1 back (without a saved state it takes the stopped greens for UP
    // until their checks fail), every blue UP on it and no green.
    await f().startBalancer("lb1");
    await f().waitServers(
      (name, s) => (name.endsWith("-blue") ? s.op === 2 : s.op !== 2),
      "lb1 back with every blue UP, every green DOWN",
    );
    assertNoLoss(x);
  });
  test("the Redis master of a channel's shard killed: the replica takes over, delivery resumes, losses are history_gap", async (t) => {
    const group = "k";
    await open({ group, raw: 30, sio: 9, channel: FAILOVER_CHANNEL });
    await agent().call("stream", { group, everyMs: 40 });
    await morePublishes(group, 20, 10_000);
    const victim = f().masterOfSlot(keySlot(FAILOVER_CHANNEL));
    const replica = f().redis.find((n) => n.replicaOf === victim.app);
    assert.ok(replica, "the shard has a replica");
    t.diagnostic(
      `killing the master ${victim.app}:${victim.port}; its replica is on ${replica.app}:${replica.port}`,
    );
    const killedAt = Date.now();
    const ackedBeforeKill = await acked(group);
    await victim.proc.stop("SIGKILL");
    await until(
      () => /role:master/.test(f().redisCli(replica.app, replica.port, "INFO", "replication")),
      20_000,
      "the replica promoted",
      100,
    );
    const failoverMs = Date.now() - killedAt;
    await until(
      () => f().redisCli(replica.app, replica.port, "CLUSTER", "INFO").includes("cluster_state:ok"),
      20_000,
      "cluster_state:ok",
      100,
    );
    // Each host reads the slot map again every second while a master is gone, then rejoins the channel there.
    await until(() => APPS.every((app) => linked(app)), 20_000, "every host linked to the new master", 200);
    const relinkedMs = Date.now() - killedAt;
    await morePublishes(group, 30, 30_000);
    await agent().call("waitSubscribed", { group, timeoutMs: 20_000 });
    const { fin, all, x } = await conclude(t, group, "redis failover");
    t.diagnostic(
      `failover (kill → replica is master) ${failoverMs} ms, every host relinked ${relinkedMs} ms`,
    );
    assert.equal(x.lackingFinal, 0, "every client got the last message");
    assert.equal(x.duplicates, 0, "nothing delivered twice");
    assert.equal(x.failedAttempts, 0, "no connection refused");
    // Everything published after the failover reached everyone (the final message did, so did all before it).
    const afterFailover = fin.acked
      .filter((a) => a.n > 0)
      .slice(-20)
      .map((a) => a.n);
    for (const s of all) {
      const got = new Set(s.received.map((r) => r.n));
      assert.ok(
        afterFailover.every((n) => got.has(n)),
        `${s.kind}: delivery resumed after the failover`,
      );
    }
    // Nothing acknowledged before the kill went missing (acks are kept in the order they came).
    const beforeKill = fin.acked.slice(0, ackedBeforeKill);
    for (const s of all) {
      const got = new Set(s.received.map((r) => r.n));
      const owed = beforeKill.filter((a) => s.firstOffset !== null && a.offset > s.firstOffset);
      assert.deepEqual(
        owed.filter((a) => !got.has(a.n)).slice(0, 5),
        [],
        `${s.kind}: nothing acknowledged before the kill missing`,
      );
    }
    // What a client did not get was reported to it as a gap.
    const silent = x.problems.filter((p) => p.missing > 0 && p.s.gaps.length === 0);
    assert.deepEqual(
      silent.slice(0, 3).map((p) => ({ kind: p.s.kind, missing: p.missing })),
      [],
      `${silent.length} clients missed messages without a history_gap`,
    );
    await agent().call("close", { group });
  });
});
