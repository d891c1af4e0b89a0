import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawClient, SioClient } from "../helpers/clients.js";
import { type ServerProcess, startServer, until } from "../helpers/server.js";

/** What a client of either protocol got on "news": the published index and the offset. */
function newsOf(c: RawClient | SioClient): { i: number; offset: number }[] {
  const got = c instanceof RawClient ? c.messages("news") : c.received.filter((m) => m.channel === "news");
  return got.map((m) => ({ i: (m.data as { i: number }).i, offset: m.offset as number }));
}

describe("delivery across workers", () => {
  let server: ServerProcess;
  const raw: RawClient[] = [];
  const sio: SioClient[] = [];

  before(async () => {
    server = await startServer(["--workers", "3"]);
    for (let i = 0; i < 6; i++) raw.push(await RawClient.open(server.wsUrl));
    for (let i = 0; i < 3; i++) sio.push(await SioClient.open(server.url, ["websocket"]));
    for (let i = 0; i < 3; i++) sio.push(await SioClient.open(server.url, ["polling"]));
  });

  after(async () => {
    for (const c of raw) c.close();
    for (const c of sio) c.close();
    const code = await server.stop();
    if (code !== 0) console.error(server.lines.filter((l) => l.level !== 30 || /drain/.test(String(l.msg))));
    assert.equal(code, 0);
  });

  it("spreads connections over every worker", async () => {
    const status = await until(
      async () => {
        const s = await server.status();
        const counts = s.workers.map(
          (w) => w.stats as { rawConnections: number; sioConnections: number } | null,
        );
        return counts.every((c) => c && c.rawConnections + c.sioConnections > 0) ? s : null;
      },
      5000,
      "every worker to report connections",
    );
    assert.equal(status.workers.length, 3);
  });

  it("delivers an HTTP publish to every raw and Socket.IO subscriber exactly once, in order", async () => {
    const epochs = new Set<unknown>();
    for (const c of raw) {
      const ack = await c.subscribe("news");
      assert.deepEqual(ack, {
        type: "ack",
        id: c.frames.at(-1)?.id,
        channel: "news",
        offset: 0,
        epoch: ack.epoch,
      });
      epochs.add(ack.epoch);
    }
    for (const c of sio) {
      const ack = (await c.subscribe("news")) as { epoch?: unknown };
      assert.deepEqual(ack, { ok: true, offset: 0, epoch: ack.epoch, recovered: false });
      epochs.add(ack.epoch);
    }
    assert.equal(epochs.size, 1, "one numbering on every worker, for both protocols");
    assert.equal(typeof [...epochs][0], "string");
    const offsets: number[] = [];
    for (let i = 0; i < 20; i++) offsets.push((await server.publish("news", { i })).offset);
    assert.deepEqual(
      offsets,
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    await Promise.all([...raw, ...sio].map((c) => c.waitForMessages("news", 20)));
    await new Promise((r) => setTimeout(r, 100)); // a duplicate would arrive right behind
    const expected = offsets.map((offset, i) => ({ i, offset }));
    for (const c of [...raw, ...sio]) assert.deepEqual(newsOf(c), expected, "each message once, in order");
  });

  it("delivers a batch publish in order with consecutive offsets", async () => {
    const res = await fetch(`${server.url}/api/publish`, {
      method: "POST",
      body: JSON.stringify({ messages: [1, 2, 3].map((n) => ({ channel: "news", data: n })) }),
    });
    const body = (await res.json()) as { offsets: number[] };
    assert.equal(res.status, 200);
    assert.deepEqual(body.offsets, [21, 22, 23]);
    const got = await raw[5]?.waitForMessages("news", 23);
    assert.deepEqual(
      got?.slice(20).map((m) => m.data),
      [1, 2, 3],
    );
  });

  it("delivers client publishes from both protocols to both protocols, ordered per publisher", async () => {
    for (const c of raw) await c.subscribe("chat:room");
    for (const c of sio) await c.subscribe("chat:room");
    const publisher = raw[0] as RawClient;
    for (let i = 0; i < 10; i++)
      publisher.send({ type: "publish", channel: "chat:room", data: { from: "raw", i } });
    const sioPublisher = sio[4] as SioClient;
    for (let i = 0; i < 10; i++) {
      const ack = await sioPublisher.socket.emitWithAck("publish", "chat:room", { from: "sio", i });
      assert.equal(ack.ok, true);
    }
    for (const c of [...raw, ...sio]) {
      const got = await c.waitForMessages("chat:room", 20);
      const data = got.map((m) => m.data as { from: string; i: number });
      for (const from of ["raw", "sio"]) {
        assert.deepEqual(
          data.filter((d) => d.from === from).map((d) => d.i),
          [...Array(10).keys()],
          `${from} order`,
        );
      }
    }
  });

  it("stops delivering after unsubscribe", async () => {
    const c = raw[1] as RawClient;
    assert.equal((await c.request({ type: "unsubscribe", channel: "news" })).type, "ack");
    const before = c.messages("news").length;
    await server.publish("news", "after");
    await (raw[2] as RawClient).waitFor((f) => f.data === "after");
    // raw[2] may be on another worker. The primary sends each worker one ordered stream, so once c has a marker
    // published after "after" on a channel it still follows, "after" would already have reached c.
    await server.publish("chat:room", "marker");
    await c.waitFor((f) => f.channel === "chat:room" && f.data === "marker");
    assert.equal(c.messages("news").length, before);
    assert.ok(!c.frames.some((f) => f.data === "after"), "no 'after' frame on any channel");
  });

  it("resumes from an offset with `since` and reports a gap beyond history", async () => {
    const c = await RawClient.open(server.wsUrl);
    assert.equal((await c.subscribe("news", 21)).type, "ack");
    const replayed = await c.waitForMessages("news", 3);
    assert.deepEqual(
      replayed.map((m) => m.offset),
      [22, 23, 24],
    );
    c.close();
    const s2 = await startServer(["--workers", "1", "--history-size", "2"]);
    try {
      for (let i = 0; i < 5; i++) await s2.publish("h", i);
      const d = await RawClient.open(s2.wsUrl);
      const reply = await d.subscribe("h", 1);
      assert.equal(reply.type, "error");
      assert.equal(reply.code, "history_gap");
      assert.deepEqual(
        (await d.waitForMessages("h", 2)).map((m) => m.data),
        [3, 4],
      );
      await s2.publish("h", 5);
      assert.deepEqual(
        (await d.waitForMessages("h", 3)).map((m) => m.offset),
        [4, 5, 6],
      );
      d.close();
    } finally {
      await s2.stop();
    }
  });

  it("reports presence across workers with fetchSockets and serverSideEmit, and emits to rooms across workers", async () => {
    const res = await fetch(`${server.url}/api/presence?channel=news`);
    const body = (await res.json()) as { raw: number; socketio: number; sockets: string[] };
    assert.equal(body.raw, 5); // raw[1] unsubscribed
    assert.equal(body.socketio, 6);
    assert.deepEqual(new Set(body.sockets), new Set(sio.map((c) => c.socket.id)));
    const got = sio.map((c) => new Promise((resolve) => c.socket.once("custom", resolve)));
    const emit = await fetch(`${server.url}/api/emit`, {
      method: "POST",
      body: JSON.stringify({ channel: "news", event: "custom", args: [{ hello: "room" }] }),
    });
    assert.equal(emit.status, 200);
    assert.deepEqual(
      await Promise.all(got),
      sio.map(() => ({ hello: "room" })),
    );
  });
});

describe("write passes", () => {
  it("writes a batch's messages to each socket in one write, for both protocols", async (t) => {
    const server = await startServer(["--workers", "1"]);
    const clients: (RawClient | SioClient)[] = [];
    t.after(async () => {
      for (const c of clients) c.close();
      await server.stop();
    });
    for (let i = 0; i < 5; i++) clients.push(await RawClient.open(server.wsUrl));
    for (let i = 0; i < 5; i++) clients.push(await SioClient.open(server.url, ["websocket"]));
    for (const c of clients) await c.subscribe("burst");
    type Stats = { delivered: number; socketWrites: number; at: number };
    const report = async (check: (s: Stats) => boolean) =>
      until(async () => {
        const w = (await server.status()).workers[0]?.stats as Stats | null;
        return w && check(w) ? w : null;
      }, 10_000);
    const subscribedAt = Date.now();
    const before = await report((w) => w.at > subscribedAt);
    const messages = Array.from({ length: 50 }, (_, i) => ({ channel: "burst", data: { i } }));
    const res = await fetch(`${server.url}/api/publish`, {
      method: "POST",
      body: JSON.stringify({ messages }),
    });
    assert.equal(res.status, 200);
    for (const c of clients) {
      const got = await c.waitForMessages("burst", 50);
      assert.deepEqual(
        got.map((m) => (m.data as { i: number }).i),
        [...Array(50).keys()],
      );
    }
    // The batch reaches the worker in one IPC message, so each socket gets its 50 frames in one write.
    const after = await report((w) => w.delivered >= 500);
    assert.equal(after.delivered, 500);
    assert.equal(after.socketWrites - before.socketWrites, 10);
  });
});
