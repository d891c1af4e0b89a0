import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { io } from "socket.io-client";
import WebSocket from "ws";
import {
  type ConnectionState,
  type Gap,
  SocketIOSubscriptions,
  type Subscribed,
  Switchboard,
  type SwitchboardOptions,
} from "../../src/client/index.js";
import { publishOnce, type ServerProcess, sleep, startServer, until } from "../helpers/server.js";

/** Quick reconnects keep the test short; the logic is the same as with the defaults. */
const FAST: SwitchboardOptions = { WebSocket, minReconnectDelayMs: 100, maxReconnectDelayMs: 1000 };

/** An SDK client subscribed to one channel that records everything its subscription and connection report. */
function sdkClient(url: string | (() => string), channel: string) {
  const received: number[] = [];
  const offsets: number[] = [];
  const subscribed: Subscribed[] = [];
  const gaps: Gap[] = [];
  const states: ConnectionState[] = [];
  const sb = new Switchboard(url, FAST);
  sb.on("state", (s) => void states.push(s));
  const sub = sb.subscribe(channel, {
    onMessage: (data, meta) => {
      received.push(data as number);
      offsets.push(meta.offset);
    },
    onSubscribed: (s) => void subscribed.push(s),
    onGap: (g) => void gaps.push(g),
  });
  sb.connect();
  /** Connections lost so far (each "connected" after the first is a reconnection). */
  const reconnections = () => states.filter((s) => s === "connected").length - 1;
  return { sb, sub, received, offsets, subscribed, gaps, states, reconnections };
}

/** A publisher sending 1, 2, 3, … on a channel, one every `everyMs`, until stopped. */
function numberedStream(server: ServerProcess, channel: string, everyMs = 20) {
  let sent = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await publishOnce(server, channel, sent + 1);
      sent += 1;
      await sleep(everyMs);
    }
  })();
  return {
    get sent() {
      return sent;
    },
    /** Stops and resolves with how many were published (1…n). */
    async stop(): Promise<number> {
      stopped = true;
      await loop;
      return sent;
    },
  };
}

/** What a client got of 1…total: the test wants { missing: 0, duplicates: 0, outOfOrder: 0 }. */
function tally(received: number[], total: number) {
  const seen = new Set(received);
  let missing = 0;
  for (let n = 1; n <= total; n++) if (!seen.has(n)) missing += 1;
  let outOfOrder = 0;
  for (let i = 1; i < received.length; i++)
    if ((received[i] as number) <= (received[i - 1] as number)) outOfOrder++;
  return {
    missing,
    duplicates: received.length - seen.size,
    outOfOrder,
    extra: received.filter((n) => n > total).length,
  };
}

const CLEAN = { missing: 0, duplicates: 0, outOfOrder: 0, extra: 0 };

async function allSubscribed(clients: { subscribed: Subscribed[] }[]): Promise<void> {
  await until(() => clients.every((c) => c.subscribed.length > 0), 10_000, "every client subscribed");
}

/** Waits (bounded) until every client has `total` messages; the caller then asserts exactly what arrived. */
async function settle(clients: { received: number[] }[], total: number): Promise<void> {
  await until(() => clients.every((c) => c.received.length >= total), 20_000, `${total} messages each`).catch(
    () => {},
  );
}

/** SIGHUP: the primary replaces every worker, one at a time; each drained client gets a reconnect frame. */
async function reloaded(server: ServerProcess): Promise<void> {
  server.child.kill("SIGHUP");
  await server.waitForLog((l) => l.msg === "rolling reload done", 60_000);
}

