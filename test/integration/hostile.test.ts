/**
 * Hostile input and unlucky clients against real servers (issue 11, points 1–5 and 8): each test here failed on the
 * server before these rules existed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { RawClient, SioClient } from "../helpers/clients.js";
import { request, tryUpgrade } from "../helpers/http.js";
import { metricsText, type ServerProcess, startServer, until } from "../helpers/server.js";
import { inSeconds, hs256 as signToken } from "../helpers/tokens.js";

const SECRET = "hostile-secret";

function hs256(payload: Record<string, unknown>, secret = SECRET): string {
  return signToken(payload, secret);
}

/** The upgrade's HTTP status and body when it is refused, or 101 (the socket closed at once). */
async function upgrade(url: string): Promise<{ status: number; body: string }> {
  const u = await tryUpgrade(url);
  u.ws?.terminate();
  return u;
}

describe("anonymous server: readers, forwarded requests, rooms, deep data", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(["--workers", "1", "--client-rate", "10000"]);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it("does not close a fast reader as a slow consumer for one big batch", async () => {
    const reader = await RawClient.open(server.wsUrl);
    assert.equal((await reader.subscribe("burst")).type, "ack");
    const kb = "k".repeat(1000);
    for (let round = 0; round < 2; round++) {
      const body = JSON.stringify({
        messages: Array.from({ length: 1000 }, (_, i) => ({ channel: "burst", data: { kb, i } })),
      });
      const res = await fetch(`${server.url}/api/publish`, { method: "POST", body });
      assert.equal(res.status, 200);
    }
    await reader.waitForMessages("burst", 2000, 20_000);
    assert.equal(reader.closeCode, null, "the reader keeps up: it is not a slow consumer");
    reader.close();
  });

  it("refuses forwarded requests without an API key, whatever the forwarding header", async () => {
    const post = (headers: Record<string, string>) =>
      request(`${server.url}/api/publish`, {
        method: "POST",
        headers,
        body: JSON.stringify({ channel: "a", data: 1 }),
      });
    assert.equal((await post({})).status, 200, "a direct loopback caller");
    for (const headers of <Record<string, string>[]>[
      { forwarded: "for=203.0.113.9" },
      { "x-real-ip": "203.0.113.9" },
      { "x-forwarded-for": "127.0.0.1" },
      { "x-forwarded-host": "example.com" },
      { via: "1.1 proxy" },
      { "true-client-ip": "203.0.113.9" },
    ]) {
      const res = await post(headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.match(res.body, /forwarded requests/);
    }
  });

  it("keeps channel rooms apart from Socket.IO's own rooms, and checks /api/emit", async () => {
    const victim = await SioClient.open(server.url);
    const snoop = await SioClient.open(server.url);
    try {
      // The snooping client subscribes to a channel named like the victim's socket id (its private room).
      assert.equal((await snoop.subscribe(victim.socket.id as string)).ok, true);
      const got = { victim: 0, snoop: 0 };
      victim.socket.on("private", () => {
        got.victim += 1;
      });
      snoop.socket.on("private", () => {
        got.snoop += 1;
      });
      const emit = (body: unknown) =>
        request(`${server.url}/api/emit`, { method: "POST", body: JSON.stringify(body) });
      assert.equal((await emit({ room: victim.socket.id, event: "private", args: [1] })).status, 200);
      await until(() => got.victim === 1, 5000, "the private emit on its socket");
      // A channel message marker after it: once it arrived, the private emit would have too.
      await server.publish(victim.socket.id as string, "marker");
      await snoop.waitForMessages(victim.socket.id as string, 1);
      assert.equal(got.snoop, 0, "a channel subscriber does not receive another socket's private emits");
      for (const [body, status] of [
        [{ room: "r", event: "connect" }, 400],
        [{ room: "r", event: "message" }, 400],
        [{ room: "r", event: "" }, 400],
        [{ event: "x" }, 400],
        [{ room: "r", channel: "c", event: "x" }, 400],
        [{ room: "r", event: "x", args: "nope" }, 400],
        [{ room: "r", event: "x", args: ["x".repeat(70_000)] }, 413],
        [{ channel: "news", event: "custom", args: [1] }, 200],
      ] as const) {
        const res = await emit(body);
        assert.equal(res.status, status, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
        if (status !== 200) assert.ok(JSON.parse(res.body).error.code, "a documented code");
      }
    } finally {
      victim.close();
      snoop.close();
    }
  });

  it("answers data nested too deeply with bad_request on every path, never an error without a code", async () => {
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    const raw = await RawClient.open(server.wsUrl);
    raw.ws.send(`{"type":"publish","channel":"chat:deep","id":"deep","data":${deep}}`);
    const reply = await raw.waitFor((f) => f.id === "deep");
    assert.deepEqual([reply.type, reply.code], ["error", "bad_request"]);
    assert.equal((await raw.request({ type: "ping" })).type, "pong", "the connection goes on");
    raw.close();
    const res = await request(`${server.url}/api/publish`, {
      method: "POST",
      body: `{"channel":"a","data":${deep}}`,
    });
    assert.equal(res.status, 400, res.body);
    assert.equal(JSON.parse(res.body).error.code, "bad_request");
    // socket.io-client cannot even encode such data: speak Engine.IO/Socket.IO packets by hand.
    const eio = new WebSocket(`${server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    const packets: string[] = [];
    eio.on("message", (m) => packets.push(String(m)));
    await until(() => packets.some((p) => p.startsWith("0{")), 5000, "the Engine.IO open packet");
    eio.send("40");
    await until(() => packets.some((p) => p.startsWith("40")), 5000, "the namespace connect");
    eio.send(`427["publish","chat:deep",${deep}]`);
    const answer = await until(
      () => packets.find((p) => p.startsWith("437")),
      5000,
      "the ack of the publish",
    );
    assert.equal((JSON.parse(answer.slice(3)) as [{ error: { code: string } }])[0].error.code, "bad_request");
    eio.close();
    const metrics = await metricsText(server);
    assert.ok(!metrics.includes('code="undefined"'), "every counted error has its code");
  });

  it("answers a request target that starts with // (not a URL a worker can parse as a path) without a crash", async () => {
    const before = (await server.status()).workers.map((w) => w.pid);
    for (const path of ["//health", "//x]y", "//"]) {
      // node's HTTP client would normalise the target: send it by hand.
      const res = await new Promise<string>((resolve) => {
        const socket = connect(server.port, "127.0.0.1");
        let got = "";
        socket.on("data", (d: Buffer) => {
          got += d;
        });
        socket.on("close", () => resolve(got));
        socket.end(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      });
      assert.match(res, /^HTTP\/1\.1 (400|404) /, path);
    }
    assert.deepEqual(
      (await server.status()).workers.map((w) => w.pid),
      before,
      "no worker died",
    );
  });

  it("answers a chunked body over the limit with 413, not a reset", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${server.url}/api/publish`, { method: "POST", agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      // Transfer-Encoding: chunked (no Content-Length): 3 MiB, over the 1 MiB body limit.
      const chunk = "x".repeat(64 * 1024);
      let sent = 0;
      const more = () => {
        while (sent < 48) {
          sent += 1;
          if (!req.write(chunk)) return void req.once("drain", more);
        }
        req.end();
      };
      more();
    });
    assert.equal(status, 413);
  });
});

describe("connection tokens: claims, expiry and refresh", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(["--workers", "1", "--jwt-secret", SECRET, "--jwt-audience", "rt"]);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it("refuses a channels claim that is not an array of strings, and a token for another audience", async () => {
    for (const channels of ["news", {}, [1], ["news", 2]]) {
      const token = hs256({ sub: "u", aud: "rt", channels, exp: inSeconds(60) });
      const res = await upgrade(`${server.wsUrl}?token=${token}`);
      assert.equal(res.status, 401, JSON.stringify(channels));
      assert.match(res.body, /channels\W+ claim must be an array/);
      await assert.rejects(SioClient.open(server.url, ["websocket"], { auth: { token } }), /channels/);
    }
    assert.equal(
      (await upgrade(`${server.wsUrl}?token=${hs256({ sub: "u", exp: inSeconds(60) })}`)).status,
      401,
    );
    assert.equal(
      (await upgrade(`${server.wsUrl}?token=${hs256({ sub: "u", aud: "rt", exp: inSeconds(60) })}`)).status,
      101,
    );
  });

  it("closes a raw connection with 4001 at its token's expiry unless it refreshed in-band", async () => {
    const short = await RawClient.open(
      `${server.wsUrl}?token=${hs256({ sub: "u1", aud: "rt", exp: inSeconds(2) })}`,
    );
    const refreshed = await RawClient.open(
      `${server.wsUrl}?token=${hs256({ sub: "u1", aud: "rt", exp: inSeconds(2) })}`,
    );
    assert.equal((await short.subscribe("news")).type, "ack");
    const later = inSeconds(60);
    const ack = await refreshed.request({
      type: "refresh",
      token: hs256({ sub: "u1", aud: "rt", exp: later }),
    });
    assert.deepEqual([ack.type, ack.exp], ["ack", later]);
    const other = await refreshed.request({
      type: "refresh",
      token: hs256({ sub: "u2", aud: "rt", exp: later }),
    });
    assert.equal(other.code, "forbidden", "a refresh is for the same user");
    assert.equal(await short.closed(10_000), 4001);
    assert.ok(short.frames.some((f) => f.type === "error" && f.code === "token_expired"));
    assert.equal(refreshed.closeCode, null, "the refreshed connection stays");
    assert.equal((await refreshed.subscribe("news")).type, "ack");
    refreshed.close();
  });

  it("disconnects a Socket.IO socket at its token's expiry unless it refreshed with the refresh event", async () => {
    const token = hs256({ sub: "u3", aud: "rt", exp: inSeconds(2) });
    const short = await SioClient.open(server.url, ["websocket"], { auth: { token } });
    const kept = await SioClient.open(server.url, ["polling"], { auth: { token } });
    const expired = new Promise<{ code: string }>((resolve) => short.socket.once("token_expired", resolve));
    const later = inSeconds(60);
    const ack = await kept.socket
      .timeout(5000)
      .emitWithAck("refresh", hs256({ sub: "u3", aud: "rt", exp: later }));
    assert.deepEqual(ack, { ok: true, exp: later });
    assert.equal((await expired).code, "token_expired");
    await until(() => short.socket.disconnected, 10_000, "the expired socket disconnected");
    assert.equal(kept.socket.connected, true);
    assert.equal((await kept.subscribe("news")).ok, true);
    short.close();
    kept.close();
  });
});

