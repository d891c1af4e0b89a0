/**
 * One contract, three stores: the memory bus and the Redis bus on one real redis-server and on a real 3-master
 * Redis Cluster, driven in this process through the Bus interface (what the primary's worker bridge calls).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Bus, BusSink, JoinReply, Published, Resume } from "../../src/bus/bus.js";
import { MemoryBus } from "../../src/bus/memory-bus.js";
import { RedisBus } from "../../src/bus/redis/redis-bus.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { Namespaces } from "../../src/namespaces.js";
import type { Supervisor } from "../../src/primary/supervisor.js";
import {
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from "../helpers/redis-server.js";
import { until } from "../helpers/server.js";

const NAMESPACES = { short: { historySize: 3 }, live: { historySize: 0 } };

/** What a bus told the primary, per channel, in order. */
class RecordingSink implements BusSink {
  readonly delivered = new Map<string, [number, string][]>();
  readonly notices: [string, number, string][] = [];
  deliver(channel: string, offset: number, dataJson: string): void {
    let list = this.delivered.get(channel);
    if (!list) {
      list = [];
      this.delivered.set(channel, list);
    }
    list.push([offset, dataJson]);
  }
  lost(channel: string, offset: number, epoch: string): void {
    this.notices.push([channel, offset, epoch]);
  }
}

type Store = {
  name: string;
  /** A bus on the store, as one host's primary would make it. */
  make(sink: BusSink): Bus;
  /** True when a second bus on the same store is another host sharing it (not a restart that loses it). */
  shared: boolean;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
};

/** Buses of one store share the prefix: they are hosts of one deployment. */
const prefix = `contract${process.pid}`;
const noSupervisor = { info: () => undefined, workers: [], sendAny() {} } as unknown as Supervisor;
const log = createLogger("silent", {});

function redisStore(name: string, url: () => string, cluster: boolean): Store {
  return {
    name,
    shared: true,
    make(sink) {
      const config = loadConfig({
        env: {
          REDIS_URL: url(),
          REDIS_CLUSTER: String(cluster),
          NAMESPACES: JSON.stringify(NAMESPACES),
          REDIS_PREFIX: prefix,
        },
      });
      return new RedisBus({
        config,
        namespaces: new Namespaces(config),
        sink,
        supervisor: noSupervisor,
        log,
      });
    },
  };
}

let redis: RedisServer | undefined;
let cluster: RedisCluster | undefined;

const stores: Store[] = [
  {
    name: "memory",
    shared: false,
    make(sink) {
      const config = loadConfig({ env: { NAMESPACES: JSON.stringify(NAMESPACES) } });
      return new MemoryBus(sink, {
        namespaces: new Namespaces(config),
        maxHistoryBytes: config.historyMaxBytes,
        idempotencyWindowMs: config.idempotencyWindowMs,
      });
    },
  },
  {
    ...redisStore("redis", () => redis?.url ?? "", false),
    async setup() {
      redis = await startRedis();
    },
    async teardown() {
      await redis?.destroy();
    },
  },
  {
    ...redisStore("redis cluster", () => cluster?.url ?? "", true),
    async setup() {
      cluster = await startRedisCluster(3);
    },
    async teardown() {
      await cluster?.destroy();
    },
  },
];

function publish(
  bus: Bus,
  channel: string,
  data: unknown,
  idempotencyKey: string | null = null,
): Promise<Published> {
  return new Promise((resolve) =>
    bus.publish([{ channel, dataJson: JSON.stringify(data), idempotencyKey }], ([r]) =>
      resolve(r as Published),
    ),
  );
}

/** Subscribes the way the bridge does: interest first, then the join. */
function join(bus: Bus, channel: string, resume: Resume | null = null): Promise<JoinReply> {
  bus.interest(channel, true);
  return new Promise((resolve) => bus.join(channel, resume, resolve));
}

