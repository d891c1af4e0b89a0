/**
 * Zero loss through faults, with the SDK as clients and a publisher that retries with idempotency keys, against
 * real servers and a real redis-server:
 * - a publisher retrying through worker kills (-9) delivers each message once;
 * - a whole host killed (-9): its clients resume on the other host from the history in Redis, losing nothing;
 * - Redis killed and restarted: each client either gets every message or is told (history_gap), never silently
 *   short.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import { deliveryProblems, PublishStream, RawClient, SioClient } from "../helpers/load.js";
import { type RedisServer, startRedis } from "../helpers/redis-server.js";
import { type ServerProcess, startServer, until } from "../helpers/server.js";

/** Waits until every client has the stream's last message, then returns. */
async function drained(stream: PublishStream, clients: { stats: RawClient["stats"] }[], final: number) {
  await stream.stop();
  await stream.publishOne(final);
  await until(
    () => clients.every((c) => c.stats.received.some((r) => r.n === final)),
    20_000,
    `message ${final} on every client`,
    50,
  );
}

function workerPids(status: { workers: { pid: number; state: string }[] }): number[] {
  return status.workers.filter((w) => w.state === "ready").map((w) => w.pid);
}

describe("recovery through faults", { timeout: 180_000 }, () => {
  it("a publisher that retries through worker kills delivers each message once", async (t) => {
    // History for 10 s of the stream: clients cut by a kill come back well within it.
    const server = await startServer(["--workers", "2", "--history-size", "1000"]);
    const clients: RawClient[] = [];
    const stream = new PublishStream(server.url, "orders", 10, { retry: true });
    try {
      for (let i = 0; i < 6; i++) clients.push(new RawClient(server.wsUrl, "orders"));
      await until(() => clients.every((c) => c.stats.subscribed), 10_000, "subscribed");
      for (const round of [1, 2]) {
        await until(() => stream.acked.length >= round * 100, 20_000, `${round * 100} publishes`);
        const [victim] = workerPids(await server.status());
        process.kill(victim as number, "SIGKILL");
        await until(
          async () => workerPids(await server.status()).length === 2,
          20_000,
          "the worker restarted",
        );
      }
      await until(() => clients.every((c) => c.stats.subscribed), 20_000, "every client back");
      await stream.stop();
      // A publish whose answer is lost after it was delivered (what a kill between sequencing and the reply
      // does, made certain here): the retry must be answered as a repeat, with the first offset.
      for (let n = 900_000; n < 900_010; n++) {
        const body = JSON.stringify({ channel: "orders", data: { n }, idempotencyKey: `lost-${n}` });
        // Sent again only if its connection failed before the message was delivered (a reset right after a
        // kill has been seen): the answer must be lost after delivery for this check to mean anything.
        for (let attempt = 1; ; attempt++) {
          let failed = false;
          const lost = http.request(`${server.url}/api/publish`, { method: "POST", agent: false });
          lost.on("error", () => {
            failed = true;
          });
          lost.end(body);
          const delivered = () => clients.every((c) => c.stats.received.some((r) => r.n === n));
          await until(() => delivered() || failed, 10_000, `message ${n}`);
          lost.destroy();
          if (delivered()) break;
          assert.ok(attempt < 3, `the publish of ${n} failed ${attempt} times before it was delivered`);
        }
        const retry = await fetch(`${server.url}/api/publish`, { method: "POST", body });
        const answer = (await retry.json()) as { offset: number; epoch: string; duplicate?: boolean };
        assert.equal(answer.duplicate, true, "the retry is recognised");
        const first = clients[0]?.stats.received.find((r) => r.n === n);
        assert.equal(answer.offset, first?.offset, "and answered with the first offset");
        stream.acked.push({ n, offset: answer.offset, epoch: answer.epoch, duplicate: true });
      }
      await drained(stream, clients, 1_000_000);
      const duplicates = stream.acked.filter((a) => a.duplicate).length;
      t.diagnostic(
        `publishes=${stream.acked.length} retries through the kills=${stream.retries} answered-as-duplicate=${duplicates} ` +
          `clients reconnected=${clients.filter((c) => c.stats.connects > 1).length}`,
      );
      assert.deepEqual(stream.failures, [], "every publish was acknowledged in the end");
      for (const c of clients) {
        const p = deliveryProblems(c.stats, stream.acked);
        const why = {
          gaps: c.stats.gaps,
          connects: c.stats.connects,
          failed: c.stats.failedAttempts,
          errors: c.stats.errors,
        };
        assert.deepEqual(
          p,
          { missing: 0, duplicates: 0, outOfOrder: 0, foreignEpoch: 0 },
          JSON.stringify(why),
        );
        assert.deepEqual(c.stats.gaps, []);
      }
    } finally {
      await stream.stop();
      for (const c of clients) c.close();
      assert.equal(await server.stop(), 0);
    }
  });

  it("a whole host killed: its clients resume on the other host from Redis, losing nothing", async (t) => {
    const redis = await startRedis();
    const args = ["--workers", "1", "--redis", redis.url];
    const a = await startServer([...args, "--instance", "a"]);
    const b = await startServer([...args, "--instance", "b"]);
    let aAlive = true;
    const clients: RawClient[] = [];
    // The publisher talks to B: A's end must not stop the stream (a balancer would send it elsewhere too).
    const stream = new PublishStream(b.url, "feed", 10, { retry: true });
    try {
      for (let i = 0; i < 20; i++) clients.push(new RawClient(() => (aAlive ? a.wsUrl : b.wsUrl), "feed"));
      for (let i = 0; i < 5; i++) clients.push(new RawClient(b.wsUrl, "feed"));
      await until(() => clients.every((c) => c.stats.subscribed), 10_000, "subscribed");
      await until(() => stream.acked.length >= 50, 10_000, "publishes before the kill");
      aAlive = false;
      await a.stop("SIGKILL");
      await until(() => clients.every((c) => c.stats.subscribed), 30_000, "every client resumed on B");
      await until(() => stream.acked.length >= 150, 10_000, "publishes after the kill");
      await drained(stream, clients, 1_000_000);
      const moved = clients.slice(0, 20);
      t.diagnostic(
        `clients=${clients.length} moved=${moved.filter((c) => c.stats.connects > 1).length} publishes=${stream.acked.length} ` +
          `recovered=${moved.filter((c) => c.stats.recovered > 0).length}`,
      );
      assert.ok(
        moved.every((c) => c.stats.connects === 2),
        "each of A's clients moved once",
      );
      assert.ok(
        moved.every((c) => c.stats.recovered > 0),
        "each resumed from history",
      );
      for (const c of clients) {
        assert.deepEqual(deliveryProblems(c.stats, stream.acked), {
          missing: 0,
          duplicates: 0,
          outOfOrder: 0,
          foreignEpoch: 0,
        });
        assert.deepEqual(c.stats.gaps, []);
      }
    } finally {
      await stream.stop();
      for (const c of clients) c.close();
      await b.stop();
      await redis.destroy();
    }
  });

  it("Redis killed and restarted: every client gets every message or is told of the gap", async (t) => {
    const redis: RedisServer = await startRedis();
    const args = ["--workers", "1", "--redis", redis.url];
    const hosts = [
      await startServer([...args, "--instance", "a"]),
      await startServer([...args, "--instance", "b"]),
    ];
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    const clients: (RawClient | SioClient)[] = [];
    let turn = 0;
    let stream: PublishStream | undefined;
    try {
      for (const host of hosts) {
        for (let i = 0; i < 8; i++) clients.push(new RawClient(host.wsUrl, "ticks"));
        for (let i = 0; i < 4; i++) clients.push(new SioClient(host.url, "ticks"));
      }
      await until(() => clients.every((c) => c.stats.subscribed), 15_000, "subscribed");
      // Every message of the stream is owed to every client: they all subscribed before it began.
      const ticks = new PublishStream(() => (turn++ % 2 === 0 ? a.url : b.url), "ticks", 10, { retry: true });
      stream = ticks;
      await until(() => ticks.acked.length >= 50, 10_000, "publishes before the outage");
      await redis.stop("SIGKILL");
      const killed = ticks.acked.length;
      await until(() => ticks.acked.length >= killed + 50, 10_000, "publishes during the outage");
      await redis.start();
      await until(() => ticks.acked.length >= killed + 150, 20_000, "publishes after the restart");
      await drained(ticks, clients, 1_000_000);

      let told = 0;
      let complete = 0;
      for (const c of clients) {
        const got = new Set(c.stats.received.map((r) => r.n));
        const missing = ticks.acked.filter((m) => !got.has(m.n)).length;
        assert.equal(c.stats.received.length, got.size, `${c.stats.kind}: nothing delivered twice`);
        if (missing > 0) {
          assert.ok(c.stats.gaps.length > 0, `${c.stats.kind} client missed ${missing} messages silently`);
          told += 1;
        } else complete += 1;
      }
      t.diagnostic(
        `clients=${clients.length} complete=${complete} told-of-a-gap=${told} publishes=${ticks.acked.length}`,
      );
      assert.ok(told > 0, "an outage of Redis costs cross-host messages: someone is told");
    } finally {
      await stream?.stop();
      for (const c of clients) c.close();
      for (const h of hosts) await h.stop();
      await redis.destroy();
    }
  });
});
