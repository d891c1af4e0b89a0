/**
 * The shipped HAProxy configs: `haproxy -c` accepts them without a warning, and a real haproxy running the
 * shipped haproxy.cfg (ports and paths rewritten) does what scripts/promote relies on: /ready health checks,
 * admin states, cookie pinning for the smoke test and Socket.IO sessions, and a state file that survives a
 * restart. The backends here are plain HTTP servers; the real server is exercised in promote.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { requireTool } from "../../src/harness/tools.js";
import { request } from "../helpers/http.js";
import { ROOT, until } from "../helpers/server.js";
import {
  freePorts,
  haproxyCommand,
  haproxyServers,
  haproxyTestConfig,
  type Proc,
  replaceOnce,
  startHaproxy,
  tempDir,
} from "./helpers.js";

const HAPROXY_DIR = path.join(ROOT, "haproxy");
const shippedConfigs = readdirSync(HAPROXY_DIR).filter((f) => f.endsWith(".cfg"));

/** "1h" / "30s" / "500ms" / "5000" (ms) → milliseconds. */
function haproxyTime(value: string): number {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(value);
  assert.ok(m, `not a HAProxy time: ${value}`);
  const unit = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? "ms"] ?? 1;
  return Number(m[1]) * unit;
}

function directive(cfg: string, pattern: RegExp): RegExpExecArray {
  const m = pattern.exec(cfg);
  assert.ok(m, `missing ${pattern}`);
  return m;
}