for (const store of stores) {
  describe(`bus contract: ${store.name}`, { timeout: 60_000 }, () => {
    const buses: Bus[] = [];
    let sink: RecordingSink;
    let bus: Bus;
    let n = 0;
    /** A channel of its own for each test. */
    const fresh = (ns = "") => `${ns}${ns ? ":" : ""}c${++n}`;

    before(async () => {
      await store.setup?.();
      sink = new RecordingSink();
      bus = store.make(sink);
      buses.push(bus);
      await bus.start();
    });

    after(async () => {
      for (const b of buses) await b.close();
      await store.teardown?.();
    });

    it("numbers a channel 1, 2, 3 in one epoch and answers a join with the position", async () => {
      const c = fresh();
      const first = await join(bus, c);
      assert.equal(first.offset, 0);
      const results = [await publish(bus, c, 1), await publish(bus, c, 2), await publish(bus, c, 3)];
      assert.deepEqual(
        results.map((r) => r.offset),
        [1, 2, 3],
      );
      assert.ok(results.every((r) => r.epoch === first.epoch && !r.duplicate));
      assert.deepEqual(sink.delivered.get(c), [
        [1, "1"],
        [2, "2"],
        [3, "3"],
      ]);
      const again = await join(bus, c);
      assert.deepEqual([again.offset, again.epoch, again.history, again.gap], [3, first.epoch, [], null]);
    });

    it("resumes with the epoch: exactly the messages after `since`, in order", async () => {
      const c = fresh();
      const { epoch } = await join(bus, c);
      for (let i = 1; i <= 5; i++) await publish(bus, c, { i });
      const reply = await join(bus, c, { since: 2, epoch });
      assert.equal(reply.recovered, true);
      assert.equal(reply.gap, null);
      assert.deepEqual(reply.history, [
        [3, '{"i":3}'],
        [4, '{"i":4}'],
        [5, '{"i":5}'],
      ]);
      const atTop = await join(bus, c, { since: 5, epoch });
      assert.deepEqual([atTop.recovered, atTop.history], [true, []]);
      const noEpoch = await join(bus, c, { since: 4, epoch: null });
      assert.deepEqual(noEpoch.history, [[5, '{"i":5}']], "since without epoch still works");
    });

    it("refuses another numbering's position: epoch_mismatch, or offset_ahead without an epoch", async () => {
      const c = fresh();
      await join(bus, c);
      await publish(bus, c, "a");
      const mismatch = await join(bus, c, { since: 0, epoch: "someone-else" });
      assert.equal(mismatch.gap?.reason, "epoch_mismatch");
      assert.deepEqual(mismatch.history, [], "no replay under numbers that mean other messages");
      const ahead = await join(bus, c, { since: 40, epoch: null });
      assert.equal(ahead.gap?.reason, "offset_ahead");
    });

    it("keeps the namespace's history size; a resume from before it gets history_trimmed and what is left", async () => {
      const c = fresh("short");
      const { epoch } = await join(bus, c);
      for (let i = 1; i <= 6; i++) await publish(bus, c, i);
      const reply = await join(bus, c, { since: 1, epoch });
      assert.equal(reply.gap?.reason, "history_trimmed");
      assert.deepEqual(
        reply.history.map(([o]) => o),
        [4, 5, 6],
      );
      const none = fresh("live");
      const live = await join(bus, none);
      await publish(bus, none, "x");
      assert.equal((await join(bus, none, { since: 0, epoch: live.epoch })).gap?.reason, "history_trimmed");
    });

    it("answers a repeated idempotency key with the first offset and delivers nothing more", async () => {
      const c = fresh();
      await join(bus, c);
      const first = await publish(bus, c, "once", "key-1");
      const repeat = await publish(bus, c, "once", "key-1");
      assert.deepEqual(repeat, { ...first, duplicate: true });
      assert.equal((await publish(bus, fresh(), "once", "key-1")).duplicate, false, "keys are per channel");
      await publish(bus, c, "after", null);
      assert.deepEqual(
        sink.delivered.get(c)?.map(([, d]) => d),
        ['"once"', '"after"'],
      );
    });

    it(
      store.shared
        ? "shares numbering, history and keys with another host on the same store"
        : "starts every numbering over in a new process (its resumes get epoch_mismatch)",
      async () => {
        const c = fresh();
        const { epoch } = await join(bus, c);
        await publish(bus, c, 1);
        await publish(bus, c, 2, "k");
        const otherSink = new RecordingSink();
        const other = store.make(otherSink);
        buses.push(other);
        await other.start();
        const reply = await join(other, c, { since: 0, epoch });
        if (!store.shared) {
          assert.equal(reply.gap?.reason, "epoch_mismatch");
          return;
        }
        assert.equal(reply.recovered, true);
        assert.deepEqual(
          reply.history.map(([o]) => o),
          [1, 2],
        );
        assert.equal((await publish(other, c, 2, "k")).duplicate, true);
        // Each host's subscribers get the other's messages, in one offset order.
        await publish(other, c, 3);
        await publish(bus, c, 4);
        await until(
          () => (sink.delivered.get(c)?.length ?? 0) >= 4 && (otherSink.delivered.get(c)?.length ?? 0) >= 2,
          10_000,
          "deliveries on both hosts",
        );
        assert.deepEqual(
          sink.delivered.get(c)?.map(([o]) => o),
          [1, 2, 3, 4],
        );
        assert.deepEqual(
          otherSink.delivered.get(c)?.map(([o]) => o),
          [3, 4],
        );
        assert.deepEqual([...sink.notices, ...otherSink.notices], [], "nothing was missed");
      },
    );
  });
}
