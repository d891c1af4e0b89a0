import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { SocketIOSubscriptions, Switchboard, type SwitchboardClientError } from "../../src/client/index.js";
import { type Frame, RawClient, SioClient } from "../helpers/clients.js";
import { HookBackend } from "../helpers/hook-backend.js";
import { tryUpgrade } from "../helpers/http.js";
import { metric, publishOnce, type ServerProcess, startServer, until } from "../helpers/server.js";

const SECRET = "hook-s3cret";
const HOOK_TIMEOUT_MS = 300;
const nowS = () => Math.floor(Date.now() / 1000);

/** A Socket.IO connection attempt's outcome: connected, or the connect_error's data. */
async function sioAttempt(url: string, query: Record<string, string>) {
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, query });
  const outcome = await new Promise<
    { ok: true } | { ok: false; message: string; data: Record<string, unknown> }
  >((resolve) => {
    socket.once("connect", () => resolve({ ok: true }));
    socket.once("connect_error", (err: Error & { data?: Record<string, unknown> }) =>
      resolve({ ok: false, message: err.message, data: err.data ?? {} }),
    );
  });
  return { socket, outcome };
}

/** Answers every hook by what the request says (query `mode`, channel, data, method, user): no state between tests. */
function answerHooks(backend: HookBackend): void {
  backend.handlers.connect = (b) => {
    const q = b.query as Record<string, string>;
    switch (q.mode) {
      case "deny":
        return { error: { code: 4403, message: "banned" } };
      case "disconnect":
        return { disconnect: { code: 4011, reason: "go away" } };
      case "hang":
        return "hang";
      case "broken":
        return { status: 500, text: "oops" };
      case "channels":
        return { user: q.user ?? "", channels: ["news:pushed"] };
      case "expire":
        return { user: q.user ?? "", expireAt: nowS() + 1 };
      default:
        return { user: q.user ?? "", meta: { tag: q.tag ?? null }, info: { name: q.user } };
    }
  };
  backend.handlers.subscribe = async (b) => {
    const channel = String(b.channel);
    if (channel.includes("deny")) return { error: { code: "no_access", message: "not yours" } };
    if (channel.includes("hang")) return "hang";
    if (channel.includes("late")) await new Promise((r) => setTimeout(r, HOOK_TIMEOUT_MS / 2));
    return {};
  };
  backend.handlers.publish = (b) => {
    const text = (b.data as { text?: string } | null)?.text;
    if (text === "deny") return { error: { code: 7, message: "no shouting" } };
    if (text === "hang") return "hang";
    if (text === "replace") return { data: { text: "replaced", by: b.user } };
    if (text === "bloat") return { data: "x".repeat(5000) };
    return {};
  };
  backend.handlers.rpc = (b) => {
    if (b.method === "fail") return { error: { code: 42, message: "nope" } };
    if (b.method === "hang") return "hang";
    if (b.method === "whoami") return { data: { client: b.client, user: b.user, meta: b.meta } };
    return { data: b.data };
  };
  let flaky = 0;
  backend.handlers.refresh = (b) => {
    if (b.user === "r-extend") return { expireAt: nowS() + 3600 };
    if (b.user === "r-flaky")
      return ++flaky <= 2 ? { status: 503, text: "busy" } : { expireAt: nowS() + 3600 };
    return { expired: true };
  };
}

