/**
 * What history costs and what it cannot break, against a real server: a spray of big client publishes to random
 * channels and of subscribe-only traffic stays within --history-max-bytes, leaves no channel state behind that holds
 * nothing, and a resume whose history is larger than --max-buffered arrives whole, without a slow-consumer close.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { RawClient, SioClient } from "../helpers/clients.js";
import { type ServerProcess, startServer, until } from "../helpers/server.js";

type BusStatus = { channels: number; historyBytes: number; historyMessages: number; historyEvicted: number };

async function busStatus(server: ServerProcess): Promise<BusStatus & { subscribed: number }> {
  const s = (await server.status()) as unknown as { bus: BusStatus; channels: number };
  return { ...s.bus, subscribed: s.channels };
}

/** Resident memory of one process, bytes (the primary holds history). */
function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  return Number(line?.split(/\s+/)[1]) * 1024;
}

describe("history within its bounds", { timeout: 180_000 }, () => {
  const CAP = 8 * 1024 * 1024;
  let server: ServerProcess;

  before(async () => {
    server = await startServer([
      "--workers",
      "2",
      "--history-max-bytes",
      String(CAP),
      "--client-rate",
      "2000",
      "--max-subscriptions",
      "5000",
    ]);
  });

  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it("holds at most --history-max-bytes through a spray of 32 KiB publishes and subscribe-only channels", async () => {
    const rssBefore = rssOf(server.pid);
    // Subscribe-only traffic: thousands of channels joined and left; none may stay behind.
    const watcher = await RawClient.open(server.wsUrl);
    const ids = Array.from({ length: 3000 }, (_, i) =>
      watcher.send({ type: "subscribe", channel: `idle:${i}` }),
    );
    for (const id of ids) assert.equal((await watcher.waitFor((f) => f.id === id, 20_000)).type, "ack");
    assert.equal((await busStatus(server)).channels, 3000);
    watcher.close();
    await until(
      async () => (await busStatus(server)).channels === 0,
      10_000,
      "subscribe-only channels forgotten",
    );

    // Five anonymous clients publish 32 KiB messages to random chat channels, 128 MiB (16 times the cap) per round.
    const blob = "z".repeat(32 * 1024);
    const perClient = 800;
    const spray = async (round: number) => {
      const publishers = await Promise.all(Array.from({ length: 5 }, () => RawClient.open(server.wsUrl)));
      await Promise.all(
        publishers.map(async (p, k) => {
          for (let i = 0; i < perClient; i += 50) {
            const batch = Array.from({ length: 50 }, (_, j) =>
              p.send({
                type: "publish",
                channel: `chat:${round}-${k}-${(i + j) % 400}`,
                data: { blob, i: i + j },
              }),
            );
            for (const id of batch) assert.equal((await p.waitFor((f) => f.id === id, 20_000)).type, "ack");
          }
        }),
      );
      for (const p of publishers) p.close();
      return rssOf(server.pid) - rssBefore;
    };
    const afterFirst = await spray(1);
    const afterSecond = await spray(2);

    const s = await busStatus(server);
    console.log(
      `spray: 2 × ${5 * perClient} × 32 KiB published; history ${(s.historyBytes / 2 ** 20).toFixed(1)} MiB in ` +
        `${s.historyMessages} messages on ${s.channels} channels, ${s.historyEvicted} evicted; primary RSS ` +
        `+${(afterFirst / 2 ** 20).toFixed(1)} MiB after the first 128 MiB, +${(afterSecond / 2 ** 20).toFixed(1)} after the second`,
    );
    assert.ok(s.historyBytes <= CAP, `history holds ${s.historyBytes} bytes`);
    assert.equal(
      s.historyEvicted,
      2 * 5 * perClient - s.historyMessages,
      "everything not held was counted as evicted",
    );
    assert.ok(s.channels <= s.historyMessages, "every channel state left holds history");
    assert.equal(s.subscribed, 0);
    // Memory does not follow the volume: a second round of 128 MiB adds at most half of it (an unbounded history
    // would add all of it; RSS moves some tens of MiB with the GC on a busy box). What the first round added is the
    // cap plus the primary's heap headroom under this traffic.
    assert.ok(
      afterSecond - afterFirst < 64 * 2 ** 20,
      `the second round added ${((afterSecond - afterFirst) / 2 ** 20).toFixed(1)} MiB`,
    );
    assert.ok(
      afterSecond < CAP + 160 * 2 ** 20,
      `primary RSS grew ${(afterSecond / 2 ** 20).toFixed(1)} MiB`,
    );
  });

  it("sends a resume over more history than --max-buffered whole, paced, raw and Socket.IO", async () => {
    const paced = await startServer([
      "--workers",
      "1",
      "--max-buffered",
      String(256 * 1024),
      "--history-size",
      "100",
    ]);
    try {
      const blob = "p".repeat(30 * 1024);
      const first = await paced.publish("replay", { blob, n: 0 });
      for (let n = 1; n < 60; n++) await paced.publish("replay", { blob, n });
      // 60 × 30 KiB = 1.8 MiB of history, seven times --max-buffered.
      const raw = await RawClient.open(paced.wsUrl);
      const reply = await raw.request({ type: "subscribe", channel: "replay", since: 0, epoch: first.epoch });
      assert.equal(reply.type, "ack");
      assert.equal(reply.recovered, true);
      await paced.publish("replay", { blob: "live", n: 60 });
      const got = await raw.waitForMessages("replay", 61, 20_000);
      assert.deepEqual(
        got.map((m) => (m.data as { n: number }).n),
        [...Array(61).keys()],
        "history then live, in order",
      );
      assert.equal(raw.closeCode, null, "not closed as a slow consumer");

      const sio = await SioClient.open(paced.url);
      const ack = (await sio.socket
        .timeout(10_000)
        .emitWithAck("subscribe", { channel: "replay", since: 0, epoch: first.epoch })) as Record<
        string,
        unknown
      >;
      assert.deepEqual([ack.ok, ack.recovered, ack.offset], [true, true, 61]);
      await paced.publish("replay", { blob: "live", n: 61 });
      const sioGot = await sio.waitForMessages("replay", 62, 20_000);
      assert.deepEqual(
        sioGot.map((m) => (m.data as { n: number }).n),
        [...Array(62).keys()],
      );
      assert.equal(sio.socket.connected, true);
      const status = (await paced.status()) as unknown as { totals: { slowConsumers: number } };
      assert.equal(status.totals.slowConsumers, 0);
      raw.close();
      sio.close();
    } finally {
      await paced.stop();
    }
  });
});
