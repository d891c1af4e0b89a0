/**
 * What one Redis node (one Cluster shard) carries for Switchboard: the publish script (numbering, history, publish)
 * run on a real redis-server as the hosts run it, one message per script, spread over many channels, with `hosts`
 * subscriber connections that each receive every message (a host with subscribers of a channel receives it once,
 * whatever its number of subscribers). Reports scripts/s and the CPU redis-server used for them; the per-core figure
 * (scripts/s ÷ its CPU share) is what to size shards by, since on this box the load generator shares the cores.
 *
 *   npm run build && node dist/bench/redis-shard.js [--hosts 1,3,6] [--seconds 5] [--channels 1000] [--idempotency]
 */
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { type NodeHooks, type Numbering, RedisNode, type ScriptPublish } from "../bus/redis/redis-node.js";
import { RedisNames } from "../bus/redis/redis-wire.js";
import { redisCli, startRedis } from "../harness/redis-server.js";
import { createLogger } from "../log.js";

const PUBLISHERS = 4;
/** Scripts in flight per publisher connection (a busy host's pipeline). */
const IN_FLIGHT = 64;
const DATA = JSON.stringify({ text: "x".repeat(80) });
const NO_HOOKS: NodeHooks = {
  up() {},
  down() {},
  message() {},
  subscribing() {},
  subscribed() {},
  moved() {},
};
/** What a host passes for a channel it has not seen in Redis yet. */
const FIRST_SIGHT: Numbering = {
  knownEpoch: "",
  redisFloor: 0,
  floor: 0,
  newEpoch: "bench1",
  metaTtlMs: 86_400_000,
};

async function cpuSeconds(port: number): Promise<number> {
  const info = await redisCli(port, "INFO", "cpu");
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return user + sys;
}

async function run(port: number, hosts: number, seconds: number, channels: number, keyed: boolean) {
  const names = new RedisNames("bench");
  const subscribers = Array.from({ length: hosts }, () => new Redis({ port, protocol: 3 }));
  let received = 0;
  const all = Array.from({ length: channels }, (_, i) => names.messageChannel(`c${i}`));
  for (const s of subscribers) {
    s.on("messageBuffer", () => {
      received += 1;
    });
    await s.subscribe(...all);
  }
  // The hosts' own connection class: the same script, arguments and per-turn pipelining.
  const log = createLogger("silent", {});
  const publishers = Array.from(
    { length: PUBLISHERS },
    () =>
      new RedisNode(
        { host: "127.0.0.1", port },
        { auth: {}, sharded: false, name: "bench", hooks: NO_HOOKS, log },
      ),
  );
  await Promise.all(publishers.map((p) => p.whenReady(5000)));
  const message = (n: number): ScriptPublish => {
    const c = `c${n % channels}`;
    return {
      channel: names.messageChannel(c),
      metaKey: names.metaKey(c),
      historyKey: names.historyKey(c),
      idempotencyKey: keyed ? names.idempotencyKey(c, `k${n}`) : null,
      origin: "benchorigin0",
      dataJson: DATA,
      historySize: 100,
      historyTtlMs: 300_000,
      idempotencyWindowMs: keyed ? 300_000 : 0,
    };
  };
  let done = 0;
  let failed = 0;
  let next = 0;
  const until = performance.now() + seconds * 1000;
  const cpu0 = await cpuSeconds(port);
  const t0 = performance.now();
  // Each connection keeps IN_FLIGHT scripts out until the time is up.
  const drive = (node: RedisNode) =>
    new Promise<void>((resolve) => {
      let out = 0;
      const send = () => {
        while (out < IN_FLIGHT && performance.now() < until) {
          out += 1;
          node.publishMessage(message(next++), FIRST_SIGHT, (result) => {
            out -= 1;
            if (result) done += 1;
            else failed += 1;
            send();
          });
        }
        if (out === 0) resolve();
      };
      send();
    });
  await Promise.all(publishers.map(drive));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = (await cpuSeconds(port)) - cpu0;
  await Promise.all(publishers.map((p) => p.close()));
  for (const s of subscribers) s.disconnect();
  return {
    hosts,
    scriptsPerSecond: done / elapsed,
    failed,
    redisCpu: cpu / elapsed,
    received: received / (done * hosts),
  };
}

const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "1,3,6" },
    seconds: { type: "string", default: "5" },
    channels: { type: "string", default: "1000" },
    idempotency: { type: "boolean", default: false },
  },
});
const redis = await startRedis();
try {
  console.log(
    `one redis-server, the publish script as hosts run it (history 100 per channel, ${values.idempotency ? "an idempotency key per message, 5-minute window" : "no idempotency key"}), 4 connections x 64 in flight`,
  );
  console.log("hosts subscribed | scripts/s | redis-server CPU | scripts/s per core | each host received");
  for (const hosts of (values.hosts ?? "").split(",").map(Number)) {
    await redisCli(redis.port, "FLUSHALL");
    const r = await run(
      redis.port,
      hosts,
      Number(values.seconds),
      Number(values.channels),
      values.idempotency === true,
    );
    console.log(
      `${String(r.hosts).padStart(16)} | ${Math.round(r.scriptsPerSecond).toLocaleString("en-US").padStart(9)} | ${(r.redisCpu * 100).toFixed(0).padStart(15)}% | ${Math.round(
        r.scriptsPerSecond / r.redisCpu,
      )
        .toLocaleString("en-US")
        .padStart(
          18,
        )} | ${(r.received * 100).toFixed(1)}%${r.failed > 0 ? ` (${r.failed} scripts failed)` : ""}`,
    );
  }
} finally {
  await redis.destroy();
}
