/**
 * ecosystem.config.cjs under the real pm2 (node_modules, temp PM2_HOME, free ports): the app comes up
 * `online` only once the primary said `ready`, `pm2 stop` drains (a raw client gets `reconnect`, the
 * primary exits 0), and nothing is left running afterwards.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import WebSocket from "ws";
import { request } from "../helpers/http.js";
import { ROOT, requireBuild, until } from "../helpers/server.js";
import { descendants, freePorts, isAlive, Pm2, tempDir } from "./helpers.js";

const ECOSYSTEM = path.join(ROOT, "ecosystem.config.cjs");

interface App {
  name: string;
  script: string;
  args: string;
  exec_mode: string;
  instances: number;
  wait_ready: boolean;
  listen_timeout: number;
  kill_timeout: number;
  treekill: boolean;
  stop_exit_codes: number[];
  env: Record<string, string>;
}

/** The process file as pm2 would see it with this environment (evaluated in a fresh node). */
function loadEcosystem(env: Record<string, string>): App[] {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("SWITCHBOARD_") && k !== "DRAIN_TIMEOUT_MS"),
  );
  const out = execFileSync(
    process.execPath,
    ["-e", `process.stdout.write(JSON.stringify(require(${JSON.stringify(ECOSYSTEM)}).apps))`],
    {
      env: { ...clean, ...env },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return JSON.parse(out) as App[];
}

test("ecosystem.config.cjs: fork-mode primaries, wait_ready, kill_timeout above the drain, env overrides", () => {
  const apps = loadEcosystem({});
  const byName = new Map(apps.map((a) => [a.name, a]));
  const expected = {
    switchboard: ["8080", "9090"],
    "switchboard-blue": ["8001", "9001"],
    "switchboard-green": ["8002", "9002"],
  };
  assert.deepEqual([...byName.keys()].sort(), Object.keys(expected).sort());
  for (const [name, [port, adminPort]] of Object.entries(expected)) {
    const app = byName.get(name);
    assert.ok(app);
    assert.equal(app.exec_mode, "fork", `${name}: the primary clusters by itself`);
    assert.equal(app.instances, 1);
    assert.equal(app.script, path.join(ROOT, "dist", "cli.js"));
    assert.equal(app.args, "start");
    assert.equal(app.wait_ready, true);
    assert.ok(app.listen_timeout >= 10_000);
    assert.equal(app.treekill, false);
    assert.deepEqual(app.stop_exit_codes, [2]);
    assert.ok(app.kill_timeout > Number(app.env.DRAIN_TIMEOUT_MS), `${name}: kill_timeout > drain`);
    assert.equal(app.env.PORT, port);
    assert.equal(app.env.ADMIN_PORT, adminPort);
  }
  assert.equal(byName.get("switchboard-blue")?.env.INSTANCE, "blue");
  assert.equal(byName.get("switchboard-green")?.env.INSTANCE, "green");

  const custom = loadEcosystem({
    SWITCHBOARD_GREEN_PORT: "18002",
    SWITCHBOARD_GREEN_DIR: "/srv/r2",
    DRAIN_TIMEOUT_MS: "60000",
  });
  const green = custom.find((a) => a.name === "switchboard-green");
  assert.equal(green?.env.PORT, "18002");
  assert.equal(green?.script, "/srv/r2/dist/cli.js");
  assert.equal(green?.env.DRAIN_TIMEOUT_MS, "60000");
  assert.ok((green?.kill_timeout ?? 0) > 60_000);
  assert.throws(
    () => loadEcosystem({ SWITCHBOARD_BLUE_PORT: "eighty" }),
    /SWITCHBOARD_BLUE_PORT="eighty": expected a non-negative integer/,
  );
});

test("pm2: switchboard-blue is online only after ready, pm2 stop drains it, nothing is left", {
  timeout: 100_000,
}, async () => {
  requireBuild();
  const tmp = tempDir("pm2");
  const [port, adminPort] = await freePorts(2);
  const pm2 = new Pm2(path.join(tmp.dir, "pm2"), {
    SWITCHBOARD_BLUE_PORT: String(port),
    SWITCHBOARD_BLUE_ADMIN_PORT: String(adminPort),
    DRAIN_TIMEOUT_MS: "4000",
    WORKERS: "2",
    LOG_LEVEL: "info",
  });
  const base = `http://127.0.0.1:${port}`;
  let pids: number[] = [];
  try {
    const started = Date.now();
    const start = await pm2.run(["start", ECOSYSTEM, "--only", "switchboard-blue"]);
    const tookMs = Date.now() - started;
    assert.equal(start.code, 0, start.out);
    // wait_ready: `pm2 start` returned because the primary sent 'ready', well before listen_timeout
    // (60 s), and at that moment every worker already answers: /ready is 200 without any waiting.
    assert.ok(tookMs < 30_000, `pm2 start took ${tookMs} ms`);
    const ready = await request(`${base}/ready`);
    assert.equal(ready.status, 200, `/ready right after pm2 start: ${ready.status} ${ready.body}`);
    const [app] = await pm2.list();
    assert.equal(app?.name, "switchboard-blue");
    assert.equal(app?.status, "online");
    const outLog = readFileSync(path.join(pm2.home, "logs", "switchboard-blue-out.log"), "utf8");
    const readyLine = outLog.split("\n").find((l) => l.includes('"msg":"ready"'));
    assert.ok(readyLine, `no ready line in the pm2 log:\n${outLog}`);
    assert.equal(JSON.parse(readyLine).port, port);

    pids = [app?.pid ?? 0, ...descendants(app?.pid ?? 0)];
    assert.ok(pids.length >= 3, `primary + 2 workers, got pids ${pids}`);

    // A raw client: connected and subscribed, then pm2 stop → `reconnect` frame, close 1012.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const frames: { type: string; delayMs?: number }[] = [];
    ws.on("message", (d) => frames.push(JSON.parse(String(d))));
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ type: "subscribe", channel: "news", id: 1 }));
    await until(() => frames.some((f) => f.type === "ack"), 5000, "subscribe ack");

    const stop = await pm2.run(["stop", "switchboard-blue"]);
    assert.equal(stop.code, 0, stop.out);
    const closeCode = await closed;
    const reconnect = frames.find((f) => f.type === "reconnect");
    assert.ok(reconnect, `no reconnect frame; got ${JSON.stringify(frames)}`);
    assert.equal(typeof reconnect.delayMs, "number");
    assert.equal(closeCode, 1012);

    const [after] = await pm2.list();
    assert.equal(after?.status, "stopped");
    assert.equal(after?.exitCode, 0, "the primary exited 0 after its drain (SIGINT from pm2, not SIGKILL)");
    await until(() => pids.every((p) => !isAlive(p)), 5000, "primary and workers gone");
  } finally {
    const daemon = pm2.daemonPid();
    await pm2.kill();
    await until(() => !isAlive(daemon), 10_000, "pm2 daemon gone").catch(() => {
      if (isAlive(daemon)) process.kill(daemon, "SIGKILL");
    });
    for (const p of pids) if (isAlive(p)) process.kill(p, "SIGKILL");
    tmp.remove();
  }
  for (const p of pids) assert.ok(!isAlive(p), `pid ${p} left running`);
});