describe("secrets", () => {
  it("stay out of the workers' environment and command line; files can hold them", async () => {
    const dir = mkdtempSync(`${tmpdir()}/sb-secrets-`);
    writeFileSync(`${dir}/api-key`, "key-from-a-file-9c1\n");
    const server = await startServer(["--workers", "2", "--api-key-file", `${dir}/api-key`], {
      JWT_SECRET: "jwt-secret-in-env-77f",
    });
    try {
      const workers = (await server.status()).workers.map((w) => w.pid);
      assert.equal(workers.length, 2);
      for (const pid of workers) {
        const environ = readFileSync(`/proc/${pid}/environ`, "latin1");
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1");
        for (const secret of ["key-from-a-file-9c1", "jwt-secret-in-env-77f"]) {
          assert.ok(!environ.includes(secret), `worker ${pid}'s environment holds a secret`);
          assert.ok(!cmdline.includes(secret), `worker ${pid}'s command line holds a secret`);
        }
      }
      const publish = (key: string) =>
        request(`${server.url}/api/publish`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}` },
          body: JSON.stringify({ channel: "a", data: 1 }),
        });
      assert.equal(
        (await publish("key-from-a-file-9c1")).status,
        200,
        "the key from the file is the API key",
      );
      assert.equal((await publish("other")).status, 403);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