describe("backend hooks", () => {
  let backend: HookBackend;
  let server: ServerProcess;
  let ws: string;

  before(async () => {
    backend = await HookBackend.start();
    answerHooks(backend);
    server = await startServer([
      "--workers",
      "1",
      "--connect-hook",
      backend.url("connect"),
      "--subscribe-hook",
      backend.url("subscribe"),
      "--publish-hook",
      backend.url("publish"),
      "--rpc-hook",
      backend.url("rpc"),
      "--refresh-hook",
      backend.url("refresh"),
      "--hook-secret",
      SECRET,
      "--hook-timeout",
      String(HOOK_TIMEOUT_MS),
      "--max-payload",
      "4096",
      "--publish-namespaces",
      "chat,open",
      "--namespaces",
      JSON.stringify({ open: { subscribeHook: false, publishHook: false } }),
    ]);
    ws = server.wsUrl;
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    await backend.close();
  });

  it("connect: the backend names the user; the same client id, user and meta reach later hooks; signed", async () => {
    const c = await RawClient.open(`${ws}?user=alice&tag=t1`, {
      headers: { cookie: "session=abc", authorization: "Bearer xyz", "x-other": "dropped" },
    });
    const [connect] = backend.of("connect", (b) => (b.query as { tag?: string }).tag === "t1");
    assert.ok(connect);
    assert.equal(connect.body.protocol, "ws");
    assert.equal(connect.body.transport, "websocket");
    assert.equal(connect.body.remoteAddr, "127.0.0.1");
    assert.deepEqual(connect.body.headers, { cookie: "session=abc", authorization: "Bearer xyz" });
    assert.equal(connect.headers["content-type"], "application/json");
    const expected = `sha256=${createHmac("sha256", SECRET).update(connect.raw).digest("hex")}`;
    assert.equal(connect.headers["x-switchboard-signature"], expected);

    assert.equal((await c.subscribe("chat:alice")).type, "ack");
    const [sub] = backend.of("subscribe", (b) => b.channel === "chat:alice");
    assert.deepEqual(
      { client: sub?.body.client, user: sub?.body.user, meta: sub?.body.meta },
      { client: connect.body.client, user: "alice", meta: { tag: "t1" } },
    );
    c.close();
  });

  it("connect: refusals, disconnects and an unavailable backend on raw upgrades; other connections go on", async () => {
    const bystander = await RawClient.open(`${ws}?user=bystander`);
    const denied = await tryUpgrade(`${ws}?mode=deny`);
    assert.equal(denied.status, 403);
    assert.deepEqual(JSON.parse(denied.body), {
      error: { code: "forbidden", message: "banned", backendCode: 4403 },
    });

    for (const mode of ["hang", "broken"]) {
      const down = await tryUpgrade(`${ws}?mode=${mode}`);
      assert.equal(down.status, 503, mode);
      assert.equal((JSON.parse(down.body) as { error: { code: string } }).error.code, "backend_unavailable");
      const retryAfter = Number(down.retryAfter);
      assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${down.retryAfter}`);
    }

    const told = new RawClient(`${ws}?mode=disconnect`);
    assert.equal(await told.closed(), 4011);
    assert.deepEqual(told.frames, [{ type: "disconnect", code: 4011, reason: "go away", reconnect: false }]);

    assert.equal((await bystander.request({ type: "ping" })).type, "pong");
    bystander.close();
  });

  it("connect: Socket.IO gets the same decisions as connect_error data; its client id is socket.id", async () => {
    const ok = await sioAttempt(server.url, { user: "sio-bob", tag: "s1" });
    assert.deepEqual(ok.outcome, { ok: true });
    const [connect] = backend.of("connect", (b) => (b.query as { tag?: string }).tag === "s1");
    assert.equal(connect?.body.client, ok.socket.id);
    assert.equal(connect?.body.protocol, "socket.io");
    assert.equal(connect?.body.transport, "websocket");
    ok.socket.disconnect();

    const denied = await sioAttempt(server.url, { mode: "deny" });
    assert.deepEqual(denied.outcome, {
      ok: false,
      message: "banned",
      data: { code: "forbidden", backendCode: 4403, message: "banned" },
    });
    const told = await sioAttempt(server.url, { mode: "disconnect" });
    assert.deepEqual(told.outcome, {
      ok: false,
      message: "go away",
      data: { code: "disconnected", reason: "go away", reconnect: false },
    });
    const down = await sioAttempt(server.url, { mode: "hang" });
    assert.equal(down.outcome.ok, false);
    assert.equal(!down.outcome.ok && down.outcome.data.code, "backend_unavailable");
    for (const s of [denied, told, down]) s.socket.disconnect();
  });

  it("connect: the backend's channels are joined server-side, with no frame but their messages", async () => {
    const raw = await RawClient.open(`${ws}?mode=channels&user=pushed`);
    const sio = await SioClient.open(server.url, ["websocket"], { query: { mode: "channels" } });
    await until(async () => {
      await publishOnce(server, "news:pushed", Date.now());
      return raw.messages("news:pushed").length > 0 && sio.received.length > 0;
    });
    assert.deepEqual(
      raw.frames.filter((f) => f.type !== "message"),
      [],
    );
    assert.equal(backend.of("subscribe", (b) => b.channel === "news:pushed").length, 0);
    raw.close();
    sio.close();
  });

  it("subscribe: allow, deny with the backend's code, unavailable, and namespaces that opt out", async () => {
    const c = await RawClient.open(`${ws}?user=sub`);
    assert.equal((await c.subscribe("chat:ok")).type, "ack");
    const denied = await c.subscribe("chat:deny");
    assert.deepEqual(
      { type: denied.type, code: denied.code, message: denied.message, backendCode: denied.backendCode },
      { type: "error", code: "forbidden", message: "not yours", backendCode: "no_access" },
    );
    const slow = await c.subscribe("chat:hang");
    assert.equal(slow.code, "backend_unavailable");
    assert.equal((await c.subscribe("open:deny-but-skipped")).type, "ack");
    assert.equal(backend.of("subscribe", (b) => b.channel === "open:deny-but-skipped").length, 0);
    // Not a member of what was refused: a publish there reaches nobody here.
    await publishOnce(server, "chat:hang", 1);
    await publishOnce(server, "chat:ok", 2);
    await c.waitForMessages("chat:ok", 1);
    assert.equal(c.messages("chat:hang").length, 0);

    const s = await SioClient.open(server.url, ["websocket"], { query: { user: "sio-sub" } });
    assert.equal((await s.subscribe("chat:ok")).ok, true);
    const sioDenied = (await s.subscribe("chat:deny")) as { error: Record<string, unknown> };
    assert.deepEqual(sioDenied.error, { code: "forbidden", message: "not yours", backendCode: "no_access" });
    assert.equal(
      ((await s.subscribe("chat:hang")) as { error: { code: string } }).error.code,
      "backend_unavailable",
    );
    c.close();
    s.close();
  });

  it("subscribe: an unsubscribe while the hook is asked wins; a second subscribe meanwhile is pending", async () => {
    const c = await RawClient.open(`${ws}?user=racer`);
    const first = c.send({ type: "subscribe", channel: "chat:late" });
    const second = await c.subscribe("chat:late");
    assert.equal(second.code, "bad_request");
    await c.request({ type: "unsubscribe", channel: "chat:late" });
    const answer = await c.waitFor((f) => f.id === first);
    assert.equal(answer.type, "ack");
    await publishOnce(server, "chat:late", 1);
    // A subscriber that did stay shows the message went out; the racer got none.
    const witness = await RawClient.open(`${ws}?user=witness`);
    assert.equal((await witness.subscribe("open:late")).type, "ack");
    await publishOnce(server, "open:late", 1);
    await witness.waitForMessages("open:late", 1);
    assert.equal(c.messages("chat:late").length, 0);
    c.close();
    witness.close();
  });

  it("publish: allow, replace (size checked again), deny with the backend's code, unavailable; both protocols", async () => {
    const c = await RawClient.open(`${ws}?user=pub`);
    assert.equal((await c.subscribe("chat:room")).type, "ack");
    assert.equal(
      (await c.request({ type: "publish", channel: "chat:room", data: { text: "hi" } })).type,
      "ack",
    );
    assert.equal(
      (await c.request({ type: "publish", channel: "chat:room", data: { text: "replace" } })).type,
      "ack",
    );
    const denied = await c.request({ type: "publish", channel: "chat:room", data: { text: "deny" } });
    assert.deepEqual([denied.code, denied.message, denied.backendCode], ["forbidden", "no shouting", 7]);
    const bloated = await c.request({ type: "publish", channel: "chat:room", data: { text: "bloat" } });
    assert.equal(bloated.code, "too_large");
    const slow = await c.request({ type: "publish", channel: "chat:room", data: { text: "hang" } });
    assert.equal(slow.code, "backend_unavailable");
    const got = await c.waitForMessages("chat:room", 2);
    assert.deepEqual(
      got.map((m) => m.data),
      [{ text: "hi" }, { text: "replaced", by: "pub" }],
    );

    const s = await SioClient.open(server.url, ["websocket"], { query: { user: "sio-pub" } });
    const replaced = await s.socket.timeout(5000).emitWithAck("publish", "chat:room", { text: "replace" });
    assert.equal(replaced.ok, true);
    const sioDenied = await s.socket.timeout(5000).emitWithAck("publish", "chat:room", { text: "deny" });
    assert.deepEqual(sioDenied.error, { code: "forbidden", message: "no shouting", backendCode: 7 });
    await c.waitForMessages("chat:room", 3);
    assert.deepEqual(c.messages("chat:room")[2]?.data, { text: "replaced", by: "sio-pub" });
    c.close();
    s.close();
  });

  it("rpc: the backend's data, its error with backendCode, unavailable; raw frames and Socket.IO acks", async () => {
    const c = await RawClient.open(`${ws}?user=caller&tag=rpc`);
    const echo = await c.request({ type: "rpc", method: "echo", data: { n: 1 } });
    assert.deepEqual(echo, { type: "rpc", id: echo.id, data: { n: 1 } });
    const who = await c.request({ type: "rpc", method: "whoami" });
    assert.deepEqual((who.data as Frame).user, "caller");
    assert.deepEqual((who.data as Frame).meta, { tag: "rpc" });
    const failed = await c.request({ type: "rpc", method: "fail", data: null });
    assert.deepEqual(
      [failed.type, failed.code, failed.message, failed.backendCode],
      ["error", "forbidden", "nope", 42],
    );
    assert.equal((await c.request({ type: "rpc", method: "hang" })).code, "backend_unavailable");
    assert.equal((await c.request({ type: "rpc", method: "" })).code, "bad_request");

    const s = await SioClient.open(server.url, ["websocket"], { query: { user: "sio-caller" } });
    assert.deepEqual(await s.socket.timeout(5000).emitWithAck("rpc", "echo", [1, 2]), {
      ok: true,
      data: [1, 2],
    });
    const sioFailed = await s.socket.timeout(5000).emitWithAck("rpc", "fail", null);
    assert.deepEqual(sioFailed.error, { code: "forbidden", message: "nope", backendCode: 42 });

    const sdk = new Switchboard(`${ws}?user=sdk-caller`, { WebSocket: WebSocket as never });
    sdk.connect();
    assert.deepEqual(await sdk.rpc("echo", { via: "sdk" }), { via: "sdk" });
    const err = (await sdk.rpc("fail", 1).catch((e: unknown) => e)) as SwitchboardClientError;
    assert.deepEqual([err.code, err.backendCode], ["forbidden", 42]);
    const wrapped = new SocketIOSubscriptions(s.socket);
    assert.deepEqual(await wrapped.rpc("echo", "x"), "x");
    sdk.disconnect();
    wrapped.close();
    c.close();
    s.close();
  });

  it("refresh: at expireAt the backend extends the session, ends it (4001), or is retried while unavailable", async () => {
    const extended = await RawClient.open(`${ws}?mode=expire&user=r-extend`);
    const ended = await RawClient.open(`${ws}?mode=expire&user=r-expire`);
    const flaky = await RawClient.open(`${ws}?mode=expire&user=r-flaky`);
    assert.equal(await ended.closed(), 4001);
    assert.equal(ended.frames.find((f) => f.type === "error")?.code, "token_expired");
    await until(() => backend.of("refresh", (b) => b.user === "r-extend").length > 0, 5000, "refresh call");
    // The flaky backend failed twice, then answered: the connection was kept throughout.
    await until(
      () => backend.of("refresh", (b) => b.user === "r-flaky").length === 3,
      15_000,
      "three refresh tries",
    );
    for (const c of [extended, flaky]) assert.equal((await c.request({ type: "ping" })).type, "pong");
    assert.equal(extended.closeCode, null);
    assert.equal(flaky.closeCode, null);

    const sio = await SioClient.open(server.url, ["websocket"], {
      query: { mode: "expire", user: "r-expire" },
    });
    await until(() => sio.socket.disconnected, 5000, "Socket.IO session ended");
    extended.close();
    flaky.close();
  });

  it("counts hook calls by outcome on /metrics", async () => {
    const count = (hook: string, outcome: string) =>
      metric(server, "switchboard_hook_calls_total", `hook="${hook}",outcome="${outcome}"`);
    await until(async () => (await count("connect", "ok")) > 0 && (await count("rpc", "timeout")) > 0);
    assert.ok((await count("connect", "denied")) >= 2);
    assert.ok((await count("connect", "failed")) >= 1);
    assert.ok((await count("subscribe", "denied")) >= 2);
    assert.ok((await count("publish", "ok")) >= 1);
  });
});

describe("backend hooks: a backend that is down, then back", () => {
  let backend: HookBackend;
  let server: ServerProcess;
  let port: number;

  before(async () => {
    backend = await HookBackend.start();
    port = backend.port;
    await backend.close();
    const url = (path: string) => `http://127.0.0.1:${port}/${path}`;
    server = await startServer([
      "--workers",
      "1",
      "--connect-hook",
      url("connect"),
      "--subscribe-hook",
      url("subscribe"),
      "--hook-timeout",
      String(HOOK_TIMEOUT_MS),
    ]);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
    await backend.close();
  });

  it("clients are refused as backend_unavailable, the SDKs retry by themselves, the outage is logged once", async () => {
    const raw = await tryUpgrade(server.wsUrl);
    assert.equal(raw.status, 503);
    assert.ok(Number(raw.retryAfter) >= 1 && Number(raw.retryAfter) <= 5);
    const sio = await sioAttempt(server.url, {});
    assert.equal(!sio.outcome.ok && sio.outcome.data.code, "backend_unavailable");
    sio.socket.disconnect();

    const got: unknown[] = [];
    const sdk = new Switchboard(server.wsUrl, {
      WebSocket: WebSocket as never,
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 400,
    });
    let sdkErrors = 0;
    sdk.on("error", () => {
      sdkErrors += 1;
    });
    sdk.subscribe("news", { onMessage: (data) => got.push(data) });
    sdk.connect();
    const sioSocket = io(server.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelayMax: 400,
    });
    const wrapped = new SocketIOSubscriptions(sioSocket, { minRetryDelayMs: 50, maxRetryDelayMs: 400 });
    let sioRefusals = 0;
    sioSocket.on("connect_error", () => {
      sioRefusals += 1;
    });
    const sioGot: unknown[] = [];
    wrapped.on("error", () => {});
    wrapped.subscribe("news", { onMessage: (data) => sioGot.push(data) });
    const failing = (l: { msg?: string; hook?: unknown }) =>
      l.msg?.startsWith("backend hook failing") === true;
    await until(() => server.lines.filter(failing).length >= 1, 5000, "the outage logged");
    // Both SDKs were refused more than once (each retrying by itself) before the backend comes back.
    await until(() => sdkErrors >= 3 && sioRefusals >= 3, 10_000, "SDK retries while the backend is down");

    await backend.listen(port);
    await until(() => sdk.state === "connected" && sioSocket.connected, 15_000, "both SDKs connected");
    await until(
      async () => {
        await publishOnce(server, "news", got.length);
        return got.length > 0 && sioGot.length > 0;
      },
      15_000,
      "messages after the backend came back",
    );
    // One warning per hook that failed, one line when each answered again, not one per refused attempt.
    const lines = server.lines.filter(failing);
    assert.ok(lines.length <= 2, `${lines.length} warnings`);
    assert.equal(new Set(lines.map((l) => l.hook)).size, lines.length);
    assert.ok(server.lines.some((l) => l.msg === "backend answering again"));

    const noRpc = (await sdk.rpc("x", 1).catch((e: unknown) => e)) as SwitchboardClientError;
    assert.equal(noRpc.code, "bad_request");
    sdk.disconnect();
    wrapped.close();
    sioSocket.disconnect();
  });
});
