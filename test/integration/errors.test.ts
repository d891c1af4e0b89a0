import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { RawClient, SioClient } from "../helpers/clients.js";
import { request } from "../helpers/http.js";
import { runCli, type ServerProcess, startServer, until } from "../helpers/server.js";

function hs256(payload: Record<string, unknown>, secret: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

describe("bad input gets a documented error and loses nothing", () => {
  let server: ServerProcess;
  let c: RawClient;

  before(async () => {
    server = await startServer([
      "--workers",
      "2",
      "--max-payload",
      "1024",
      "--max-subscriptions",
      "3",
      "--client-rate",
      "50",
    ]);
    c = await RawClient.open(server.wsUrl);
  });
  after(async () => {
    c.close();
    assert.equal(await server.stop(), 0);
  });

  const errorOf = async (frame: Record<string, unknown>) => {
    const reply = await c.request(frame);
    assert.equal(reply.type, "error");
    return reply.code;
  };

  it("answers each bad frame with its code and keeps the connection open", async () => {
    c.ws.send("{nope");
    assert.equal((await c.waitFor((f) => f.code === "bad_request")).type, "error");
    assert.equal(await errorOf({ type: "dance" }), "unknown_type");
    assert.equal(await errorOf({ type: "subscribe" }), "invalid_channel");
    assert.equal(await errorOf({ type: "subscribe", channel: "bad channel!" }), "invalid_channel");
    assert.equal(await errorOf({ type: "subscribe", channel: "x".repeat(200) }), "invalid_channel");
    assert.equal(await errorOf({ type: "subscribe", channel: "a", since: -1 }), "bad_request");
    assert.equal(await errorOf({ type: "publish", channel: "news", data: 1 }), "forbidden");
    assert.equal(await errorOf({ type: "publish", channel: "chat:1" }), "bad_request");
    assert.equal(await errorOf({ type: "publish", channel: "chat:1", data: "x".repeat(2000) }), "too_large");
    for (const ch of ["a", "b", "c"]) assert.equal((await c.subscribe(ch)).type, "ack");
    assert.equal(await errorOf({ type: "subscribe", channel: "d" }), "too_many_subscriptions");
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.ok(await c.waitFor((f) => f.code === "bad_request" && /binary/.test(String(f.message))));
    assert.equal((await c.request({ type: "ping" })).type, "pong");
    await server.publish("a", "still delivered");
    assert.equal((await c.waitForMessages("a", 1))[0]?.data, "still delivered");
  });

  it("closes a frame over 4x the payload limit with 1009 and nothing else is affected", async () => {
    const big = await RawClient.open(server.wsUrl);
    big.ws.send(JSON.stringify({ type: "ping", pad: "x".repeat(5000) }));
    assert.equal(await big.closed(), 1009);
    assert.equal((await c.request({ type: "ping" })).type, "pong");
  });

  it("rate-limits a flood with rate_limited and serves the connection again afterwards", async () => {
    const f = await RawClient.open(server.wsUrl);
    for (let i = 0; i < 300; i++) f.send({ type: "ping" });
    await f.waitFor((x) => x.code === "rate_limited");
    const pongs = await until(() => {
      const n = f.frames.filter((x) => x.type === "pong").length;
      return n + f.frames.filter((x) => x.code === "rate_limited").length === 300 ? n : 0;
    });
    assert.ok(pongs >= 100 && pongs < 300, `burst of ~100 served (${pongs})`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await f.request({ type: "ping" })).type, "pong");
    f.close();
  });

  it("answers publish API errors with status and code", async () => {
    const post = async (body: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}/api/publish`, { method: "POST", body, headers });
      return [res.status, ((await res.json()) as { error?: { code: string } }).error?.code];
    };
    assert.deepEqual(await post("{oops"), [400, "bad_request"]);
    assert.deepEqual(await post(JSON.stringify({ channel: "", data: 1 })), [400, "invalid_channel"]);
    assert.deepEqual(await post(JSON.stringify({ channel: "a" })), [400, "bad_request"]);
    assert.deepEqual(await post(JSON.stringify({ messages: [] })), [400, "bad_request"]);
    assert.deepEqual(await post(JSON.stringify({ channel: "a", data: "x".repeat(2000) })), [
      413,
      "too_large",
    ]);
    assert.deepEqual(await post("x".repeat(3 * 1024 * 1024)), [413, "too_large"]);
    const notFound = await fetch(`${server.url}/nope`);
    assert.equal(notFound.status, 404);
    // Headers over 16 KiB are refused by the primary before any worker sees them.
    const big = await request(server.url, { headers: { "x-padding": "p".repeat(17 * 1024) } }).catch(
      (err: Error) => ({ status: 0, body: err.message }),
    );
    assert.equal(big.status, 431, big.body);
    assert.equal((JSON.parse(big.body) as { error: { code: string } }).error.code, "headers_too_large");
  });

  it("answers Socket.IO errors in the ack", async () => {
    const s = await SioClient.open(server.url);
    assert.deepEqual((await s.subscribe("bad channel")).error?.code, "invalid_channel");
    const pub = await s.socket.emitWithAck("publish", "news", 1);
    assert.equal(pub.error.code, "forbidden");
    const unknown = await s.socket.timeout(5000).emitWithAck("subscrbe", "news");
    assert.equal(unknown.error.code, "bad_request");
    assert.match(unknown.error.message, /unknown event "subscrbe"/);
    assert.equal((await s.subscribe("news")).ok, true);
    s.close();
  });

  it("counts errors by code in /metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    for (const code of [
      "bad_request",
      "unknown_type",
      "invalid_channel",
      "forbidden",
      "too_large",
      "rate_limited",
    ]) {
      await until(
        async () => {
          const t = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
          return new RegExp(`switchboard_errors_total\\{[^}]*code="${code}"[^}]*\\} [1-9]`).test(t);
        },
        3000,
        `metric for ${code}`,
      );
    }
    assert.match(text, /switchboard_connections\{/);
  });
});

describe("authentication", () => {
  it("requires a valid token when --jwt-secret is set (unauthorized) and honours the channels claim (forbidden)", async () => {
    const server = await startServer(["--workers", "1", "--jwt-secret", "s3cret"]);
    try {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(server.wsUrl);
        ws.once("unexpected-response", (_q, r) => resolve(r.statusCode ?? 0));
        ws.once("open", () => resolve(101));
      });
      assert.equal(status, 401);
      const token = hs256(
        { sub: "u1", channels: ["news", "team:*"], exp: Math.floor(Date.now() / 1000) + 60 },
        "s3cret",
      );
      const c = await RawClient.open(`${server.wsUrl}?token=${token}`);
      assert.equal((await c.subscribe("news")).type, "ack");
      assert.equal((await c.subscribe("team:7")).type, "ack");
      assert.equal((await c.subscribe("secret")).code, "forbidden");
      c.close();
      const bearer = await RawClient.open(server.wsUrl, { headers: { authorization: `Bearer ${token}` } });
      bearer.close();
      await assert.rejects(
        SioClient.open(server.url, ["websocket"], { auth: { token: "bad" } }),
        /invalid token/,
      );
      const s = await SioClient.open(server.url, ["websocket"], { auth: { token } });
      assert.equal((await s.subscribe("secret")).error?.code, "forbidden");
      s.close();
      // The token may also come in the handshake request (Bearer header or ?token=), over either transport,
      // although the server lets that request go once the session is open.
      for (const [transports, opts] of [
        [["websocket"], { extraHeaders: { authorization: `Bearer ${token}` } }],
        [["polling"], { extraHeaders: { authorization: `Bearer ${token}` } }],
        [["websocket"], { query: { token } }],
      ] as const) {
        const viaRequest = await SioClient.open(server.url, [...transports], opts);
        assert.equal((await viaRequest.subscribe("news")).ok, true);
        assert.equal((await viaRequest.subscribe("secret")).error?.code, "forbidden");
        viaRequest.close();
      }
    } finally {
      await server.stop();
    }
  });

  it("protects the publish API with --api-key (401 without, 403 wrong, 200 right)", async () => {
    const server = await startServer(["--workers", "1", "--api-key", "k1"]);
    try {
      const post = (headers: Record<string, string>) =>
        fetch(`${server.url}/api/publish`, {
          method: "POST",
          headers,
          body: JSON.stringify({ channel: "a", data: 1 }),
        });
      assert.equal((await post({})).status, 401);
      assert.equal((await post({ authorization: "Bearer nope" })).status, 403);
      assert.equal((await post({ authorization: "Bearer k1" })).status, 200);
      assert.equal((await post({ "x-api-key": "k1" })).status, 200);
    } finally {
      await server.stop();
    }
  });

  it("accepts only loopback publishers without an API key", async () => {
    const server = await startServer(["--workers", "1"]);
    try {
      const res = await fetch(`${server.url}/api/publish`, {
        method: "POST",
        headers: { "x-forwarded-for": "203.0.113.9" },
        body: JSON.stringify({ channel: "a", data: 1 }),
      });
      assert.equal(res.status, 403);
    } finally {
      await server.stop();
    }
  });
});

describe("slow consumers", () => {
  it("closes a reader that stops reading with 4008, counts it, and keeps memory bounded", async () => {
    const server = await startServer(["--workers", "1", "--max-buffered", "262144"]);
    try {
      const slow = await RawClient.open(server.wsUrl);
      const healthy = await RawClient.open(server.wsUrl);
      await slow.subscribe("firehose");
      await healthy.subscribe("firehose");
      const payload = "x".repeat(16 * 1024);
      const body = JSON.stringify({
        messages: Array.from({ length: 10 }, () => ({ channel: "firehose", data: payload })),
      });
      const rssOf = (s: { workers: { stats: unknown }[] }) =>
        (s.workers[0]?.stats as { rssBytes: number } | null)?.rssBytes ?? 0;
      const rss = async () => rssOf(await server.status());
      const burst = async (expected: number) => {
        for (let i = 0; i < 800; i++) await fetch(`${server.url}/api/publish`, { method: "POST", body });
        await healthy.waitForMessages("firehose", expected, 30_000);
        // The RSS to compare comes from a stats report taken after the burst.
        const done = Date.now();
        await until(
          async () => (((await server.status()).workers[0]?.stats as { at: number } | null)?.at ?? 0) > done,
          5000,
          "a stats report after the burst",
        );
      };
      // Warm-up with everyone reading: the heap reaches its working size for this traffic.
      await burst(8000);
      const rssBefore = await rss();
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      await burst(16000);
      const status = await until(
        async () => {
          const s = await server.status();
          return (s.totals as { slowConsumers: number }).slowConsumers === 1 ? s : null;
        },
        5000,
        "slow consumer counted",
      );
      const grown = rssOf(status) - rssBefore;
      // 8000 x 16 KiB = 128 MiB went out while the slow reader read nothing; an unbounded queue would keep it all.
      assert.ok(grown < 48 * 1024 * 1024, `worker RSS grew by ${grown} bytes`);
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      assert.equal(await slow.closed(), 4008);
      const metrics = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
      assert.match(metrics, /switchboard_slow_consumers_total\{[^}]*\} 1/);
      healthy.close();
    } finally {
      await server.stop();
    }
  });
});

describe("configuration errors", () => {
  it("stops start-up with exit 2 and one line per problem naming the key", async () => {
    const r = await runCli(["start", "--port", "70000", "--workers", "many"], { LOG_LEVEL: "loud" });
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 3);
    assert.match(r.stderr, /--port \(PORT\) = "70000"/);
    assert.match(r.stderr, /--workers \(WORKERS\) = "many"/);
    assert.match(r.stderr, /--log-level \(LOG_LEVEL\) = "loud"/);
  });

  it("check-config validates without starting, and reads flag > env > file", async () => {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(`${tmpdir()}/sb-`);
    writeFileSync(`${dir}/c.json`, JSON.stringify({ port: 7000, instance: "file", workers: 3 }));
    const r = await runCli(["check-config", "--config", `${dir}/c.json`, "--port", "7001"], {
      INSTANCE: "env",
    });
    assert.equal(r.code, 0);
    const config = JSON.parse(r.stdout.replace("config ok: ", "")) as Record<string, unknown>;
    assert.deepEqual([config.port, config.instance, config.workers], [7001, "env", 3]);
    const secret = await runCli(["check-config", "--redis", "redis://app:s3cret-pw@cache:6379/1"], {
      JWT_SECRET: "jwt-s3cret",
    });
    assert.equal(secret.code, 0);
    assert.doesNotMatch(secret.stdout, /s3cret/, "no password or secret is printed");
    assert.match(secret.stdout, /"redis":"redis:\/\/app@cache:6379\/1"/);
    writeFileSync(`${dir}/bad.json`, JSON.stringify({ prot: 1 }));
    const bad = await runCli(["check-config", "--config", `${dir}/bad.json`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown key "prot"/);
  });
});
