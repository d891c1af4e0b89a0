import assert from "node:assert/strict";
import { Agent } from "node:http";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { RawClient, SioClient } from "../helpers/clients.js";
import { request } from "../helpers/http.js";
import { type ServerProcess, startServer, until } from "../helpers/server.js";

/** Opens an Engine.IO long-polling session by hand and returns its sid. */
async function openSession(base: string): Promise<string> {
  const r = await request(`${base}/socket.io/?EIO=4&transport=polling`);
  return (JSON.parse(r.body.slice(1)) as { sid: string }).sid;
}

describe("sticky distribution (the faults of @socket.io/sticky, each checked)", () => {
  let server: ServerProcess;
  before(async () => {
    // A short ping interval makes an idle long-poll GET return within a second.
    server = await startServer(["--workers", "3", "--drain-timeout", "2000", "--ping-interval", "1000"]);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it("keeps long-polling-only clients sharing keep-alive connections on their own workers", async () => {
    // Idle sockets are shared across sessions, which may live on different workers.
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    // With reconnection off, a session lost to a request landing on the wrong worker shows as a disconnect
    // (connect_error only fires while connecting). Recorded from the moment each client is open.
    const disconnects: string[] = [];
    const clients = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const c = await SioClient.open(server.url, ["polling"], { agent });
        c.socket.on("disconnect", (reason) => disconnects.push(`client ${i}: ${reason}`));
        return c;
      }),
    );
    for (const c of clients) assert.equal((await c.subscribe("poll")).ok, true);
    await until(
      async () => {
        const s = await server.status();
        return (
          s.workers.filter((w) => (w.stats as { sioConnections: number } | null)?.sioConnections).length >= 2
        );
      },
      5000,
      "sessions on several workers",
    );
    for (let i = 0; i < 10; i++) await server.publish("poll", i);
    for (const c of clients) {
      const got = await c.waitForMessages("poll", 10, 10_000);
      assert.deepEqual(
        got.map((m) => m.data),
        [...Array(10).keys()],
      );
    }
    assert.deepEqual(disconnects, [], "no session was lost");
    for (const c of clients) assert.equal(c.socket.connected, true);
    for (const c of clients) c.close();
    agent.destroy();
  });

  it("answers a Socket.IO request on a reused keep-alive connection with 307 instead of 'Session ID unknown'", async () => {
    // The balancer spreads new connections by load, so which worker takes the publish depends on the order of
    // earlier connections: keep trying fresh connections until one lands away from the session's worker.
    const statuses: number[] = [];
    while (!statuses.includes(307) && statuses.length < 12) {
      const sid = await openSession(server.url);
      // A fresh kept-alive connection: first a publish (lands on some worker), then this session's poll.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const pub = await request(`${server.url}/api/publish`, {
        agent,
        method: "POST",
        body: JSON.stringify({ channel: "x", data: 1 }),
      });
      assert.equal(pub.status, 200);
      // Only Socket.IO requests close their connection: the publish API keeps it alive.
      assert.equal(pub.headers.connection, "keep-alive");
      const url = `${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
      let r = await request(url, { agent });
      statuses.push(r.status);
      if (r.status === 307) {
        assert.equal(r.headers.location, url.slice(server.url.length));
        r = await request(url);
      }
      assert.equal(r.status, 200, r.body);
      assert.doesNotMatch(r.body, /Session ID unknown/);
      agent.destroy();
    }
    assert.ok(statuses.includes(307), `a publish landed on another worker than the session (${statuses})`);
  });

  it("hands over a request whose body spans many TCP chunks without losing a byte", async () => {
    const c = await RawClient.open(server.wsUrl);
    await c.subscribe("big");
    const data = "é".repeat(30_000); // 60 KB of UTF-8
    await server.publish("big", data);
    assert.equal((await c.waitForMessages("big", 1))[0]?.data, data);
    c.close();
  });

  it("answers 503 instead of crashing while no worker is live", async () => {
    const one = await startServer(["--workers", "1", "--drain-timeout", "1000"]);
    try {
      const [w] = (await one.status()).workers;
      process.kill((w as { pid: number }).pid, "SIGKILL");
      const seen = new Set<number>();
      await until(
        async () => {
          // A connection cut by the dying worker is fine (0); one left hanging is not (-1).
          const res = await fetch(`${one.url}/api/publish`, {
            method: "POST",
            body: JSON.stringify({ channel: "a", data: 1 }),
            signal: AbortSignal.timeout(3000),
          }).catch((err: Error) => ({ status: err.name === "TimeoutError" ? -1 : 0 }));
          seen.add(res.status);
          return res.status === 200;
        },
        10_000,
        "the replacement worker",
      );
      assert.ok(seen.has(503), `saw ${[...seen]}`);
      assert.ok(!seen.has(-1), "no request was left hanging");
      assert.equal(one.child.exitCode, null, "the primary is still running");
    } finally {
      await one.stop();
    }
  });

  it("closes every connection a dying worker never took instead of leaving it hanging", async () => {
    const two = await startServer(["--workers", "2"]);
    const outcome = { opened: 0, refused: 0, cut: 0, hung: 0 };
    const pending = new Set<Promise<void>>();
    // A steady stream of connection attempts while workers are killed: each must open, get an HTTP answer, or
    // be closed; none may be left waiting (Node queues sockets sent to a worker that has not yet acknowledged
    // the previous one, and those queued for a worker that dies must be closed by the primary).
    const attempt = () => {
      const p = new Promise<void>((resolve) => {
        const ws = new WebSocket(two.wsUrl);
        const finish = (kind: keyof typeof outcome) => {
          clearTimeout(timer);
          outcome[kind] += 1;
          ws.terminate();
          resolve();
        };
        const timer = setTimeout(() => finish("hung"), 5000);
        ws.on("open", () => finish("opened"));
        ws.on("unexpected-response", () => finish("refused"));
        ws.on("error", () => {});
        ws.on("close", () => finish("cut"));
      });
      pending.add(p);
      void p.then(() => pending.delete(p));
    };
    const loop = setInterval(() => {
      for (let i = 0; i < 4; i++) attempt();
    }, 10);
    try {
      for (let kill = 0; kill < 6; kill++) {
        const ready = (await two.status()).workers.filter((w) => w.state === "ready");
        if (ready[0]) process.kill(ready[0].pid, "SIGKILL");
        await until(
          async () => (await two.status()).workers.some((w) => w.state === "ready"),
          10_000,
          "a ready worker",
        );
        await until(() => outcome.opened > 50 * (kill + 1), 10_000, "connections opening again");
      }
    } finally {
      clearInterval(loop);
      await Promise.all(pending);
      await two.stop();
    }
    console.log(`connections while killing workers: ${JSON.stringify(outcome)}`);
    assert.equal(outcome.hung, 0, JSON.stringify(outcome));
    assert.ok(outcome.cut + outcome.refused > 0, "the kills did cut or refuse some");
  });

  it("loses no client's first frame when a burst of connections queues hand-offs to the same worker", async () => {
    const two = await startServer(["--workers", "2", "--max-subscriptions", "10"]);
    let unanswered = 0;
    try {
      // Node sends a worker one socket at a time and queues the rest; the primary must not read from a socket it
      // queued (its read-ahead would take the client's first frame, sent once the worker answered the upgrade).
      for (let burst = 0; burst < 15 && unanswered === 0; burst++) {
        const clients = await Promise.all(
          Array.from(
            { length: 150 },
            () =>
              new Promise<RawClient>((resolve) => {
                const c = new RawClient(two.wsUrl);
                c.ws.once("open", () => {
                  c.send({ type: "subscribe", channel: `burst:${burst}` });
                  resolve(c);
                });
              }),
          ),
        );
        await until(() => clients.every((c) => c.frames.length > 0), 5000, "every subscribe answered").catch(
          () => {
            unanswered += clients.filter((c) => c.frames.length === 0).length;
          },
        );
        for (const c of clients) c.close();
      }
    } finally {
      await two.stop();
    }
    assert.equal(unanswered, 0, `${unanswered} clients never got an answer to their first frame`);
  });
});
