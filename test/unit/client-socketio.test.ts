import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { type Gap, type SocketIOLike, SocketIOSubscriptions } from "../../src/client/index.js";

type Emitted = { event: string; args: unknown[] };
type Ack = (reply: unknown) => void;

/** A socket.io-client Socket the test plays the server of. */
class FakeSocket implements SocketIOLike {
  connected = false;
  readonly emitted: Emitted[] = [];
  readonly #listeners = new Map<string, Set<(...args: unknown[]) => void>>();
  on(event: string, listener: (...args: unknown[]) => void): this {
    const set = this.#listeners.get(event) ?? new Set();
    set.add(listener);
    this.#listeners.set(event, set);
    return this;
  }
  off(event: string, listener: (...args: unknown[]) => void): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }
  emit(event: string, ...args: unknown[]): this {
    assert.ok(this.connected, `${event} emitted only while connected`);
    this.emitted.push({ event, args });
    return this;
  }
  // The server's side:
  fire(event: string, ...args: unknown[]): void {
    for (const l of this.#listeners.get(event) ?? []) l(...args);
  }
  connect(): void {
    this.connected = true;
    this.fire("connect");
  }
  disconnect(): void {
    this.connected = false;
    this.fire("disconnect", "transport close");
  }
  listenerCount(): number {
    return [...this.#listeners.values()].reduce((n, s) => n + s.size, 0);
  }
  /** The last emit of an event, with its ack callback split off. */
  last(event: string): { args: unknown[]; ack: Ack } {
    const e = this.emitted.filter((x) => x.event === event).at(-1);
    assert.ok(e, `no ${event} emitted; emitted ${JSON.stringify(this.emitted)}`);
    const ack = e.args.at(-1);
    assert.equal(typeof ack, "function", "emitted with an ack");
    return { args: e.args.slice(0, -1), ack: ack as Ack };
  }
  count(event: string): number {
    return this.emitted.filter((x) => x.event === event).length;
  }
}

function setup() {
  const socket = new FakeSocket();
  const subs = new SocketIOSubscriptions(socket, { random: () => 1 });
  const gaps: Gap[] = [];
  subs.on("gap", (g) => void gaps.push(g));
  return { socket, subs, gaps };
}

function recorder() {
  const got: number[] = [];
  const subscribed: unknown[] = [];
  const gaps: Gap[] = [];
  const errors: Error[] = [];
  return {
    got,
    subscribed,
    gaps,
    errors,
    handlers: {
      onMessage: (_data: unknown, meta: { offset: number }) => void got.push(meta.offset),
      onSubscribed: (s: unknown) => void subscribed.push(s),
      onGap: (g: Gap) => void gaps.push(g),
      onError: (e: Error) => void errors.push(e),
    },
  };
}

describe("SocketIOSubscriptions (fake socket)", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "Date"] }));
  afterEach(() => mock.timers.reset());

  it("subscribes on connect with the channel name, and resumes with since and epoch on every reconnect", () => {
    const { socket, subs } = setup();
    const r = recorder();
    const sub = subs.subscribe("news", r.handlers);
    assert.equal(socket.emitted.length, 0, "nothing while disconnected");
    socket.connect();
    let s = socket.last("subscribe");
    assert.deepEqual(s.args, ["news"]);
    s.ack({ ok: true, offset: 41, epoch: "e1", recovered: false });
    assert.deepEqual([sub.offset, sub.epoch], [41, "e1"]);
    socket.fire("message", "news", "a", { offset: 42 });
    socket.disconnect();
    socket.connect();
    s = socket.last("subscribe");
    assert.deepEqual(s.args, [{ channel: "news", since: 42, epoch: "e1" }]);
    s.ack({ ok: true, offset: 44, epoch: "e1", recovered: true });
    assert.deepEqual(r.subscribed, [
      { offset: 41, epoch: "e1", recovered: false },
      { offset: 44, epoch: "e1", recovered: true },
    ]);
    assert.equal(socket.count("subscribe"), 2);
  });

  it("subscribes at once when the socket is already connected, and not twice on its connect", () => {
    const { socket, subs } = setup();
    socket.connected = true;
    subs.subscribe("a", { onMessage() {} });
    assert.deepEqual(socket.last("subscribe").args, ["a"]);
    socket.fire("connect"); // an app that subscribes from its own connect listener, ahead of the wrapper's
    assert.equal(socket.count("subscribe"), 1);
  });

  it("drops messages whose offset is not above the last one received", () => {
    const { socket, subs } = setup();
    const r = recorder();
    subs.subscribe("news", r.handlers);
    socket.connect();
    socket.last("subscribe").ack({ ok: true, offset: 10, epoch: "e" });
    for (const o of [10, 11, 12, 11, 12, 13]) socket.fire("message", "news", o, { offset: o });
    socket.fire("message", "other", 0, { offset: 99 });
    assert.deepEqual(r.got, [11, 12, 13]);
  });

  it("a history_gap ack keeps the position for the same epoch and takes it for another", () => {
    const { socket, subs, gaps } = setup();
    const same = recorder();
    const other = recorder();
    const a = subs.subscribe("a", { ...same.handlers, since: 5, epoch: "e" });
    const b = subs.subscribe("b", { ...other.handlers, since: 5, epoch: "old" });
    socket.connect();
    const [subA, subB] = socket.emitted.map((e) => e.args.at(-1) as Ack);
    subA?.({
      error: { code: "history_gap", reason: "history_trimmed", message: "m", offset: 9, epoch: "e" },
    });
    subB?.({
      error: { code: "history_gap", reason: "epoch_mismatch", message: "m", offset: 1, epoch: "new" },
    });
    assert.deepEqual([a.offset, a.epoch], [5, "e"]);
    assert.deepEqual([b.offset, b.epoch], [1, "new"]);
    assert.deepEqual(
      gaps.map((g) => [g.channel, g.reason, g.offset, g.epoch]),
      [
        ["a", "history_trimmed", 5, "e"],
        ["b", "epoch_mismatch", 1, "new"],
      ],
    );
    assert.equal(same.gaps.length, 1);
    socket.fire("message", "a", 0, { offset: 7 });
    socket.fire("message", "b", 0, { offset: 1 });
    socket.fire("message", "b", 0, { offset: 2 });
    assert.deepEqual(same.got, [7]);
    assert.deepEqual(other.got, [2]);
  });

  it("an unsolicited gap event takes its position", () => {
    const { socket, subs, gaps } = setup();
    const r = recorder();
    const sub = subs.subscribe("news", r.handlers);
    socket.connect();
    socket.last("subscribe").ack({ ok: true, offset: 30, epoch: "e" });
    socket.fire("gap", "news", { offset: 3, epoch: "e2", reason: "messages_lost", message: "lost" });
    assert.deepEqual([sub.offset, sub.epoch], [3, "e2"]);
    assert.deepEqual(r.gaps, [
      { channel: "news", reason: "messages_lost", message: "lost", offset: 3, epoch: "e2" },
    ]);
    assert.equal(gaps.length, 1);
    socket.fire("message", "news", 0, { offset: 4 });
    assert.deepEqual(r.got, [4]);
  });

  it("retries a subscribe refused as unavailable and drops one refused as forbidden", () => {
    const { socket, subs } = setup();
    const no = recorder();
    subs.subscribe("busy", { onMessage() {} });
    subs.subscribe("secret", no.handlers);
    socket.connect();
    const [busy, secret] = socket.emitted.map((e) => e.args.at(-1) as Ack);
    busy?.({ error: { code: "unavailable", message: "starting" } });
    secret?.({ error: { code: "forbidden", message: "no" } });
    assert.equal((no.errors[0] as Error & { code?: string }).code, "forbidden");
    mock.timers.tick(500);
    assert.deepEqual(socket.last("subscribe").args, ["busy"]);
    socket.disconnect();
    socket.connect();
    assert.deepEqual(socket.last("subscribe").args, ["busy"], "secret is not subscribed again");
  });

  it("publishes with an idempotency key, sends again after a reconnect with the same key, resolves once", async () => {
    const { socket, subs } = setup();
    const done = subs.publish("chat:1", { t: 1 });
    assert.equal(socket.count("publish"), 0, "waits for a connection");
    socket.connect();
    const first = socket.last("publish");
    const key = (first.args[2] as { idempotencyKey: string }).idempotencyKey;
    assert.deepEqual(first.args.slice(0, 2), ["chat:1", { t: 1 }]);
    assert.ok(key.length >= 22);
    socket.disconnect();
    first.ack({ ok: true, offset: 1, epoch: "e" }); // an ack of the old connection is not trusted
    socket.connect();
    const again = socket.last("publish");
    assert.equal((again.args[2] as { idempotencyKey: string }).idempotencyKey, key);
    again.ack({ ok: true, offset: 5, epoch: "e", duplicate: true });
    again.ack({ ok: true, offset: 6, epoch: "e" });
    assert.deepEqual(await done, { offset: 5, epoch: "e", duplicate: true });
    assert.equal(socket.count("publish"), 2);
    const refused = subs.publish("news", 1);
    socket.last("publish").ack({ error: { code: "forbidden", message: "no" } });
    await assert.rejects(refused, (e: Error & { code?: string }) => e.code === "forbidden");
  });

  it("close() stops listening, unsubscribes and rejects pending publishes", async () => {
    const { socket, subs } = setup();
    const r = recorder();
    subs.subscribe("news", r.handlers);
    socket.connect();
    const pending = subs.publish("chat:1", 1);
    subs.close();
    assert.equal(socket.listenerCount(), 0);
    assert.deepEqual(socket.last("unsubscribe").args, ["news"]);
    await assert.rejects(pending, (e: Error & { code?: string }) => e.code === "closed");
    socket.fire("message", "news", 0, { offset: 1 });
    assert.deepEqual(r.got, []);
  });
  it("rpc: emitted while connected, resolves with the data, rejects with code and backendCode", async () => {
    const { socket, subs } = setup();
    const call = subs.rpc("echo", [1]);
    assert.equal(socket.count("rpc"), 0, "waits for a connection");
    socket.connect();
    const sent = socket.last("rpc");
    assert.deepEqual(sent.args, ["echo", [1]]);
    sent.ack({ ok: true, data: [1] });
    assert.deepEqual(await call, [1]);
    const refused = subs.rpc("fail", null);
    socket.last("rpc").ack({ error: { code: "forbidden", message: "nope", backendCode: 42 } });
    await assert.rejects(
      refused,
      (e: Error & { code?: string; backendCode?: unknown }) => e.backendCode === 42,
    );
    const lost = subs.rpc("slow", null);
    socket.disconnect();
    await assert.rejects(lost, (e: Error & { code?: string }) => e.code === "connection_lost");
  });

  it("asks again after a connect refused as backend_unavailable; not after a disconnect for good", () => {
    const { socket, subs } = setup();
    const errors: Error[] = [];
    subs.on("error", (e) => void errors.push(e));
    let connects = 0;
    const connect = socket.connect.bind(socket);
    socket.connect = () => {
      connects += 1;
      connect();
    };
    socket.fire("connect_error", Object.assign(new Error("down"), { data: { code: "backend_unavailable" } }));
    assert.equal(connects, 0);
    mock.timers.tick(500);
    assert.equal(connects, 1);
    socket.disconnect();
    socket.fire(
      "connect_error",
      Object.assign(new Error("go"), { data: { code: "disconnected", reason: "go" } }),
    );
    mock.timers.tick(60_000);
    assert.equal(connects, 1);
    assert.equal((errors[0] as Error & { code?: string }).code, "disconnected");
  });
});
