import assert from "node:assert/strict";
import { Agent } from "node:http";
import { describe, it } from "node:test";
import WebSocket from "ws";
import { RawClient, SioClient } from "../helpers/clients.js";
import { getFresh, request } from "../helpers/http.js";
import { startServer, until } from "../helpers/server.js";

async function readyStatus(url: string): Promise<number> {
  return (await fetch(`${url}/ready`)).status;
}

describe("supervision and lifecycle", () => {
  it("answers /health and /ready the same whether the primary or a worker on a kept-alive connection answers", async () => {
    const server = await startServer(["--workers", "2", "--instance", "probe"]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // A publish moves the kept-alive connection to a worker; the probes that follow on it are the worker's.
      assert.equal(
        (
          await request(`${server.url}/api/publish`, {
            method: "POST",
            agent,
            body: '{"channel":"a","data":1}',
          })
        ).status,
        200,
      );
      for (const path of ["/health", "/ready"]) {
        const viaWorker = await request(`${server.url}${path}`, { agent });
        const viaPrimary = await getFresh(`${server.url}${path}`);
        assert.equal(viaWorker.status, viaPrimary.status, path);
        assert.deepEqual(JSON.parse(viaWorker.body), viaPrimary.body, `${path}: one body, whoever answers`);
      }
      const health = await getFresh(`${server.url}/health`);
      assert.deepEqual([health.body.status, health.body.instance], ["ok", "probe"]);
    } finally {
      agent.destroy();
      await server.stop();
    }
  });

  it("replaces a worker killed with SIGKILL while clients on other workers see nothing", async () => {
    const server = await startServer(["--workers", "2", "--drain-timeout", "2000"]);
    const clients = [await RawClient.open(server.wsUrl), await RawClient.open(server.wsUrl)];
    for (const c of clients) await c.subscribe("k");
    const status = await until(
      async () => {
        const s = await server.status();
        return s.workers.every((w) => (w.stats as { rawConnections: number } | null)?.rawConnections === 1)
          ? s
          : null;
      },
      5000,
      "one client per worker",
    );
    const victim = status.workers[0] as { id: number; pid: number };
    process.kill(victim.pid, "SIGKILL");
    const survivors = await until(
      () => clients.filter((c) => c.closeCode === null).length === 1 && clients,
      5000,
    );
    const survivor = survivors.find((c) => c.closeCode === null) as RawClient;
    const replaced = await until(
      async () => {
        const s = await server.status();
        return s.workers.length === 2 && s.workers.every((w) => w.state === "ready" && w.id !== victim.id)
          ? s
          : null;
      },
      10_000,
      "a replacement worker",
    );
    assert.equal(replaced.restarts, 1);
    await server.publish("k", "still here");
    assert.equal((await survivor.waitForMessages("k", 1))[0]?.data, "still here");
    const fresh = await RawClient.open(server.wsUrl);
    assert.equal((await fresh.subscribe("k")).type, "ack");
    assert.equal(await readyStatus(server.url), 200);
    survivor.close();
    fresh.close();
    assert.equal(await server.stop(), 0);
  });

  it("drains on SIGTERM: /ready 503 at once, reconnect frames paced with jitter, close 1012, exit 0 in time", async () => {
    const server = await startServer(["--workers", "2", "--drain-timeout", "4000"]);
    const raw = await Promise.all(Array.from({ length: 40 }, () => RawClient.open(server.wsUrl)));
    const sio = await SioClient.open(server.url, ["websocket"]);
    const sioClosed = new Promise<string>((r) => sio.socket.once("disconnect", (reason) => r(reason)));
    const started = Date.now();
    const exit = server.stop("SIGTERM");
    await until(async () => (await readyStatus(server.url).catch(() => 0)) === 503, 2000, "/ready 503");
    const codes = await Promise.all(raw.map((c) => c.closed()));
    assert.deepEqual(new Set(codes), new Set([1012]));
    const reconnects = raw.map((c) => c.frames.find((f) => f.type === "reconnect"));
    for (const r of reconnects) {
      assert.equal(r?.reason, "shutdown");
      assert.ok(typeof r?.delayMs === "number" && r.delayMs >= 0);
    }
    assert.ok(new Set(reconnects.map((r) => r?.delayMs)).size > 5, "reconnect delays are jittered");
    assert.equal(await sioClosed, "transport close", "socket.io-client will reconnect on its own");
    assert.equal(await exit, 0);
    assert.ok(Date.now() - started < 4000, `exited within the drain timeout (${Date.now() - started} ms)`);
  });

  it("refuses new connections with 503 while draining", async () => {
    const server = await startServer(["--workers", "1", "--drain-timeout", "3000"]);
    const holder = await RawClient.open(server.wsUrl);
    // A client that stops reading never answers the close frame, which holds the drain open for ~2 s.
    (holder.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const exit = server.stop("SIGTERM");
    await until(async () => (await readyStatus(server.url).catch(() => 0)) === 503, 2000, "/ready 503");
    const res = await fetch(`${server.url}/api/publish`, { method: "POST", body: "{}" });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "unavailable");
    const upgrade = await new Promise<number>((resolve) => {
      const ws = new WebSocket(server.wsUrl);
      ws.once("unexpected-response", (_req, r) => resolve(r.statusCode ?? 0));
      ws.once("open", () => resolve(101));
      ws.once("error", () => resolve(0));
    });
    assert.equal(upgrade, 503);
    assert.equal(await exit, 0);
    holder.close();
  });

  it("reloads workers one at a time on SIGHUP without refusing a single connection", async () => {
    const server = await startServer(["--workers", "2", "--drain-timeout", "2000"]);
    const before = (await server.status()).workers.map((w) => w.pid);
    let opened = 0;
    let refused = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const ws = new WebSocket(server.wsUrl);
          await new Promise<void>((resolve, reject) => {
            ws.once("open", () => resolve());
            ws.once("error", reject);
            ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
          });
          opened += 1;
          ws.terminate();
        } catch {
          refused += 1;
        }
      }
    })();
    process.kill(server.pid, "SIGHUP");
    await server.waitForLog((l) => l.msg === "rolling reload done", 20_000);
    stop = true;
    await loop;
    const after = (await server.status()).workers;
    assert.equal(after.length, 2);
    assert.ok(
      after.every((w) => !before.includes(w.pid) && w.state === "ready"),
      "every worker was replaced",
    );
    assert.ok(opened > 20, `connections kept opening (${opened})`);
    assert.equal(refused, 0);
    assert.equal(await server.stop(), 0);
  });

  it("survives a crash loop, reports it on /ready and in the log, and recovers", async () => {
    const server = await startServer(["--workers", "1", "--drain-timeout", "1000"]);
    const killed = new Set<number>();
    // Kill every worker as soon as it reports ready, five times: a real crash loop of the only slot.
    while (killed.size < 5) {
      const s = await until(
        async () => {
          const st = await server.status();
          const w = st.workers.find((x) => x.state === "ready" && !killed.has(x.pid));
          return w ? w : null;
        },
        20_000,
        "a new worker",
      );
      killed.add(s.pid);
      process.kill(s.pid, "SIGKILL");
    }
    await server.waitForLog((l) => l.crashLoop === true && l.level === 50);
    const body = await until(
      async () => {
        const res = await fetch(`${server.url}/ready`).catch(() => null);
        const json = res ? ((await res.json()) as { crashLoop: boolean }) : null;
        return json?.crashLoop ? json : null;
      },
      5000,
      "crashLoop on /ready",
    );
    assert.equal(body.crashLoop, true);
    await until(async () => (await readyStatus(server.url)) === 200, 20_000, "recovery");
    const c = await RawClient.open(server.wsUrl);
    assert.equal((await c.request({ type: "ping" })).type, "pong");
    c.close();
    assert.equal(await server.stop(), 0);
  });

  it("terminates a peer that stops answering heartbeats and keeps the ones that answer", async () => {
    const server = await startServer(["--workers", "1", "--ping-interval", "200"]);
    const silent = await RawClient.open(server.wsUrl, { autoPong: false });
    const lively = await RawClient.open(server.wsUrl);
    let pings = 0;
    silent.ws.on("ping", () => {
      pings += 1;
    });
    const started = Date.now();
    assert.equal(await silent.closed(10_000), 1006, "cut off without a close frame");
    assert.ok(Date.now() - started < 5000, "by the server, within a few ping intervals");
    assert.ok(pings >= 1);
    assert.equal(lively.closeCode, null);
    assert.equal((await lively.request({ type: "ping" })).type, "pong");
    lively.close();
    assert.equal(await server.stop(), 0);
  });
});