describe("shipped HAProxy configs", () => {
  test("haproxy -c accepts every shipped config with zero warnings", () => {
    const haproxy = requireTool("haproxy");
    assert.ok(
      shippedConfigs.length >= 2,
      `expected haproxy.cfg and a multi-host example, found ${shippedConfigs}`,
    );
    const tmp = tempDir("haproxy-check");
    try {
      // The only rewrite: the state file path, so haproxy can open an (empty) state file here instead of
      // warning that /var/lib/haproxy/server-state does not exist yet on this machine.
      const stateFile = path.join(tmp.dir, "server-state");
      writeFileSync(stateFile, "1\n");
      for (const name of shippedConfigs) {
        const shipped = readFileSync(path.join(HAPROXY_DIR, name), "utf8");
        const copy = path.join(tmp.dir, name);
        writeFileSync(
          copy,
          replaceOnce(
            shipped,
            "server-state-file /var/lib/haproxy/server-state",
            `server-state-file ${stateFile}`,
          ),
        );
        const res = spawnSync(haproxy, ["-c", "-dW", "-f", copy], { encoding: "utf8" });
        const problems = `${res.stdout}${res.stderr}`.split("\n").filter((l) => /WARNING|ALERT/.test(l));
        assert.equal(res.status, 0, `${name}: haproxy -c failed\n${res.stdout}${res.stderr}`);
        assert.deepEqual(problems, [], `${name}: warnings`);
      }
    } finally {
      tmp.remove();
    }
  });

  for (const name of shippedConfigs) {
    test(`${name} has the checks, timeouts, stickiness and runtime API issue 6 asks for`, () => {
      const cfg = readFileSync(path.join(HAPROXY_DIR, name), "utf8");
      assert.match(cfg, /^\s*bind :80$/m);
      assert.match(cfg, /^\s*#\s*bind :443 ssl crt \S+/m, "a commented TLS example");
      assert.match(cfg, /^\s*option httpchk GET \/ready$/m);
      assert.match(cfg, /^\s*http-check expect status 200$/m);
      // The server pings every 25 s; an idle but healthy WebSocket must never hit the tunnel timeout.
      const tunnel = haproxyTime(directive(cfg, /^\s*timeout tunnel (\S+)$/m)[1] ?? "");
      assert.ok(tunnel >= 2 * 25_000, `timeout tunnel ${tunnel} ms is not above the 25 s ping window`);
      assert.match(cfg, /^\s*timeout client-fin \S+$/m);
      assert.match(cfg, /^\s*timeout server-fin \S+$/m);
      assert.match(cfg, /^\s*cookie SERVERID insert indirect nocache/m);
      assert.match(cfg, /^\s*stats socket \S+ .*level admin/m);
      assert.match(cfg, /^\s*server-state-file \S+$/m);
      assert.match(cfg, /^\s*load-server-state-from-file global$/m);
      assert.match(cfg, /^\s*stats enable$/m);
      assert.match(cfg, /weight 100/);
      const servers = [...cfg.matchAll(/^\s*server (\S+) \S+ (.*)$/gm)];
      assert.ok(servers.length >= 2);
      for (const [, server, rest] of servers) {
        assert.match(rest ?? "", /\bcheck\b/, `${server} is health-checked`);
        assert.match(
          rest ?? "",
          new RegExp(`\\bcookie ${server}\\b`),
          `${server}'s cookie value is its name`,
        );
      }
      const colours = servers.map(([, s]) => (s ?? "").replace(/^.*-/, ""));
      assert.ok(colours.includes("blue") && colours.includes("green"), "blue and green servers");
    });
  }
});

describe("haproxy.cfg at run time (real haproxy, stub backends)", () => {
  let tmp: ReturnType<typeof tempDir>;
  let haproxy: Proc | undefined;
  let cfgFile = "";
  let paths: Parameters<typeof haproxyTestConfig>[1];
  // green's /ready answers 503 until the smoke-test step: like a colour that is not started yet.
  const ready = { blue: true, green: false };
  const backends: http.Server[] = [];

  before(async () => {
    requireTool("haproxy");
    tmp = tempDir("haproxy-run");
    const [frontendPort, statsPort, bluePort, greenPort] = await freePorts(4);
    paths = {
      dir: tmp.dir,
      frontendPort: frontendPort ?? 0,
      statsPort: statsPort ?? 0,
      socket: path.join(tmp.dir, "admin.sock"),
      stateFile: path.join(tmp.dir, "server-state"),
      bluePort: bluePort ?? 0,
      greenPort: greenPort ?? 0,
    };
    for (const colour of ["blue", "green"] as const) {
      const server = http.createServer((req, res) => {
        if (req.url === "/ready") res.writeHead(ready[colour] ? 200 : 503);
        else res.writeHead(200, { "x-cookie": req.headers.cookie ?? "" });
        res.end(colour);
      });
      await new Promise<void>((resolve) =>
        server.listen(colour === "blue" ? paths.bluePort : paths.greenPort, "127.0.0.1", resolve),
      );
      backends.push(server);
    }
    cfgFile = path.join(tmp.dir, "haproxy.cfg");
    writeFileSync(
      cfgFile,
      haproxyTestConfig(readFileSync(path.join(HAPROXY_DIR, "haproxy.cfg"), "utf8"), paths),
    );
    writeFileSync(paths.stateFile, "1\n"); // an empty state file: version line only
    haproxy = await startHaproxy(cfgFile, paths.socket, paths.frontendPort);
  });

  after(async () => {
    await haproxy?.stop("SIGTERM");
    for (const s of backends) {
      (s as http.Server & { closeAllConnections(): void }).closeAllConnections();
      await new Promise((resolve) => (s as net.Server).close(resolve));
    }
    tmp?.remove();
  });

  const url = (p: string) => `http://127.0.0.1:${paths.frontendPort}${p}`;
  const servedBy = async (p: string, headers: Record<string, string> = {}) => {
    const res = await request(url(p), { headers });
    assert.equal(res.status, 200, `GET ${p}: ${res.status} ${res.body}`);
    assert.equal(
      res.headers["x-switchboard-server"],
      res.body,
      "X-Switchboard-Server names the server that answered",
    );
    return res.body;
  };
  const state = async (server: string) => (await haproxyServers(paths.socket, "switchboard")).get(server);
  const waitOp = (server: string, op: number) =>
    until(async () => (await state(server))?.op === op, 10_000, `${server} op state ${op}`, 200);
  const set = async (server: string, verb: string) =>
    assert.equal(
      (await haproxyCommand(paths.socket, `set server switchboard/${server} state ${verb}`)).trim(),
      "",
    );

  test("while green is not ready, every request goes to blue, with the persistence cookie inserted", async () => {
    await waitOp("blue", 2);
    await waitOp("green", 0);
    for (let i = 0; i < 10; i++) assert.equal(await servedBy("/health"), "blue");
    const res = await request(url("/health"));
    assert.match(String(res.headers["set-cookie"]), /^SERVERID=blue;/);
  });

  test("a draining, UP green gets only pinned requests (the promote smoke test)", async () => {
    await set("green", "drain");
    ready.green = true;
    await waitOp("green", 2);
    const pin = { cookie: "SERVERID=green", "x-switchboard-pin": "1" };
    for (let i = 0; i < 5; i++) {
      assert.equal(await servedBy("/ready", pin), "green");
      assert.equal(await servedBy("/health"), "blue");
      // The cookie alone does not pin a request outside a Socket.IO session; it is re-issued.
      const res = await request(url("/ws"), { headers: { cookie: "app=1; SERVERID=green; other=2" } });
      assert.equal(res.body, "blue");
      assert.match(String(res.headers["set-cookie"]), /^SERVERID=blue;/);
      assert.equal(res.headers["x-cookie"], "app=1; other=2", "the application's own cookies pass untouched");
    }
  });

  test("after the switch, Socket.IO sessions stay on the draining colour and everything new goes to green", async () => {
    await set("green", "ready");
    await set("blue", "drain");
    const session = "/socket.io/?EIO=4&transport=polling&sid=abc";
    const fresh = "/socket.io/?EIO=4&transport=polling";
    for (let i = 0; i < 5; i++) {
      assert.equal(await servedBy(session, { cookie: "SERVERID=blue" }), "blue");
      assert.equal(await servedBy(fresh, { cookie: "SERVERID=blue" }), "green");
      assert.equal(await servedBy("/ws", { cookie: "SERVERID=blue" }), "green");
      assert.equal(await servedBy("/health"), "green");
    }
  });

  test("a server whose /ready answers 503 is taken out by the health check", async () => {
    await set("blue", "ready");
    await waitOp("blue", 2);
    ready.green = false;
    await waitOp("green", 0);
    for (let i = 0; i < 5; i++) assert.equal(await servedBy("/health"), "blue");
    ready.green = true;
    await waitOp("green", 2);
  });

  test("the state saved by promote --save-state survives a restart of haproxy", async () => {
    await set("green", "ready");
    await set("blue", "maint");
    const save = spawnSync(
      path.join(ROOT, "scripts", "promote"),
      ["--save-state", "--socket", paths.socket, "--state-file", paths.stateFile],
      { encoding: "utf8" },
    );
    assert.equal(save.status, 0, `${save.stdout}${save.stderr}`);
    assert.match(readFileSync(paths.stateFile, "utf8"), /switchboard \d+ green /);

    await haproxy?.stop("SIGTERM");
    haproxy = await startHaproxy(cfgFile, paths.socket, paths.frontendPort);
    await waitOp("green", 2);
    assert.equal((await state("blue"))?.admin ?? 0, 1, "blue is back in forced maintenance");
    assert.equal((await state("green"))?.admin, 0, "green is ready");
    for (let i = 0; i < 5; i++) assert.equal(await servedBy("/health"), "green");
  });

  test("promote --status reports both colours and the active one", () => {
    const res = spawnSync(path.join(ROOT, "scripts", "promote"), ["--status", "--socket", paths.socket], {
      encoding: "utf8",
    });
    assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /switchboard\/blue maint\/DOWN/);
    assert.match(res.stdout, /switchboard\/green ready\/UP/);
    assert.match(res.stdout, /active colour: green/);
  });
});

test("promote refuses bad usage with exit 2 and names the problem", () => {
  const promote = (args: string[]) =>
    spawnSync(path.join(ROOT, "scripts", "promote"), args, { encoding: "utf8" });
  const cases: [string[], RegExp][] = [
    [[], /expected "blue", "green", --rollback, --status or --save-state, got ""/],
    [["purple"], /got "purple"/],
    [
      ["green", "--manager", "docker"],
      /--manager \(SWITCHBOARD_MANAGER\) = "docker": expected pm2, systemd or command/,
    ],
    [["green", "--blue-port", "9000", "--green-port", "9000"], /--blue-port and --green-port must differ/],
    [
      ["green", "--ready-timeout", "soon"],
      /--ready-timeout \(SWITCHBOARD_READY_TIMEOUT_MS\) = "soon": expected a non-negative integer/,
    ],
    [["--status", "extra"], /unexpected argument "extra"/],
  ];
  for (const [args, message] of cases) {
    const res = promote(args);
    assert.equal(res.status, 2, `promote ${args.join(" ")}: ${res.stderr}`);
    assert.match(res.stderr, message);
  }
  const help = promote(["--help"]);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: scripts\/promote <blue\|green>/);
});
