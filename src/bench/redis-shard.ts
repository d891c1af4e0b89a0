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
import { publishScript, RedisNames } from "../bus/redis/redis-wire.js";
import { redisCli, startRedis } from "../harness/redis-server.js";

const PUBLISHERS = 4;
/** Scripts in flight per publisher connection (a busy host's pipeline). */
const IN_FLIGHT = 64;
const DATA = JSON.stringify({ text: "x".repeat(80) });

async function cpuSeconds(port: number): Promise<number> {
  const info = await redisCli(port, "INFO", "cpu");
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return user + sys;
}

async function run(port: number, hosts: number, seconds: number, channels: number, keyed: boolean) {
  const names = new RedisNames("bench");
  const script = publishScript(false);
  const subscribers = Array.from({ length: hosts }, () => new Redis({ port, protocol: 3 }));
  let received = 0;
  const all = Array.from({ length: channels }, (_, i) => names.messageChannel(`c${i}`));
  for (const s of subscribers) {
    s.on("messageBuffer", () => {
      received += 1;
    });
    await s.subscribe(...all);
  }
  const publishers = Array.from({ length: PUBLISHERS }, () => new Redis({ port }));
  const sha = (await publishers[0]?.script("LOAD", script)) as string;
  let done = 0;
  let next = 0;
  const until = performance.now() + seconds * 1000;
  const cpu0 = await cpuSeconds(port);
  const t0 = performance.now();
  const loop = async (r: Redis) => {
    while (performance.now() < until) {
      const batch = r.pipeline();
      for (let i = 0; i < IN_FLIGHT; i++) {
        const n = next++;
        const c = `c${n % channels}`;
        const meta = names.metaKey(c);
        batch.evalsha(
          sha,
          3,
          meta,
          names.historyKey(c),
          keyed ? names.idempotencyKey(c, `k${n}`) : meta,
          names.messageChannel(c),
          "benchorigin0",
          DATA,
          "",
          0,
          0,
          "bench1",
          100,
          300_000,
          86_400_000,
          keyed ? 300_000 : 0,
          "",
        );
      }
      await batch.exec();
      done += IN_FLIGHT;
    }
  };
  await Promise.all(publishers.map(loop));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = (await cpuSeconds(port)) - cpu0;
  for (const r of [...publishers, ...subscribers]) r.disconnect();
  return {
    hosts,
    scriptsPerSecond: done / elapsed,
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
        .padStart(18)} | ${(r.received * 100).toFixed(1)}%`,
    );
  }
} finally {
  await redis.destroy();
}
