/**
 * `switchboard status` against real servers: the table's figures are those of /status (connections per worker,
 * published, deliveries), --json is /status as is, --watch refreshes in place (rates after the first frame) and stops
 * on SIGINT, and the exit codes: 0 ready, 1 degraded (Redis configured but unreachable), 2 unreachable or bad usage.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { freePort } from "../../src/harness/free-port.js";
import { publishedOf } from "../../src/status/table.js";
import { RawClient } from "../helpers/clients.js";
import { CLI, metric, runCli, type ServerProcess, startServer, until } from "../helpers/server.js";

const CHANNEL = "status:room";
const CLIENTS = 5;

type WorkerRow = { slot: string; pid: string; state: string; raw: number; sio: number };

/** The worker rows of the table: cells are separated by two spaces or more. */
function workerRows(stdout: string): WorkerRow[] {
  return stdout
    .split("\n")
    .filter((l) => /^\d+ {2,}\d+ {2,}\S/.test(l))
    .map((l) => {
      const [slot = "", pid = "", state = "", raw = "", sio = ""] = l.trim().split(/\s{2,}/);
      return { slot, pid, state, raw: Number(raw.replace(/,/g, "")), sio: Number(sio.replace(/,/g, "")) };
    });
}

/** The figure after `label ` on the totals line (commas removed). */
function figure(stdout: string, label: string): number {
  const m = new RegExp(`(?:^|   )${label} ([\\d,]+)`, "m").exec(stdout);
  assert.ok(m, `no "${label}" figure in\n${stdout}`);
  return Number((m[1] as string).replace(/,/g, ""));
}

type Status = Awaited<ReturnType<ServerProcess["status"]>>;
type Stats = { rawConnections: number; sioConnections: number };

function connections(s: Status): number {
  return s.workers.reduce((n, w) => n + ((w.stats as Stats | null)?.rawConnections ?? 0), 0);
}

function delivered(s: Status): number {
  return (s.totals as { delivered: number }).delivered;
}

describe("switchboard status", () => {
  let server: ServerProcess;
  let admin: string;
  const clients: RawClient[] = [];

  before(async () => {
    server = await startServer(["--workers", "2", "--instance", "status-test"]);
    admin = `http://127.0.0.1:${server.adminPort}`;
    for (let i = 0; i < CLIENTS; i++) {
      const c = await RawClient.open(server.wsUrl);
      await c.subscribe(CHANNEL);
      clients.push(c);
    }
    await server.publish(CHANNEL, { n: 1 });
    for (const c of clients) await c.waitForMessages(CHANNEL, 1);
    // Workers report their figures periodically: wait until /status has every connection and delivery.
    await until(
      async () => {
        const s = await server.status();
        return connections(s) === CLIENTS && delivered(s) === CLIENTS;
      },
      15_000,
      "/status to show every connection and delivery",
    );
  });

  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  it("prints the figures /status gives, and exits 0 when ready", async () => {
    const { code, stdout, stderr } = await runCli(["status", "--admin", admin]);
    const status = await server.status();
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.equal(stderr, "");
    assert.match(stdout, /instance status-test +phase running/);
    assert.match(stdout, /^health ready$/m);

    const rows = workerRows(stdout);
    assert.equal(rows.length, 2, stdout);
    for (const w of status.workers as (Status["workers"][number] & { slot: number })[]) {
      const row = rows.find((r) => r.slot === String(w.slot));
      assert.ok(row, `a row for slot ${w.slot}:\n${stdout}`);
      const stats = w.stats as Stats;
      assert.deepEqual(row, {
        slot: String(w.slot),
        pid: String(w.pid),
        state: w.state,
        raw: stats.rawConnections,
        sio: stats.sioConnections,
      });
    }
    assert.equal(
      rows.reduce((n, r) => n + r.raw, 0),
      CLIENTS,
    );
    assert.equal(figure(stdout, "deliveries"), delivered(status));
    // Servers whose /status does not include it count published messages in /metrics only.
    const published = publishedOf(status) ?? (await metric(server, "switchboard_published_total"));
    assert.equal(published, 1);
    assert.equal(figure(stdout, "published"), published);
    assert.equal(
      figure(stdout, "slow consumers"),
      (status.totals as { slowConsumers: number }).slowConsumers,
    );
  });

  it("--json prints /status as is; ADMIN_URL stands for --admin", async () => {
    const { code, stdout } = await runCli(["status", "--json"], { ADMIN_URL: `${admin}/status` });
    assert.equal(code, 0);
    const doc = JSON.parse(stdout) as Status;
    const now = await server.status();
    assert.equal(doc.instance, "status-test");
    assert.equal(doc.pid, now.pid);
    assert.deepEqual(
      doc.workers.map((w) => [w.id, w.pid, (w.stats as Stats).rawConnections]),
      now.workers.map((w) => [w.id, w.pid, (w.stats as Stats).rawConnections]),
    );
    assert.equal(delivered(doc), delivered(now));
  });

  it("--watch redraws in place, shows rates from the second frame, and stops on SIGINT", async () => {
    const child = spawn(process.execPath, [CLI, "status", "--watch", "--admin", admin]);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const frames = () => out.split("\x1b[H").slice(1);
    // The first write clears the screen; then each frame starts at the cursor's home.
    await until(() => frames().length >= 3, 15_000, "two frames");
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number];
    assert.equal(code, 0);
    const [first = "", second = ""] = frames().slice(1);
    assert.match(first, /published\/s — {3}deliveries\/s —/);
    // Nothing moves meanwhile: the rates are numbers, and zero.
    assert.match(second, /published\/s 0\.0 {3}deliveries\/s 0\.0/);
    assert.ok(second.includes("\x1b[K\n"), "each line clears its rest");
    assert.ok(out.endsWith("\x1b[?25h"), "the cursor is shown again");
  });

  it("--watch --json prints one /status document per line", async () => {
    const child = spawn(process.execPath, [CLI, "status", "--watch", "--json", "--admin", admin]);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    await until(() => out.split("\n").length >= 3, 15_000, "two lines");
    child.kill("SIGINT");
    await once(child, "exit");
    const lines = out.split("\n").filter((l) => l !== "");
    assert.ok(lines.length >= 2);
    for (const l of lines) assert.equal((JSON.parse(l) as Status).instance, "status-test");
  });

  it("exits 2 with one line naming the URL when nothing listens, and on bad usage", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["status", "--admin", url]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.ok(r.stderr.includes(`${url}/status`), r.stderr);
    assert.match(r.stderr, /ECONNREFUSED/);

    const json = await runCli(["status", "--json", "--admin", url]);
    assert.equal(json.code, 2);
    assert.equal(json.stdout, "");

    assert.equal((await runCli(["status", "--no-such-flag", "--admin", admin])).code, 2);
    assert.equal((await runCli(["status", "--admin", "ftp://x"])).code, 2);
  });

  it("--help lists status and its flags", async () => {
    const top = await runCli(["--help"]);
    assert.match(top.stdout, /^ {2}status \[options\] /m);
    const help = await runCli(["status", "--help"]);
    assert.equal(help.code, 0);
    for (const flag of ["--watch", "--json", "--admin <url>"]) assert.ok(help.stdout.includes(flag), flag);
  });
});

