/**
 * The shipped HAProxy configs: `haproxy -c` accepts them without a warning, and a real haproxy running the
 * shipped haproxy.cfg (ports and paths rewritten) does what scripts/promote relies on: /ready health checks,
 * admin states, cookie pinning for the smoke test and Socket.IO sessions, and a state file that survives a
 * restart; and promote's own guards against it: one promote at a time (the lock file), and no --backend or --server
 * name that could add runtime API commands. The backends here are plain HTTP servers; the real server is exercised
 * in promote.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { requireTool } from "../../src/harness/tools.js";
import { request } from "../helpers/http.js";
import { ROOT, until } from "../helpers/server.js";
import {
  descendants,
  freePorts,
  haproxyCommand,
  haproxyServers,
  haproxyTestConfig,
  isAlive,
  Proc,
  replaceOnce,
  startHaproxy,
  tempDir,
} from "./helpers.js";

const HAPROXY_DIR = path.join(ROOT, "haproxy");
const PROMOTE = path.join(ROOT, "scripts", "promote");
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

  /** scripts/promote against this HAProxy, run to its end (or killed after `timeoutMs`). */
  const promoteSync = (args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000) =>
    spawnSync(PROMOTE, [...args, "--socket", paths.socket], {
      encoding: "utf8",
      timeout: timeoutMs,
      env: { ...process.env, ...env },
    });
  /** Every server's admin and operational state, to compare before and after. */
  const snapshot = async () => [...(await haproxyServers(paths.socket, "switchboard")).entries()];

  test("one promote at a time: while one runs (or a live pid holds the lock), another exits 1 and touches nothing", async () => {
    const lockFile = path.join(tmp.dir, "promote.lock");
    const gate = path.join(tmp.dir, "start-gate");
    // blue's start command waits for a file the test never writes (30 s at most): a promote that stays in step 2.
    const startCmd = `for i in $(seq 1 300); do [ -e '${gate}' ] && exit 0; sleep 0.1; done; exit 1`;
    const promoteArgs = (...mode: string[]) => [
      ...mode,
      "--manager",
      "command",
      "--start-cmd",
      startCmd,
      "--stop-cmd",
      "true",
      "--blue-port",
      String(paths.bluePort),
      "--green-port",
      String(paths.greenPort),
      "--haproxy-url",
      url(""),
      "--state-file",
      "",
      "--stop-timeout",
      "500",
    ];
    // The variable, not --lock-file: an older promote, which knows neither, must get this far and run unlocked.
    const lockEnv = { SWITCHBOARD_PROMOTE_LOCK: lockFile };
    const promoteProc = (...mode: string[]) =>
      new Proc(PROMOTE, [...promoteArgs(...mode), "--socket", paths.socket], {
        env: { ...process.env, ...lockEnv },
      });
    const initial = await snapshot();
    assert.equal(initial.find(([name]) => name === "blue")?.[1].admin, 1, "blue starts in maint");

    // 1. The lock file holds the pid of a live process (ours): refused, and the lock file is left alone.
    const holder = new Proc("sleep", ["60"]);
    let first: Proc | undefined;
    const orphans: number[] = [];
    try {
      writeFileSync(lockFile, `${holder.pid}\n`);
      const refused = promoteSync(promoteArgs("blue"), lockEnv);
      assert.deepEqual(await snapshot(), initial, "a refused promote changed HAProxy");
      assert.equal(refused.status, 1, `${refused.stdout}${refused.stderr}`);
      assert.match(
        refused.stdout,
        new RegExp(
          `another promote \\(pid ${holder.pid}\\) is running \\(lock file ${lockFile}\\): nothing was touched`,
        ),
      );
      assert.doesNotMatch(refused.stdout, /1\/9/);
      assert.equal(readFileSync(lockFile, "utf8"), `${holder.pid}\n`, "the holder's lock file is untouched");
      await holder.stop("SIGKILL");

      // 2. Its pid is gone now: the lock is stale, and the next promote takes it over and runs (it waits in step 2).
      first = promoteProc("blue");
      const running = first;
      await until(
        () => running.tail().includes("2/9 starting blue"),
        10_000,
        "the first promote in step 2",
        50,
      );
      assert.match(
        running.tail(),
        new RegExp(`took over the stale lock file ${lockFile} \\(pid ${holder.pid} is not running\\)`),
      );
      assert.equal(
        readFileSync(lockFile, "utf8"),
        `${running.pid}\n`,
        "the lock file holds the running promote's pid",
      );
      orphans.push(...descendants(running.pid));

      // 3. A second promote (either colour, or a rollback) while the first runs: exit 1, nothing sent to HAProxy.
      const during = await snapshot();
      const seconds = [
        { args: promoteArgs("green"), env: lockEnv },
        { args: promoteArgs("blue"), env: lockEnv },
        { args: promoteArgs("--rollback"), env: lockEnv },
        { args: [...promoteArgs("green"), "--lock-file", lockFile], env: {} },
      ];
      for (const { args, env } of seconds) {
        const second = promoteSync(args, env);
        assert.deepEqual(
          await snapshot(),
          during,
          `promote ${args[0]} changed HAProxy while another one ran`,
        );
        assert.equal(second.status, 1, `promote ${args[0]}: ${second.stdout}${second.stderr}`);
        assert.match(second.stdout, new RegExp(`another promote \\(pid ${running.pid}\\) is running`));
        assert.doesNotMatch(second.stdout, /1\/9|FAILED|rolling back/);
      }
      assert.equal(
        readFileSync(lockFile, "utf8"),
        `${running.pid}\n`,
        "a refused promote leaves the lock alone",
      );
      // Looking is not changing: --status needs no lock.
      assert.equal(promoteSync(["--status"], lockEnv).status, 0);

      // 4. SIGTERM (and SIGINT) stop a promote and remove its lock.
      const status = await running.stop("SIGTERM");
      assert.equal(status?.code, 143, running.tail());
      assert.match(running.tail(), /stopped by SIGTERM/);
      assert.ok(!existsSync(lockFile), "the lock file is removed on SIGTERM");

      const interrupted = promoteProc("blue");
      first = interrupted;
      await until(() => interrupted.tail().includes("2/9 starting blue"), 10_000, "promote in step 2", 50);
      assert.doesNotMatch(interrupted.tail(), /stale/, "the lock was removed, not left to go stale");
      orphans.push(...descendants(interrupted.pid));
      assert.equal((await interrupted.stop("SIGINT"))?.code, 130, interrupted.tail());
      assert.ok(!existsSync(lockFile), "the lock file is removed on SIGINT");
    } finally {
      await holder.stop("SIGKILL");
      await first?.stop("SIGKILL");
      for (const pid of orphans) if (isAlive(pid)) process.kill(pid, "SIGKILL");
      rmSync(lockFile, { force: true });
      // The interrupted promotes left blue in drain (step 1): back to how the test found it.
      await set("blue", "maint");
    }
  });

  test("promote refuses a --backend or --server name that would add runtime API commands: exit 2, HAProxy untouched", async () => {
    const lockFile = path.join(tmp.dir, "names.lock");
    const injected = "set server switchboard/green state maint";
    const initial = await snapshot();
    assert.equal(initial.find(([name]) => name === "green")?.[1].admin, 0, "green starts ready");
    const cases: { args: string[]; env?: NodeJS.ProcessEnv; message: string }[] = [
      {
        args: ["--backend", `switchboard;${injected}`],
        message: `--backend (SWITCHBOARD_HAPROXY_BACKEND) = ${JSON.stringify(`switchboard;${injected}`)}`,
      },
      {
        args: ["--backend", `switchboard\n${injected}`],
        message: `--backend (SWITCHBOARD_HAPROXY_BACKEND) = ${JSON.stringify(`switchboard\n${injected}`)}`,
      },
      {
        args: [],
        env: { SWITCHBOARD_HAPROXY_BACKEND: `switchboard;${injected}` },
        message: `--backend (SWITCHBOARD_HAPROXY_BACKEND) = ${JSON.stringify(`switchboard;${injected}`)}`,
      },
      {
        args: ["--server", `{colour};${injected}`],
        message: `--server (SWITCHBOARD_HAPROXY_SERVER) = ${JSON.stringify(`{colour};${injected}`)} (blue: ${JSON.stringify(`blue;${injected}`)})`,
      },
      {
        args: ["--server", "app1 {colour}"],
        message: '--server (SWITCHBOARD_HAPROXY_SERVER) = "app1 {colour}" (blue: "app1 blue")',
      },
    ];
    const outcomes: { label: string; status: number | null; stderr: string; message: string }[] = [];
    for (const { args, env, message } of cases) {
      for (const mode of [["green"], ["blue"], ["--rollback"], ["--status"]]) {
        const res = promoteSync(
          [
            ...mode,
            ...args,
            "--manager",
            "command",
            "--start-cmd",
            "true",
            "--stop-cmd",
            "true",
            "--state-file",
            "",
          ],
          { SWITCHBOARD_PROMOTE_LOCK: lockFile, ...env },
        );
        outcomes.push({
          label: `${mode.join(" ")} ${JSON.stringify(args)} ${JSON.stringify(env ?? {})}`,
          status: res.status,
          stderr: res.stderr,
          message,
        });
      }
    }
    // First what matters: nothing reached HAProxy (green would be in maint).
    assert.deepEqual(await snapshot(), initial, "a refused name still sent commands to HAProxy");
    for (const { label, status, stderr, message } of outcomes) {
      assert.equal(status, 2, `${label}: ${stderr}`);
      const first = stderr.split("\n")[0] ?? "";
      assert.equal(
        first,
        `promote: ${message}: a HAProxy name may contain only letters, digits, "-", "_", "." and ":"`,
        `${label}: one line naming the flag and the allowed characters`,
      );
    }
    assert.ok(!existsSync(lockFile), "a usage error takes no lock");
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
    [
      ["green", "--backend", "a;b"],
      /--backend \(SWITCHBOARD_HAPROXY_BACKEND\) = "a;b": a HAProxy name may contain only letters, digits, "-", "_", "\." and ":"/,
    ],
    [
      ["--status", "--server", "{colour} x"],
      /--server \(SWITCHBOARD_HAPROXY_SERVER\) = "\{colour\} x" \(blue: "blue x"\)/,
    ],
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
