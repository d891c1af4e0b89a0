/**
 * End to end, with the real tools: a real haproxy running the shipped haproxy.cfg (free ports, temp paths),
 * blue and green Switchboard instances under pm2 sharing a real redis-server, a few hundred raw and
 * Socket.IO clients connected through HAProxy and a steady publish stream.
 *
 * 1. `promote green` where green's release never becomes ready: exit 1, blue keeps serving, untouched.
 * 2. `promote green`: zero failed connection attempts, every client reconnects at most once and ends on
 *    green, blue drains and exits 0, HAProxy's saved state names green.
 * 3. SIGHUP (what `systemctl reload` sends) on green under the same load: zero failed connection attempts.
 * 4. `promote --rollback` brings blue back with the same checks.
 * Clients are the SDK's (raw) and its Socket.IO wrapper: through the promote, the reload and the rollback each
 * receives every message published after it first subscribed exactly once, in order (history lives in Redis, so
 * green replays what blue delivered).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { requireTool } from "../../src/harness/tools.js";
import { request } from "../helpers/http.js";
import { type ClientStats, deliveryProblems, PublishStream, RawClient, SioClient } from "../helpers/load.js";
import { type RedisServer, startRedis } from "../helpers/redis-server.js";
import { ROOT, requireBuild, until } from "../helpers/server.js";
import {
  canConnect,
  descendants,
  freePorts,
  haproxyServers,
  haproxyTestConfig,
  isAlive,
  Pm2,
  type Proc,
  startHaproxy,
  tempDir,
} from "./helpers.js";

const RAW_CLIENTS = 200;
const SIO_CLIENTS = 100;
const DRAIN_TIMEOUT_MS = 6000;
const CHANNEL = "deploy-feed";

/** A release whose server listens but never becomes ready (what a broken deploy looks like). */
const NEVER_READY_CLI = `import http from "node:http";
const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/health" ? 200 : 503, { "content-type": "application/json" });
  res.end(req.url === "/health" ? '{"status":"ok"}' : '{"status":"starting"}');
});
server.listen(Number(process.env.PORT), "127.0.0.1");
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(0));
`;

interface Run {
  code: number | null;
  out: string;
}