describe("switchboard status on a degraded server", () => {
  let server: ServerProcess;
  before(async () => {
    // Redis is configured but nothing listens there: the server runs, its link is not up.
    server = await startServer(["--workers", "1", "--redis", `redis://127.0.0.1:${await freePort()}`]);
  });
  after(async () => {
    await server?.stop();
  });

  it("exits 1 and says why", async () => {
    const admin = `http://127.0.0.1:${server.adminPort}`;
    const status = (await server.status()) as Status & { redis?: { state: string } };
    assert.ok(status.redis && status.redis.state !== "up", JSON.stringify(status.redis));
    const r = await runCli(["status", "--admin", admin]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^health DEGRADED: .*redis (connecting|down|degraded)/m);
    assert.match(r.stdout, /redis (connecting|down|degraded)/);
    assert.equal((await runCli(["status", "--json", "--admin", admin])).code, 1);
  });
});

describe("switchboard status with --admin-password", () => {
  const PASSWORD = "status-test-password";
  let server: ServerProcess;
  before(async () => {
    server = await startServer(["--workers", "1", "--admin-password", PASSWORD]);
  });
  after(async () => {
    await server?.stop();
  });

  it("exits 2 naming the missing password, and reads /status with it (flag, environment, URL)", async () => {
    const admin = `http://127.0.0.1:${server.adminPort}`;
    const none = await runCli(["status", "--admin", admin], { ADMIN_PASSWORD: "" });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^switchboard status: cannot read .*\/status: HTTP 401: .*--admin-password/);
    const wrong = await runCli(["status", "--admin", admin, "--admin-password", "nope"]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /refused/);
    assert.equal((await runCli(["status", "--admin", admin, "--admin-password", PASSWORD])).code, 0);
    assert.equal(
      (await runCli(["status", "--json", "--admin", admin], { ADMIN_PASSWORD: PASSWORD })).code,
      0,
    );
    const inUrl = await runCli(["status", "--admin", `http://x:${PASSWORD}@127.0.0.1:${server.adminPort}`]);
    assert.equal(inUrl.code, 0, inUrl.stderr);
    assert.ok(!inUrl.stdout.includes(PASSWORD), "the password is not printed");
  });
});
