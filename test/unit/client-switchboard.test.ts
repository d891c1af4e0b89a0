import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import {
  type ConnectionState,
  type Gap,
  Switchboard,
  type SwitchboardOptions,
  type WebSocketLike,
} from "../../src/client/index.js";

type Frame = Record<string, unknown>;

/** A WebSocket the test plays the server of: it records what the SDK sends and delivers what the test says. */
class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: Frame[] = [];
  closedByClient = false;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(text: string): void {
    assert.equal(this.readyState, 1, "sent on an open socket only");
    this.sent.push(JSON.parse(text) as Frame);
  }
  close(): void {
    this.readyState = 3;
    this.closedByClient = true;
  }
  // The server's side:
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(f: Frame): void {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
  /** The last frame of a type the SDK sent. */
  last(type: string): Frame {
    const f = this.sent.filter((s) => s.type === type).at(-1);
    assert.ok(f, `no ${type} frame sent; sent ${JSON.stringify(this.sent)}`);
    return f;
  }
}

/** A Switchboard on fake sockets; random() = 1 makes every backoff its ceiling. */
function setup(options: SwitchboardOptions = {}, url: string | (() => string) = "ws://sb.test/ws") {
  const sockets: FakeSocket[] = [];
  const WebSocket = class extends FakeSocket {
    constructor(u: string) {
      super(u);
      sockets.push(this);
    }
  };
  const sb = new Switchboard(url, { WebSocket, random: () => 1, ...options });
  const states: ConnectionState[] = [];
  const gaps: Gap[] = [];
  const errors: Error[] = [];
  sb.on("state", (s) => void states.push(s));
  sb.on("gap", (g) => void gaps.push(g));
  sb.on("error", (e) => void errors.push(e));
  const current = () => {
    const s = sockets.at(-1);
    assert.ok(s, "a socket was created");
    return s;
  };
  /** Connects (or waits for the reconnect) and opens the socket. */
  const opened = () => {
    const s = current();
    s.open();
    return s;
  };
  return { sb, sockets, states, gaps, errors, current, opened };
}

