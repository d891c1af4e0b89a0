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
 * 5. A HAProxy that refuses the switch (step 6) after green took sessions: the rollback keeps green in drain until
 *    it has stopped, so HAProxy cuts none of them.
 * 6. An old colour still running after --stop-timeout stays in drain, not maint (exit 3); promote again retires it.
 * 5 and 6 use long-polling-only Socket.IO clients: their requests follow HAProxy's cookie, which a server in maint
 * does not get, so they see at once when HAProxy stops sending them to the server that holds their session.
 * Clients are the SDK's (raw) and its Socket.IO wrapper: through the promote, the reload and the rollback each
 * receives every message published after it first subscribed exactly once, in order (history lives in Redis, so
 * green replays what blue delivered).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { io, type Socket } from "socket.io-client";
import { SocketIOSubscriptions } from "../../src/client/index.js";
import { requireTool } from "../../src/harness/tools.js";
import { request } from "../helpers/http.js";
import { type ClientStats, deliveryProblems, PublishStream, RawClient, SioClient } from "../helpers/load.js";
import { type RedisServer, startRedis } from "../helpers/redis-server.js";
import { ROOT, requireBuild, until } from "../helpers/server.js";
import {
  canConnect,
  descendants,
  freePorts,
  haproxyCommand,
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
const API_KEY = "promote-test-key";

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
  let lockFile = "";
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
    // Its own lock: another run of these tests on the machine must not refuse (or be refused by) this one.
    lockFile = path.join(tmp.dir, "promote.lock");
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
      // HAProxy forwards publishes (X-Forwarded-For): without a key the API refuses them.
      API_KEY: API_KEY,
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

  /**
   * Runs scripts/promote against the test's HAProxy and pm2, printing its steps into the test log; `args` come
   * after the defaults (so they override them).
   */
  function promote(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        path.join(ROOT, "scripts", "promote"),
        [
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
          // Last: a test's own flags win over the defaults above (a repeated --socket adds one).
          ...args,
        ],
        // The variable, not --lock-file: a promote that predates the lock ignores it.
        {
          env: { ...pm2.env, SWITCHBOARD_PROMOTE_LOCK: lockFile, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        },
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
      assert.ok(!existsSync(lockFile), "a failed promote removes its lock file");

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
    const stream = new PublishStream(frontend, CHANNEL, 50, { apiKey: API_KEY });
    try {
      const bluePid = (await pm2.list()).find((a) => a.name === "switchboard-blue")?.pid ?? 0;
      const bluePids = [bluePid, ...descendants(bluePid)];
      // The load runs before the switch: wait until the stream is under way.
      await until(() => stream.acked.length >= 5, 5000, "5 acknowledged publishes before promote", 50);

      const run = await promote(["green"]);
      t.diagnostic(run.out);
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /blue exited with code 0/);
      assert.ok(!existsSync(lockFile), "promote removes its lock file when done");
      // Retired in this order: drain (step 6), stopped by its own drain, and maint only once its port is closed.
      assert.match(
        run.out,
        /6\/9 HAProxy: green → ready, blue → drain\n.*7\/9 stopping blue.*\n.*blue exited with code 0; port \d+ closed\n.*8\/9 HAProxy: blue → maint/,
      );

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
    const stream = new PublishStream(frontend, CHANNEL, 50, { apiKey: API_KEY });
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
    const stream = new PublishStream(frontend, CHANNEL, 50, { apiKey: API_KEY });
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

  /** When `colour`'s primary logged "draining" (its drain began) after `since`, from its pm2 log. */
  function drainStarted(colour: "blue" | "green", since: number): number | undefined {
    const log = readFileSync(path.join(pm2.home, "logs", `switchboard-${colour}-out.log`), "utf8");
    const times = log
      .split("\n")
      .filter((line) => line.includes('"msg":"draining"') && line.includes('"signal"'))
      .map((line) => new Date((JSON.parse(line) as { time: string | number }).time).getTime())
      .filter((time) => time >= since);
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  /**
   * The disconnects of `clients` before `colour`'s own drain began (all of them if it has not begun): those are
   * HAProxy's doing. Once that drain has begun, a long-polling session may still end in a "transport error" rather
   * than a transport close: that is the draining server's part, not what this test is about.
   */
  function cutBefore(clients: PollingClient[], colour: "blue" | "green", since: number) {
    const drainAt = drainStarted(colour, since) ?? Number.POSITIVE_INFINITY;
    return clients
      .flatMap((c) => c.unexpected)
      .filter((u) => u.at < drainAt)
      .map((u) => `${u.reason} ${drainAt - u.at} ms before ${colour}'s drain`);
  }

  /** Socket.IO sessions on `colour`'s instance, from its admin /status. */
  async function sessionsOn(colour: "blue" | "green"): Promise<number> {
    const res = await request(
      `http://127.0.0.1:${colour === "blue" ? ports.blueAdmin : ports.greenAdmin}/status`,
    );
    return (JSON.parse(res.body) as { sessions: number }).sessions;
  }

  test("a HAProxy that refuses the switch (step 6): the rollback cuts none of the sessions green took meanwhile", async (t) => {
    // Two runtime sockets: the test's HAProxy, and the same one through a socket that refuses to drain blue
    // (after holding the command, so that green, already ready, takes new sessions).
    const refusing = await RefusingSocket.start(
      path.join(tmp.dir, "refusing.sock"),
      socket,
      "set server switchboard/blue state drain",
    );
    const stream = new PublishStream(frontend, CHANNEL, 50, { apiKey: API_KEY });
    const clients: PollingClient[] = [];
    const startedAt = Date.now();
    try {
      assert.equal((await servers()).get("green")?.admin, 1, "green starts in maint");
      const running = promote(["green", "--socket", refusing.path]);
      const ended = await Promise.race([refusing.holding.then(() => null), running]);
      assert.equal(ended, null, `promote ended before step 6: ${ended?.out}`);
      // Blue is still ready, green now ready too: leastconn sends these to green, which holds nobody yet.
      for (let i = 0; i < 20; i++) clients.push(new PollingClient(frontend, CHANNEL));
      await until(() => clients.every((c) => c.subscribed), 10_000, "polling clients subscribed", 50);
      // (Held for under 5 s: promote gives up on an answer after that.) Workers report their sessions every second.
      const onGreen = await until(() => sessionsOn("green"), 3000, "sessions on green", 100);
      t.diagnostic(`Socket.IO polling sessions on green while the switch is held: ${onGreen}`);
      refusing.release();
      const run = await running;
      t.diagnostic(run.out);

      // Every session green had moves by green's own drain, none by HAProxy before it.
      await until(() => clients.every((c) => c.subscribed), 20_000, "polling clients back", 100);
      assert.deepEqual(cutBefore(clients, "green", startedAt), [], "sessions cut before green's drain");
      assert.equal(run.code, 1, run.out);
      assert.match(run.out, /refused by the test/);
      assert.match(run.out, /rolled back: the previous colour keeps serving/);
      // The order: blue back first, green only to drain while it runs, maint once its port is closed.
      assert.match(
        run.out,
        /blue → ready\n.*green → drain \(until it has stopped\)\n(.*\n)*.*stopping green\n.*green exited with code 0; port \d+ closed\n(.*\n)*.*green → maint/,
      );
      const now = await servers();
      assert.deepEqual(now.get("blue"), { admin: 0, op: 2 }, "blue ready and UP");
      assert.equal(now.get("green")?.admin, 1, "green back in maint");
      assert.ok(!(await canConnect(ports.green)), "green was stopped");
      assert.ok(!existsSync(lockFile));
    } finally {
      await stream.stop();
      for (const c of clients) c.close();
      await refusing.close();
    }
  });

  test("an old colour still serving after --stop-timeout stays in drain, not maint: its sessions are not cut (exit 3)", async (t) => {
    // green is started through pm2 by a start command; the stop command stops nothing, so blue keeps running.
    const ecosystem = path.join(ROOT, "ecosystem.config.cjs");
    const commands = [
      "--manager",
      "command",
      "--start-cmd",
      `'${pm2.bin}' start '${ecosystem}' --only switchboard-{colour}`,
      "--stop-cmd",
      "true",
      "--stop-timeout",
      "2000",
    ];
    const stream = new PublishStream(frontend, CHANNEL, 50, { apiKey: API_KEY });
    const clients = Array.from({ length: 20 }, () => new PollingClient(frontend, CHANNEL));
    const startedAt = Date.now();
    try {
      assert.deepEqual((await servers()).get("blue"), { admin: 0, op: 2 }, "blue serves");
      await until(() => clients.every((c) => c.subscribed), 20_000, "polling clients subscribed", 100);

      const run = await promote(["green", ...commands]);
      t.diagnostic(run.out);
      // Blue still serves these sessions: HAProxy must keep sending their requests to it while traffic goes on.
      const mark = stream.acked.length;
      await until(
        () => stream.acked.length >= mark + 100,
        20_000,
        "100 more publishes after the promote",
        100,
      );
      assert.deepEqual(
        clients.flatMap((c) => c.unexpected),
        [],
        "sessions cut while their server still ran (before its drain)",
      );
      assert.equal(drainStarted("blue", startedAt), undefined, "blue was never asked to stop");
      assert.ok(
        clients.every((c) => c.connects === 1 && c.subscribed),
        "every session stayed where it was",
      );
      const now = await servers();
      assert.equal(now.get("blue")?.admin, 8, "blue left in drain (forced drain, no maint)");
      assert.equal(now.get("green")?.admin, 0, "green ready");
      assert.equal(run.code, 3, run.out);
      assert.match(run.out, /warning: blue stopped, but port \d+ still accepts connections after 2000 ms/);
      assert.match(run.out, /8\/9 skipped: blue stays in drain/);
      assert.match(run.out, /done, but not retired: green is active, blue still runs in drain/);
      assert.doesNotMatch(run.out, /blue → maint/);
      assert.match(
        readFileSync(stateFile, "utf8"),
        /^\d+ switchboard \d+ blue \S+ 2 8 /m,
        "state file: blue in drain",
      );
      assert.ok(!existsSync(lockFile));

      // Once blue has stopped (its drain moves its sessions), the same promote again retires it.
      const stop = await pm2.run(["stop", "switchboard-blue"]);
      assert.equal(stop.code, 0, stop.out);
      const again = await promote(["green"]);
      t.diagnostic(again.out);
      assert.equal(again.code, 0, again.out);
      assert.match(again.out, /green already serves on every HAProxy: no restart/);
      assert.match(again.out, /8\/9 HAProxy: blue → maint/);
      assert.equal((await servers()).get("blue")?.admin, 1, "blue in maint");
      await until(() => clients.every((c) => c.subscribed), 20_000, "polling clients moved to green", 100);
      assert.deepEqual(cutBefore(clients, "blue", startedAt), [], "sessions cut before blue's drain");
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

/**
 * A Socket.IO client that never upgrades from long-polling (a browser behind a proxy that blocks WebSockets):
 * every request of its session must reach the server holding it, by HAProxy's cookie, so it notices at once when
 * HAProxy sends them elsewhere. It subscribes to `channel` (the publish stream keeps its polls cycling).
 */
class PollingClient {
  connects = 0;
  subscribed = false;
  /**
   * Disconnects that were not a server's transport close, and when: e.g. a poll that HAProxy sent to the other
   * colour (which does not know the session). A draining server causes some too (see cutBefore).
   */
  readonly unexpected: { reason: string; at: number }[] = [];
  readonly #socket: Socket;
  readonly #subscriptions: SocketIOSubscriptions;

  constructor(url: string, channel: string) {
    this.#socket = io(url, {
      transports: ["polling"],
      withCredentials: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 1000,
      timeout: 5000,
    });
    this.#subscriptions = new SocketIOSubscriptions(this.#socket);
    this.#subscriptions.subscribe(channel, {
      onMessage: () => {},
      onSubscribed: () => {
        this.subscribed = true;
      },
    });
    this.#socket.on("connect", () => {
      this.connects += 1;
    });
    this.#socket.on("disconnect", (reason) => {
      this.subscribed = false;
      if (reason !== "transport close" && reason !== "io client disconnect")
        this.unexpected.push({ reason, at: Date.now() });
    });
  }

  close(): void {
    this.#subscriptions.close();
    this.#socket.disconnect();
  }
}