describe("client SDK against the real server", () => {
  it("connects, subscribes with the channel's position and receives in order", async () => {
    const server = await startServer(["--workers", "2"]);
    const c = sdkClient(server.wsUrl, "sdk:basic");
    try {
      await allSubscribed([c]);
      assert.equal(c.sb.state, "connected");
      assert.equal(typeof c.subscribed[0]?.epoch, "string", "the ack carries the channel's epoch");
      assert.equal(c.subscribed[0]?.offset, 0);
      for (const n of [1, 2, 3]) await server.publish("sdk:basic", n);
      await until(() => c.received.length === 3, 5000, "three messages");
      assert.deepEqual(c.received, [1, 2, 3]);
      assert.deepEqual(c.offsets, [1, 2, 3]);
      assert.equal(c.sub.offset, 3);
      assert.equal(c.sub.epoch, c.subscribed[0]?.epoch);
    } finally {
      c.sb.disconnect();
      await server.stop();
    }
  });

  it("a rolling reload (SIGHUP) moves every client once: nothing missing, nothing duplicated, in order", async () => {
    const server = await startServer(["--workers", "2", "--drain-timeout", "4000", "--history-size", "1000"]);
    const clients = Array.from({ length: 6 }, () => sdkClient(server.wsUrl, "sdk:reload"));
    try {
      await allSubscribed(clients);
      const stream = numberedStream(server, "sdk:reload");
      await until(() => stream.sent >= 20, 10_000, "the stream running");
      await reloaded(server);
      const after = stream.sent;
      await until(() => stream.sent >= after + 20, 10_000, "more messages after the reload");
      const total = await stream.stop();
      await settle(clients, total);
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(tally(c.received, total), CLEAN, `client ${i} of ${total} messages`);
        assert.ok(c.reconnections() >= 1, `client ${i} was moved by the reload`);
        assert.deepEqual(c.gaps, [], `client ${i} resumed without a gap`);
      }
    } finally {
      for (const c of clients) c.sb.disconnect();
      await server.stop();
    }
  });

  it("kill -9 of a worker: its clients reconnect and resume with nothing missing or duplicated", async () => {
    const server = await startServer(["--workers", "2", "--history-size", "1000"]);
    const clients = Array.from({ length: 6 }, () => sdkClient(server.wsUrl, "sdk:kill"));
    try {
      await allSubscribed(clients);
      const stream = numberedStream(server, "sdk:kill");
      await until(() => stream.sent >= 20, 10_000, "the stream running");
      const victim = (await server.status()).workers[0];
      assert.ok(victim, "a worker to kill");
      process.kill(victim.pid, "SIGKILL");
      await until(
        async () => {
          const s = await server.status();
          return (
            s.workers.length === 2 && s.workers.every((w) => w.state === "ready" && w.pid !== victim.pid)
          );
        },
        20_000,
        "a replacement worker",
      );
      await until(() => clients.every((c) => c.sb.state === "connected"), 20_000, "every client connected");
      const after = stream.sent;
      await until(() => stream.sent >= after + 20, 10_000, "more messages after the kill");
      const total = await stream.stop();
      await settle(clients, total);
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(tally(c.received, total), CLEAN, `client ${i} of ${total} messages`);
        assert.deepEqual(c.gaps, [], `client ${i} resumed without a gap`);
      }
      assert.ok(
        clients.some((c) => c.reconnections() >= 1),
        "the killed worker's clients reconnected",
      );
    } finally {
      for (const c of clients) c.sb.disconnect();
      await server.stop();
    }
  });

  it("a restart without Redis is a new numbering: the resume gets history_gap epoch_mismatch", async () => {
    let server = await startServer(["--workers", "1"]);
    const c = sdkClient(() => server.wsUrl, "sdk:restart");
    try {
      await allSubscribed([c]);
      const epoch = c.subscribed[0]?.epoch;
      for (const n of [1, 2, 3]) await server.publish("sdk:restart", n);
      await until(() => c.received.length === 3, 5000, "three messages");
      assert.equal(await server.stop(), 0);
      server = await startServer(["--workers", "1"]);
      const gap = await until(() => c.gaps[0], 20_000, "the gap after the restart");
      assert.equal(gap.reason, "epoch_mismatch");
      assert.equal(gap.channel, "sdk:restart");
      assert.notEqual(gap.epoch, epoch);
      assert.equal(c.sub.epoch, gap.epoch, "the subscription took the new epoch");
      assert.equal(c.sub.offset, gap.offset, "and the new offset");
      await server.publish("sdk:restart", 4);
      await until(() => c.received.length === 4, 5000, "a message of the new numbering");
      assert.deepEqual(c.received, [1, 2, 3, 4]);
    } finally {
      c.sb.disconnect();
      await server.stop();
    }
  });

  it("sb.publish through a reload: every message acknowledged and delivered exactly once", async () => {
    const server = await startServer(["--workers", "2", "--drain-timeout", "4000", "--history-size", "1000"]);
    const publisher = new Switchboard(server.wsUrl, FAST);
    const receiver = sdkClient(server.wsUrl, "chat:sdk-reload");
    publisher.connect();
    try {
      await allSubscribed([receiver]);
      await until(() => publisher.state === "connected", 10_000, "the publisher connected");
      const acks: Promise<{ offset: number; duplicate: boolean }>[] = [];
      let stop = false;
      const loop = (async () => {
        while (!stop) {
          acks.push(publisher.publish("chat:sdk-reload", acks.length + 1));
          await sleep(20);
        }
      })();
      await until(() => acks.length >= 20, 10_000, "publishing");
      await reloaded(server);
      const after = acks.length;
      await until(() => acks.length >= after + 20, 10_000, "more publishes after the reload");
      stop = true;
      await loop;
      const results = await Promise.all(acks);
      const total = acks.length;
      assert.equal(new Set(results.map((r) => r.offset)).size, total, "one offset per message");
      await until(() => receiver.received.length >= total, 20_000, `${total} deliveries`).catch(() => {});
      const seen = new Set(receiver.received);
      assert.equal(receiver.received.length - seen.size, 0, "no message delivered twice");
      assert.equal(seen.size, total, "every message delivered");
      assert.deepEqual(receiver.gaps, []);
      assert.ok(receiver.reconnections() >= 1, "the receiver was moved by the reload too");
    } finally {
      publisher.disconnect();
      receiver.sb.disconnect();
      await server.stop();
    }
  });

  it("the Socket.IO wrapper resumes through a reload: nothing missing or duplicated, recovered reported", async () => {
    const server = await startServer(["--workers", "2", "--drain-timeout", "4000", "--history-size", "1000"]);
    const clients = Array.from({ length: 4 }, () => {
      const socket = io(server.url, {
        transports: ["websocket"],
        forceNew: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 1000,
      });
      const subs = new SocketIOSubscriptions(socket);
      const received: number[] = [];
      const subscribed: Subscribed[] = [];
      const gaps: Gap[] = [];
      subs.subscribe("sio:reload", {
        onMessage: (data) => void received.push(data as number),
        onSubscribed: (s) => void subscribed.push(s),
        onGap: (g) => void gaps.push(g),
      });
      return { socket, subs, received, subscribed, gaps };
    });
    try {
      await allSubscribed(clients);
      for (const c of clients) assert.equal(c.subscribed[0]?.recovered, false);
      const stream = numberedStream(server, "sio:reload");
      await until(() => stream.sent >= 20, 10_000, "the stream running");
      await reloaded(server);
      await until(() => clients.every((c) => c.socket.connected), 20_000, "every socket reconnected");
      const after = stream.sent;
      await until(() => stream.sent >= after + 20, 10_000, "more messages after the reload");
      const total = await stream.stop();
      await settle(clients, total);
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(tally(c.received, total), CLEAN, `socket ${i} of ${total} messages`);
        assert.ok(
          c.subscribed.slice(1).some((s) => s.recovered),
          `socket ${i} resumed with recovered:true (${JSON.stringify(c.subscribed)})`,
        );
        assert.deepEqual(c.gaps, []);
      }
    } finally {
      for (const c of clients) {
        c.subs.close();
        c.socket.disconnect();
      }
      await server.stop();
    }
  });
});