/** Records what a subscription's handlers got. */
function recorder() {
  const got: { data: unknown; offset: number }[] = [];
  const subscribed: unknown[] = [];
  const gaps: Gap[] = [];
  const errors: Error[] = [];
  return {
    got,
    subscribed,
    gaps,
    errors,
    handlers: {
      onMessage: (data: unknown, meta: { offset: number }) => void got.push({ data, offset: meta.offset }),
      onSubscribed: (s: unknown) => void subscribed.push(s),
      onGap: (g: Gap) => void gaps.push(g),
      onError: (e: Error) => void errors.push(e),
    },
  };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

describe("Switchboard client (fake WebSocket)", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "Date"] }));
  afterEach(() => mock.timers.reset());

  it("connects with the token in the URL, subscribes, takes the ack's position and dedupes by offset", () => {
    const { sb, sockets, states, opened } = setup({ token: "t 1" });
    const r = recorder();
    const sub = sb.subscribe("news", r.handlers);
    assert.equal(sockets.length, 0, "nothing happens before connect()");
    sb.connect();
    const s = opened();
    assert.equal(s.url, "ws://sb.test/ws?token=t%201");
    const frame = s.last("subscribe");
    assert.deepEqual(frame, { type: "subscribe", channel: "news", id: frame.id });
    s.frame({ type: "ack", id: frame.id, channel: "news", offset: 41, epoch: "e1" });
    assert.deepEqual(r.subscribed, [{ offset: 41, epoch: "e1", recovered: false }]);
    assert.equal(sub.offset, 41);
    assert.equal(sub.epoch, "e1");
    for (const offset of [41, 42, 43, 43, 42, 44]) {
      s.frame({ type: "message", channel: "news", data: `m${offset}`, offset });
    }
    s.frame({ type: "message", channel: "other", data: "x", offset: 100 });
    assert.deepEqual(
      r.got.map((g) => g.offset),
      [42, 43, 44],
    );
    assert.equal(r.got[0]?.data, "m42");
    assert.equal(sub.offset, 44);
    assert.deepEqual(states, ["connecting", "connected"]);
    assert.equal(sb.state, "connected");
  });

  it("resubscribes after a reconnect with since and epoch, and replays nothing twice", () => {
    const { sb, sockets, opened } = setup();
    const r = recorder();
    const sub = sb.subscribe("news", r.handlers);
    sb.connect();
    let s = opened();
    s.frame({ type: "ack", id: s.last("subscribe").id, offset: 41, epoch: "e1" });
    s.frame({ type: "message", channel: "news", data: 1, offset: 42 });
    s.drop();
    assert.equal(sb.state, "disconnected");
    mock.timers.tick(500);
    assert.equal(sockets.length, 2);
    s = opened();
    const resume = s.last("subscribe");
    assert.deepEqual(resume, { type: "subscribe", channel: "news", id: resume.id, since: 42, epoch: "e1" });
    s.frame({ type: "ack", id: resume.id, offset: 44, epoch: "e1", recovered: true });
    for (const offset of [42, 43, 44, 45]) s.frame({ type: "message", channel: "news", data: 1, offset });
    assert.deepEqual(
      r.got.map((g) => g.offset),
      [42, 43, 44, 45],
    );
    assert.deepEqual(r.subscribed.at(-1), { offset: 44, epoch: "e1", recovered: true });
    assert.equal(sub.offset, 45);
  });

  it("sends since alone when the app gave only since, and nothing when it holds no position", () => {
    const { sb, opened } = setup();
    sb.subscribe("a", { onMessage() {}, since: 7 });
    sb.subscribe("b", { onMessage() {} });
    sb.subscribe("c", { onMessage() {}, since: 3, epoch: "ec" });
    sb.connect();
    const s = opened();
    const frames = s.sent.filter((f) => f.type === "subscribe").map(({ id: _id, ...f }) => f);
    assert.deepEqual(frames, [
      { type: "subscribe", channel: "a", since: 7 },
      { type: "subscribe", channel: "b" },
      { type: "subscribe", channel: "c", since: 3, epoch: "ec" },
    ]);
  });

  it("history_gap reply with the epoch held keeps the position; the rest of history follows", () => {
    const { sb, gaps, opened } = setup();
    const r = recorder();
    const sub = sb.subscribe("news", { ...r.handlers, since: 10, epoch: "e1" });
    sb.connect();
    const s = opened();
    s.frame({
      type: "error",
      id: s.last("subscribe").id,
      code: "history_gap",
      message: "trimmed",
      channel: "news",
      offset: 20,
      epoch: "e1",
      reason: "history_trimmed",
    });
    assert.equal(sub.offset, 10);
    assert.equal(sub.epoch, "e1");
    const expected = {
      channel: "news",
      reason: "history_trimmed",
      message: "trimmed",
      offset: 10,
      epoch: "e1",
    };
    assert.deepEqual(r.gaps, [expected]);
    assert.deepEqual(gaps, [expected]);
    for (const offset of [10, 15, 16, 20, 21]) s.frame({ type: "message", channel: "news", data: 0, offset });
    assert.deepEqual(
      r.got.map((g) => g.offset),
      [15, 16, 20, 21],
    );
  });

  it("history_gap reply with another epoch, and an unsolicited one, take the gap's position", () => {
    const { sb, gaps, opened } = setup();
    const r = recorder();
    const sub = sb.subscribe("news", { ...r.handlers, since: 50, epoch: "old" });
    sb.connect();
    const s = opened();
    s.frame({
      type: "error",
      id: s.last("subscribe").id,
      code: "history_gap",
      message: "restarted",
      channel: "news",
      offset: 2,
      epoch: "new",
      reason: "epoch_mismatch",
    });
    assert.deepEqual([sub.offset, sub.epoch], [2, "new"]);
    assert.equal(r.gaps[0]?.reason, "epoch_mismatch");
    for (const offset of [1, 2, 3, 4]) s.frame({ type: "message", channel: "news", data: 0, offset });
    assert.deepEqual(
      r.got.map((g) => g.offset),
      [3, 4],
    );
    s.frame({
      type: "error",
      code: "history_gap",
      message: "lost",
      channel: "news",
      offset: 9,
      epoch: "new2",
      reason: "messages_lost",
    });
    assert.deepEqual([sub.offset, sub.epoch], [9, "new2"]);
    assert.deepEqual(
      gaps.map((g) => [g.reason, g.offset, g.epoch]),
      [
        ["epoch_mismatch", 2, "new"],
        ["messages_lost", 9, "new2"],
      ],
    );
    s.frame({ type: "message", channel: "news", data: 0, offset: 10 });
    assert.equal(r.got.at(-1)?.offset, 10);
  });

  it("history_gap offset_ahead under the epoch held takes the gap's lower position (nothing dropped after)", () => {
    const { sb, opened } = setup();
    const r = recorder();
    const sub = sb.subscribe("news", { ...r.handlers, since: 50, epoch: "e" });
    sb.connect();
    const s = opened();
    s.frame({
      type: "error",
      id: s.last("subscribe").id,
      code: "history_gap",
      message: "ahead",
      channel: "news",
      offset: 0,
      epoch: "e",
      reason: "offset_ahead",
    });
    assert.deepEqual([sub.offset, sub.epoch], [0, "e"]);
    s.frame({ type: "message", channel: "news", data: 0, offset: 1 });
    assert.deepEqual(
      r.got.map((g) => g.offset),
      [1],
    );
  });

  it("waits exactly the server's reconnect delayMs after a drain, not the backoff", () => {
    const { sb, sockets, opened } = setup();
    sb.connect();
    const s = opened();
    s.frame({ type: "reconnect", delayMs: 1234, reason: "draining" });
    s.drop(1012);
    mock.timers.tick(1233);
    assert.equal(sockets.length, 1, "not before delayMs");
    mock.timers.tick(1);
    assert.equal(sockets.length, 2, "at delayMs");
  });

  it("backs off with full jitter on other losses, growing per failure and reset by a good connection", () => {
    const { sb, sockets, current, states } = setup();
    sb.subscribe("news", { onMessage() {} });
    sb.connect();
    const gaps: number[] = [];
    // Three attempts fail before opening: 500, 1000, 2000 ms.
    for (let i = 0; i < 3; i++) {
      const before = sockets.length;
      current().drop();
      let waited = 0;
      while (sockets.length === before) {
        mock.timers.tick(100);
        waited += 100;
      }
      gaps.push(waited);
    }
    assert.deepEqual(gaps, [500, 1000, 2000]);
    // Opens but never gets its subscribe ack: not a good link, the backoff keeps growing.
    let s = current();
    s.open();
    s.drop();
    mock.timers.tick(3999);
    assert.equal(sockets.length, 4);
    mock.timers.tick(1);
    assert.equal(sockets.length, 5);
    // Opens and gets the ack: the next loss starts again at 500 ms.
    s = current();
    s.open();
    s.frame({ type: "ack", id: s.last("subscribe").id, offset: 0, epoch: "e" });
    s.drop();
    mock.timers.tick(500);
    assert.equal(sockets.length, 6);
    assert.deepEqual(states.slice(0, 3), ["connecting", "disconnected", "connecting"]);
  });

  it("calls the url function and getToken for every attempt; a 4001 close reconnects at once", async () => {
    let n = 0;
    let tokens = 0;
    const { sb, sockets } = setup({ getToken: async () => `tok${++tokens}` }, () => `ws://host${++n}/ws`);
    sb.connect();
    await flush();
    sockets[0]?.open();
    sockets[0]?.drop(4001);
    mock.timers.tick(0);
    await flush();
    assert.equal(sockets.length, 2, "reconnected without a backoff (it would be 500 ms)");
    sockets[1]?.drop();
    mock.timers.tick(500);
    await flush();
    assert.deepEqual(
      sockets.map((s) => s.url),
      ["ws://host1/ws?token=tok1", "ws://host2/ws?token=tok2", "ws://host3/ws?token=tok3"],
    );
  });

  it("resends an unacknowledged publish after a drop with the same key, and resolves once", async () => {
    const { sb, sockets, opened } = setup();
    sb.connect();
    let s = opened();
    const results: unknown[] = [];
    const done = sb.publish("chat:1", { text: "hi" }).then((r) => results.push(r));
    const first = s.last("publish");
    assert.equal(typeof first.idempotencyKey, "string");
    assert.ok((first.idempotencyKey as string).length >= 22);
    assert.deepEqual(first.data, { text: "hi" });
    s.drop();
    mock.timers.tick(500);
    s = opened();
    assert.equal(sockets.length, 2);
    const again = s.last("publish");
    assert.equal(again.idempotencyKey, first.idempotencyKey, "same key");
    assert.notEqual(again.id, first.id);
    s.frame({ type: "ack", id: again.id, offset: 7, epoch: "e", duplicate: true });
    s.frame({ type: "ack", id: again.id, offset: 8, epoch: "e" });
    await done;
    assert.deepEqual(results, [{ offset: 7, epoch: "e", duplicate: true }]);
    assert.equal(s.sent.filter((f) => f.type === "publish").length, 1);
    const given = sb.publish("chat:1", 2, { idempotencyKey: "mine" });
    assert.equal(s.last("publish").idempotencyKey, "mine");
    s.frame({ type: "ack", id: s.last("publish").id, offset: 8, epoch: "e" });
    assert.deepEqual(await given, { offset: 8, epoch: "e", duplicate: false });
  });

  it("retries a publish refused as unavailable with the same key; rejects other codes and on timeout", async () => {
    const { sb, opened } = setup({ publishTimeoutMs: 5000 });
    sb.connect();
    const s = opened();
    const retried = sb.publish("chat:1", 1);
    const first = s.last("publish");
    s.frame({ type: "error", id: first.id, code: "unavailable", message: "draining" });
    mock.timers.tick(499);
    assert.equal(s.sent.filter((f) => f.type === "publish").length, 1);
    mock.timers.tick(1);
    const second = s.last("publish");
    assert.equal(second.idempotencyKey, first.idempotencyKey);
    s.frame({ type: "ack", id: second.id, offset: 1, epoch: "e" });
    assert.equal((await retried).offset, 1);

    const refused = sb.publish("news", 1);
    s.frame({ type: "error", id: s.last("publish").id, code: "forbidden", message: "no" });
    await assert.rejects(refused, (err: Error & { code?: string }) => err.code === "forbidden");

    const unanswered = sb.publish("chat:1", 3);
    mock.timers.tick(5000);
    await assert.rejects(unanswered, (err: Error & { code?: string }) => err.code === "timeout");
  });

  it("detects a dead link: ping after the idle interval, reconnect when nothing answers", () => {
    const { sb, sockets, opened, errors } = setup({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 300 });
    sb.connect();
    const s = opened();
    // Frames keep the link alive: no ping while messages arrive.
    for (let i = 0; i < 5; i++) {
      mock.timers.tick(600);
      s.frame({ type: "pong" });
    }
    assert.equal(s.sent.filter((f) => f.type === "ping").length, 0);
    mock.timers.tick(1000);
    const ping = s.last("ping");
    assert.equal(typeof ping.id, "number");
    // The pong answers: still alive.
    s.frame({ type: "pong", id: ping.id });
    mock.timers.tick(999);
    assert.equal(s.sent.filter((f) => f.type === "ping").length, 1);
    mock.timers.tick(1);
    assert.equal(s.sent.filter((f) => f.type === "ping").length, 2);
    // Silence after the ping: the socket is given up and a new one follows the backoff.
    mock.timers.tick(300);
    assert.equal(s.closedByClient, true);
    assert.equal(sb.state, "disconnected");
    assert.ok(errors.some((e) => (e as Error & { code?: string }).code === "timeout"));
    mock.timers.tick(500);
    assert.equal(sockets.length, 2);
  });

  it("reconnects and resumes when a subscribe is never answered on a link that still answers pings", () => {
    const t = setup({ subscribeTimeoutMs: 3000, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 5000 });
    t.sb.subscribe("lost", { onMessage() {} });
    t.sb.connect();
    const first = t.opened();
    first.frame({ type: "ack", id: first.last("subscribe").id, channel: "lost", offset: 4, epoch: "E" });
    first.drop();
    mock.timers.tick(500);
    const second = t.opened();
    // The resume's answer never comes, while pongs do.
    for (let i = 0; i < 2; i++) {
      mock.timers.tick(1000);
      second.frame({ type: "pong", id: second.last("ping").id });
    }
    assert.equal(second.closedByClient, false);
    mock.timers.tick(1000);
    assert.equal(second.closedByClient, true, "the link is given up after subscribeTimeoutMs");
    mock.timers.tick(500);
    const third = t.opened();
    assert.deepEqual(
      [third.last("subscribe").since, third.last("subscribe").epoch],
      [4, "E"],
      "and the channel resumes from its position",
    );
  });

  it("refreshes the token in-band with getToken before it expires", async () => {
    const jwt = (exp: number) =>
      `h.${Buffer.from(JSON.stringify({ sub: "u", exp })).toString("base64url")}.s`;
    const now = Math.floor(Date.now() / 1000);
    const tokens = [jwt(now + 20), jwt(now + 120)];
    const t = setup({ getToken: () => tokens.shift() ?? "none", heartbeatIntervalMs: 60_000 });
    t.sb.connect();
    await Promise.resolve();
    const s = t.opened();
    assert.match(s.url, new RegExp(`token=${jwt(now + 20).replace(/\./g, "\\.")}`));
    mock.timers.tick(14_000);
    await Promise.resolve();
    assert.equal(s.sent.filter((f) => f.type === "refresh").length, 0, "not before the margin (5 s)");
    mock.timers.tick(1500);
    await Promise.resolve();
    await Promise.resolve();
    const refresh = s.last("refresh");
    assert.equal(refresh.token, jwt(now + 120));
    s.frame({ type: "ack", id: refresh.id, exp: now + 120 });
    assert.equal(s.closedByClient, false);
  });

  it("gives up on a socket that does not open within the timeout", () => {
    const { sb, sockets, current } = setup({ heartbeatTimeoutMs: 2000 });
    sb.connect();
    mock.timers.tick(2000);
    assert.equal(current().closedByClient, true);
    mock.timers.tick(500);
    assert.equal(sockets.length, 2);
  });

  it("retries a subscribe refused as unavailable; drops one refused as forbidden", () => {
    const { sb, sockets, opened, errors } = setup();
    const ok = recorder();
    const no = recorder();
    sb.subscribe("busy", ok.handlers);
    sb.subscribe("secret", no.handlers);
    sb.connect();
    let s = opened();
    const [busy, secret] = s.sent;
    s.frame({ type: "error", id: busy?.id, code: "unavailable", message: "starting" });
    s.frame({ type: "error", id: secret?.id, code: "forbidden", message: "not granted" });
    assert.deepEqual(
      no.errors.map((e) => (e as Error & { code?: string }).code),
      ["forbidden"],
    );
    assert.ok(errors.some((e) => (e as Error & { code?: string }).code === "forbidden"));
    mock.timers.tick(500);
    const retry = s.last("subscribe");
    assert.equal(retry.channel, "busy");
    assert.notEqual(retry.id, busy?.id);
    s.frame({ type: "ack", id: retry.id, offset: 3, epoch: "e" });
    assert.equal(ok.subscribed.length, 1);
    s.drop();
    mock.timers.tick(500);
    s = opened();
    assert.equal(sockets.length, 2);
    assert.deepEqual(
      s.sent.map((f) => f.channel),
      ["busy"],
      "the refused channel is not subscribed again",
    );
  });

  it("unsubscribe tells the server and stops delivery", () => {
    const { sb, opened } = setup();
    const r = recorder();
    const sub = sb.subscribe("news", r.handlers);
    sb.connect();
    const s = opened();
    s.frame({ type: "ack", id: s.last("subscribe").id, offset: 0, epoch: "e" });
    sub.unsubscribe();
    assert.equal(s.last("unsubscribe").channel, "news");
    s.frame({ type: "message", channel: "news", data: 0, offset: 1 });
    assert.equal(r.got.length, 0);
    assert.doesNotThrow(() => sb.subscribe("news", r.handlers), "may subscribe again");
  });

  it("passes join and leave notices to the channel's handlers; a server unsubscribe drops the subscription", () => {
    const { sb, opened } = setup();
    const seen: string[] = [];
    sb.subscribe("room:1", {
      onMessage() {},
      onJoin: (i) => void seen.push(`join ${i.user}`),
      onLeave: (i) => void seen.push(`leave ${i.user}`),
      onUnsubscribed: (reason) => void seen.push(`unsubscribed ${reason}`),
    });
    sb.connect();
    let s = opened();
    s.frame({ type: "ack", id: s.last("subscribe").id, offset: 0, epoch: "e" });
    s.frame({ type: "join", channel: "room:1", info: { client: "c1", user: "ann", info: null } });
    s.frame({ type: "leave", channel: "room:1", info: { client: "c1", user: "ann", info: null } });
    s.frame({ type: "unsubscribed", channel: "room:1", reason: "server" });
    s.frame({ type: "join", channel: "room:1", info: { client: "c2", user: "bo", info: null } });
    assert.deepEqual(seen, ["join ann", "leave ann", "unsubscribed server"]);
    s.drop();
    mock.timers.tick(10_000);
    s = opened();
    assert.equal(
      s.sent.filter((f) => f.type === "subscribe").length,
      0,
      "not subscribed again after a reconnect",
    );
  });

  it("disconnect() is final: socket closed, no reconnect, pending publishes rejected", async () => {
    const { sb, sockets, opened, states } = setup();
    sb.subscribe("news", { onMessage() {} });
    sb.connect();
    const s = opened();
    const pending = sb.publish("chat:1", 1);
    sb.disconnect();
    assert.equal(sb.state, "closed");
    assert.equal(s.closedByClient, true);
    await assert.rejects(pending, (err: Error & { code?: string }) => err.code === "closed");
    await assert.rejects(sb.publish("chat:1", 2), (err: Error & { code?: string }) => err.code === "closed");
    s.drop(); // a late close event from the old socket changes nothing
    mock.timers.tick(60_000);
    assert.equal(sockets.length, 1);
    assert.equal(states.at(-1), "closed");
    assert.throws(() => sb.connect());
  });

  it("disconnect() while the token is being fetched creates no socket", async () => {
    let release: (t: string) => void = () => {};
    const { sb, sockets } = setup({ getToken: () => new Promise<string>((r) => (release = r)) });
    sb.connect();
    sb.disconnect();
    release("t");
    await flush();
    assert.equal(sockets.length, 0);
    assert.equal(sb.state, "closed");
  });

  it("a handler that throws is reported and does not stop later messages", () => {
    const { sb, opened, errors } = setup();
    const seen: number[] = [];
    sb.subscribe("news", {
      onMessage: (_d, { offset }) => {
        seen.push(offset);
        if (offset === 1) throw new Error("app bug");
      },
    });
    sb.connect();
    const s = opened();
    s.frame({ type: "ack", id: s.last("subscribe").id, offset: 0, epoch: "e" });
    s.frame({ type: "message", channel: "news", data: 0, offset: 1 });
    s.frame({ type: "message", channel: "news", data: 0, offset: 2 });
    assert.deepEqual(seen, [1, 2]);
    assert.ok(errors.some((e) => e.message === "app bug"));
  });
  it("rpc: waits for the connection, resolves with the data, rejects with code and backendCode, never resends", async () => {
    const { sb, opened, current } = setup();
    const first = sb.rpc("echo", { n: 1 });
    sb.connect();
    let s = opened();
    const sent = s.last("rpc");
    assert.deepEqual([sent.method, sent.data], ["echo", { n: 1 }]);
    s.frame({ type: "rpc", id: sent.id, data: { n: 1 } });
    assert.deepEqual(await first, { n: 1 });
    const refused = sb.rpc("fail");
    s.frame({ type: "error", id: s.last("rpc").id, code: "forbidden", message: "nope", backendCode: 42 });
    await assert.rejects(refused, (e: Error & { code?: string; backendCode?: unknown }) => {
      return e.code === "forbidden" && e.backendCode === 42 && e.message === "nope";
    });
    const lost = sb.rpc("slow");
    s.drop();
    await assert.rejects(lost, (e: Error & { code?: string }) => e.code === "connection_lost");
    mock.timers.tick(500);
    s = opened();
    assert.equal(current().sent.filter((f) => f.type === "rpc").length, 0, "a lost call is not sent again");
  });

  it("retries a subscribe refused as backend_unavailable with a backoff, on the same socket", () => {
    const { sb, opened } = setup();
    const r = recorder();
    sb.subscribe("gated", r.handlers);
    sb.connect();
    const s = opened();
    const first = s.last("subscribe");
    s.frame({ type: "error", id: first.id, code: "backend_unavailable", message: "hook timed out" });
    assert.deepEqual(r.errors, []);
    mock.timers.tick(500);
    const retry = s.last("subscribe");
    assert.notEqual(retry.id, first.id);
    s.frame({ type: "ack", id: retry.id, offset: 0, epoch: "e" });
    assert.equal(r.subscribed.length, 1);
  });

  it("a disconnect frame with reconnect false, or close 4010, ends the client; 4009 reconnects", async () => {
    const told = setup();
    const pending = told.sb.publish("chat:1", 1);
    told.sb.connect();
    let s = told.opened();
    s.frame({ type: "disconnect", code: 4011, reason: "banned", reconnect: false });
    s.drop(4011);
    assert.equal(told.sb.state, "closed");
    await assert.rejects(pending, (e: Error & { code?: string }) => e.code === "disconnected");
    assert.ok(told.errors.some((e) => (e as Error & { code?: string }).code === "disconnected"));
    mock.timers.tick(60_000);
    assert.equal(told.sockets.length, 1, "no reconnect");

    const closed = setup();
    closed.sb.connect();
    closed.opened().drop(4010);
    assert.equal(closed.sb.state, "closed");
    mock.timers.tick(60_000);
    assert.equal(closed.sockets.length, 1);

    const again = setup();
    again.sb.connect();
    again.opened().drop(4009);
    assert.equal(again.sb.state, "disconnected");
    mock.timers.tick(500);
    s = again.opened();
    assert.equal(again.sockets.length, 2);
    assert.equal(again.sb.state, "connected");
  });
});