/**
 * A runtime API socket in front of the test's HAProxy: it passes every command on, except `refused`, which it holds
 * until release() and then answers with an error, as a HAProxy refusing that command would.
 */
class RefusingSocket {
  readonly holding: Promise<void>;
  #arrived = () => {};
  #release = () => {};
  readonly #released = new Promise<void>((resolve) => {
    this.#release = resolve;
  });

  private constructor(
    readonly path: string,
    readonly server: net.Server,
  ) {
    this.holding = new Promise((resolve) => {
      this.#arrived = resolve;
    });
  }

  static async start(file: string, upstream: string, refused: string): Promise<RefusingSocket> {
    const server = net.createServer({ allowHalfOpen: true });
    const proxy = new RefusingSocket(file, server);
    server.on("connection", (conn) => {
      let command = "";
      conn.setEncoding("utf8");
      conn.on("data", (chunk: string) => {
        command += chunk;
      });
      conn.on("error", () => {});
      conn.on("end", async () => {
        if (command.trim() === refused) {
          proxy.#arrived();
          await proxy.#released;
          conn.end("Permission denied (refused by the test's runtime socket).\n");
          return;
        }
        conn.end(await haproxyCommand(upstream, command.trim()).catch((err: Error) => `${err.message}\n`));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(file, resolve);
    });
    return proxy;
  }

  release(): void {
    this.#release();
  }

  close(): Promise<void> {
    this.#release();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