describe("scripts/promote with haproxy, pm2, redis and a few hundred clients", { timeout: 240_000 }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let haproxy: Proc | undefined;
  let redis: RedisServer | undefined;
  let pm2: Pm2;
  let socket = "";
  let stateFile = "";
  let frontend = "";
  const ports = { blue: 0, green: 0, blueAdmin: 0, greenAdmin: 0 };
  const brokenDir = { path: "" };

  before(async () => {
    requireBuild();
    requireTool("haproxy");
    requireTool("redis-server");
    requireTool("redis-cli", "redis-tools");
    tmp = tempDir("promote");
    const [frontendPort, statsPort, blue, green, blueAdmin, greenAdmin] = (await freePorts(6)) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    Object.assign(ports, { blue, green, blueAdmin, greenAdmin });
    socket = path.join(tmp.dir, "admin.sock");
    stateFile = path.join(tmp.dir, "server-state");
    frontend = `http://127.0.0.1:${frontendPort}`;
    writeFileSync(stateFile, "1\n");
    const cfgFile = path.join(tmp.dir, "haproxy.cfg");
    const shipped = readFileSync(path.join(ROOT, "haproxy", "haproxy.cfg"), "utf8");
    writeFileSync(
      cfgFile,
      haproxyTestConfig(shipped, {
        dir: tmp.dir,
        frontendPort,
        statsPort,
        socket,
        stateFile,
        bluePort: blue,
        greenPort: green,
      }),
    );

    brokenDir.path = path.join(tmp.dir, "broken-release");
    mkdirSync(path.join(brokenDir.path, "dist"), { recursive: true });
    writeFileSync(path.join(brokenDir.path, "package.json"), '{"type":"module"}\n');
    writeFileSync(path.join(brokenDir.path, "dist", "cli.js"), NEVER_READY_CLI);

    redis = await startRedis();
    haproxy = await startHaproxy(cfgFile, socket, frontendPort);
    pm2 = new Pm2(path.join(tmp.dir, "pm2"), {
      SWITCHBOARD_BLUE_PORT: String(blue),
      SWITCHBOARD_GREEN_PORT: String(green),
      SWITCHBOARD_BLUE_ADMIN_PORT: String(blueAdmin),
      SWITCHBOARD_GREEN_ADMIN_PORT: String(greenAdmin),
      // Bounds how long `pm2 start` waits for a release that never sends 'ready'.
      SWITCHBOARD_LISTEN_TIMEOUT_MS: "5000",
      DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
      REDIS_URL: redis.url,
      WORKERS: "2",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
    });
    const start = await pm2.run([
      "start",
      path.join(ROOT, "ecosystem.config.cjs"),
      "--only",
      "switchboard-blue",
    ]);
    assert.equal(start.code, 0, start.out);
    await until(
      async () => (await haproxyServers(socket, "switchboard")).get("blue")?.op === 2,
      15_000,
      "HAProxy sees blue UP",
      200,
    );
  });

  after(async () => {
    const daemon = pm2?.daemonPid() ?? 0;
    const apps = pm2 ? await pm2.list().catch(() => []) : [];
    const pids = apps.flatMap((a) => [a.pid, ...descendants(a.pid)]).filter(Boolean);
    await pm2?.kill();
    for (const pid of [daemon, ...pids]) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    await haproxy?.stop("SIGTERM");
    await redis?.destroy();
    tmp?.remove();
  });

  /** Runs scripts/promote against the test's HAProxy and pm2, printing its steps into the test log. */
  function promote(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        path.join(ROOT, "scripts", "promote"),
        [
          ...args,
          "--manager",
          "pm2",
          "--blue-port",
          String(ports.blue),
          "--green-port",
          String(ports.green),
          "--haproxy-url",
          frontend,
          "--socket",
          socket,
          "--state-file",
          stateFile,
          "--ready-timeout",
          "8000",
          "--stop-timeout",
          String(DRAIN_TIMEOUT_MS + 10_000),
        ],
        { env: { ...pm2.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c;
      });
      child.stderr.on("data", (c: Buffer) => {
        out += c;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
      child.once("error", reject);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  }

  const servers = () => haproxyServers(socket, "switchboard");

  /** Connects the load; resolves once every client is subscribed. */
  async function connectLoad() {
    const raw = Array.from(
      { length: RAW_CLIENTS },
      () => new RawClient(`${frontend.replace("http", "ws")}/ws`, CHANNEL),
    );
    const sio = Array.from({ length: SIO_CLIENTS }, () => new SioClient(frontend, CHANNEL));
    const clients = [...raw, ...sio];
    await until(() => clients.every((c) => c.stats.subscribed), 30_000, "every client subscribed", 100);
    return clients;
  }

  function summary(stats: ClientStats[]) {
    const failed = stats.filter((s) => s.failedAttempts > 0);
    return {
      failedAttempts: stats.reduce((n, s) => n + s.failedAttempts, 0),
      unexpectedCloses: stats.reduce((n, s) => n + s.unexpectedCloses, 0),
      reconnectsMax: Math.max(...stats.map((s) => s.connects - 1)),
      reconnected: stats.filter((s) => s.connects > 1).length,
      sampleErrors: failed.slice(0, 3).map((s) => `${s.kind}: ${s.errors.join("; ")}`),
    };
  }

  /**
   * Zero loss, asserted: every client got every message published after it first subscribed, once, in order,
   * in the one epoch Redis keeps, and was never told of a gap.
   */
  function assertNothingLost(
    t: { diagnostic(m: string): void },
    stats: ClientStats[],
    stream: PublishStream,
  ) {
    const problems = stats.map((s) => ({
      kind: s.kind,
      ...deliveryProblems(s, stream.acked),
      gaps: s.gaps.length,
    }));
    const total = (k: "missing" | "duplicates" | "outOfOrder" | "gaps") =>
      problems.reduce((n, p) => n + p[k], 0);
    const recovered = stats.filter((s) => s.recovered > 0).length;
    t.diagnostic(
      `clients=${stats.length} (raw ${stats.filter((s) => s.kind === "raw").length}, socket.io ` +
        `${stats.filter((s) => s.kind === "socket.io").length}) publishes=${stream.acked.length} ` +
        `missing=${total("missing")} duplicates=${total("duplicates")} outOfOrder=${total("outOfOrder")} ` +
        `gaps=${total("gaps")} resumed-with-recovery=${recovered}`,
    );
    const bad = problems.filter((p) => p.missing + p.duplicates + p.outOfOrder + p.gaps + p.foreignEpoch > 0);
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} clients lost, repeated or reordered messages`);
  }

  test("a green that never becomes ready: promote exits 1, restores HAProxy, blue keeps serving", async (t) => {
    const before = await servers();
    const clients = [
      ...Array.from({ length: 20 }, () => new RawClient(`${frontend.replace("http", "ws")}/ws`, CHANNEL)),
      ...Array.from({ length: 10 }, () => new SioClient(frontend, CHANNEL)),
    ];
    try {
      await until(() => clients.every((c) => c.stats.subscribed), 20_000, "clients subscribed", 100);
      const run = await promote(["green"], { SWITCHBOARD_GREEN_DIR: brokenDir.path });
      t.diagnostic(run.out);
      assert.equal(run.code, 1, "promote must fail");
      assert.match(run.out, /not ready within/);
      assert.match(run.out, /rolled back: the previous colour keeps serving/);

      const now = await servers();
      assert.deepEqual(now.get("blue"), before.get("blue"), "blue's HAProxy state is unchanged");
      assert.equal(now.get("green")?.admin, before.get("green")?.admin, "green's admin state is restored");
      assert.ok(!(await canConnect(ports.green)), "the broken green was stopped");
      const apps = await pm2.list();
      assert.equal(apps.find((a) => a.name === "switchboard-blue")?.status, "online");
      assert.notEqual(apps.find((a) => a.name === "switchboard-green")?.status, "online");
      const health = await request(`${frontend}/health`);
      assert.equal(health.status, 200);
      assert.equal(health.headers["x-switchboard-server"], "blue");

      const s = summary(clients.map((c) => c.stats));
      assert.equal(s.failedAttempts, 0, JSON.stringify(s));
      assert.equal(s.reconnectsMax, 0, "nobody was disconnected by the failed promote");
    } finally {
      for (const c of clients) c.close();
    }
  });

  test("promote green under load: no failed connection, at most one reconnect each, all end on green, blue exits 0", async (t) => {
    const clients = await connectLoad();
    const stream = new PublishStream(frontend, CHANNEL, 50);
    try {
      const bluePid = (await pm2.list()).find((a) => a.name === "switchboard-blue")?.pid ?? 0;
      const bluePids = [bluePid, ...descendants(bluePid)];
      // The load runs before the switch: wait until the stream is under way.
      await until(() => stream.acked.length >= 5, 5000, "5 acknowledged publishes before promote", 50);

      const run = await promote(["green"]);
      t.diagnostic(run.out);
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /blue exited with code 0/);

      // blue is gone: its primary and workers have exited and its port is closed.
      assert.ok(
        bluePids.every((p) => !isAlive(p)),
        "blue's processes exited",
      );
      assert.ok(!(await canConnect(ports.blue)));
      const pm2Log = readFileSync(path.join(pm2.home, "pm2.log"), "utf8");
      assert.match(pm2Log, /App \[switchboard-blue:\d+\] exited with code \[0\] via signal \[SIGINT\]/);

      // Every client is back, subscribed, and gets a message published now: only green can deliver it.
      const stats = clients.map((c) => c.stats);
      await until(() => stats.every((s) => s.subscribed), 20_000, "every client re-subscribed", 100);
      await finish(stream, stats);

      const s = summary(stats);
      t.diagnostic(
        `clients=${stats.length} reconnected=${s.reconnected} failedAttempts=${s.failedAttempts} ` +
          `publishes=${stream.acked.length} publishFailures=${stream.failures.length}`,
      );
      assertNothingLost(t, stats, stream);
      assert.equal(s.failedAttempts, 0, `failed connection attempts: ${JSON.stringify(s)}`);
      assert.equal(
        s.unexpectedCloses,
        0,
        `closed without reconnect frame / transport close: ${JSON.stringify(s)}`,
      );
      assert.ok(s.reconnectsMax <= 1, `a client reconnected ${s.reconnectsMax} times`);
      assert.deepEqual(stream.failures, [], "every publish through HAProxy succeeded");

      const now = await servers();
      assert.equal(now.get("green")?.admin, 0, "green ready");
      assert.equal(now.get("blue")?.admin, 1, "blue in maintenance");
      const saved = readFileSync(stateFile, "utf8");
      assert.match(saved, /^\d+ switchboard \d+ blue \S+ \d+ 1 /m, "state file: blue in maint");
      assert.match(saved, /^\d+ switchboard \d+ green \S+ 2 0 /m, "state file: green up and ready");
    } finally {
      await stream.stop();
      for (const c of clients) c.close();
    }
  });

  test("SIGHUP rolling reload of green under load: no failed connection attempt", async (t) => {
    const clients = await connectLoad();
    const stream = new PublishStream(frontend, CHANNEL, 50);
    // New connections keep arriving during the reload: each must succeed.
    const arrivals: RawClient[] = [];
    const arrivalTimer = setInterval(() => {
      if (arrivals.length < 150)
        arrivals.push(new RawClient(`${frontend.replace("http", "ws")}/ws`, CHANNEL));
    }, 50);
    try {
      const green = (await pm2.list()).find((a) => a.name === "switchboard-green");
      assert.equal(green?.status, "online");
      const workersBefore = descendants(green?.pid ?? 0);
      const hup = await pm2.run(["sendSignal", "SIGHUP", "switchboard-green"]);
      assert.equal(hup.code, 0, hup.out);
      const outLog = path.join(pm2.home, "logs", "switchboard-green-out.log");
      await until(
        () => readFileSync(outLog, "utf8").includes('"msg":"rolling reload done"'),
        60_000,
        "rolling reload done",
        250,
      );
      const workersAfter = descendants(green?.pid ?? 0);
      assert.ok(
        workersBefore.every((p) => !workersAfter.includes(p)),
        "every worker was replaced",
      );
      clearInterval(arrivalTimer);

      const stats = [...clients, ...arrivals].map((c) => c.stats);
      await until(() => stats.every((s) => s.subscribed), 20_000, "every client subscribed", 100);
      await finish(stream, stats);
      const s = summary(stats);
      // Old workers take no new connections once the first new one is ready, so each client moves once.
      t.diagnostic(
        `clients=${stats.length} reconnected=${s.reconnected} reconnectsMax=${s.reconnectsMax} failedAttempts=${s.failedAttempts}`,
      );
      assertNothingLost(t, stats, stream);
      assert.equal(s.failedAttempts, 0, `failed connection attempts: ${JSON.stringify(s)}`);
      assert.equal(s.unexpectedCloses, 0, JSON.stringify(s));
      assert.deepEqual(stream.failures, []);
    } finally {
      clearInterval(arrivalTimer);
      await stream.stop();
      for (const c of [...clients, ...arrivals]) c.close();
    }
  });

  test("promote --rollback brings blue back the same way", async (t) => {
    const clients = [
      ...Array.from({ length: 50 }, () => new RawClient(`${frontend.replace("http", "ws")}/ws`, CHANNEL)),
      ...Array.from({ length: 20 }, () => new SioClient(frontend, CHANNEL)),
    ];
    const stream = new PublishStream(frontend, CHANNEL, 50);
    try {
      await until(() => clients.every((c) => c.stats.subscribed), 20_000, "clients subscribed", 100);
      const run = await promote(["--rollback"]);
      t.diagnostic(run.out);
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /rollback: green is active, promoting blue/);
      assert.match(run.out, /green exited with code 0/);
      const now = await servers();
      assert.deepEqual(now.get("blue"), { admin: 0, op: 2 }, "blue ready and UP");
      assert.equal(now.get("green")?.admin, 1, "green in maintenance");
      const stats = clients.map((c) => c.stats);
      await until(() => stats.every((s) => s.subscribed), 20_000, "clients back", 100);
      await finish(stream, stats);
      const s = summary(stats);
      assert.equal(s.failedAttempts, 0, JSON.stringify(s));
      assert.ok(s.reconnectsMax <= 1);
      assertNothingLost(t, stats, stream);
      assert.deepEqual(stream.failures, []);
      assert.equal((await request(`${frontend}/health`)).headers["x-switchboard-server"], "blue");
    } finally {
      await stream.stop();
      for (const c of clients) c.close();
    }
  });
});

/** Stops the stream, then publishes one last message and waits until every client has it (and so all before it). */
async function finish(stream: PublishStream, stats: ClientStats[]): Promise<void> {
  await stream.stop();
  const finalN = 1_000_000;
  await stream.publishOne(finalN);
  await until(
    () => stats.every((s) => s.received.some((r) => r.n === finalN)),
    15_000,
    "the final message on every client",
    100,
  );
}
