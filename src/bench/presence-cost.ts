/**
 * What presence costs at scale: N raw connections (100,000 by default) subscribed to one channel, once in a namespace
 * with presence and once without, on one host (memory) and with Redis. Reports how long the server took to count
 * every join, the server tree's RSS (and Redis's memory), and the latency of `GET /api/presence-stats` (the O(1)
 * count) and of `GET /api/presence` (the whole list) on that channel.
 *
 *   npm run build && node dist/bench/presence-cost.js [--connections 100000] [--workers 6] [--no-redis]
 */
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type RedisServer, redisCli, startRedis } from "../harness/redis-server.js";
import { ServerProcess } from "../harness/server-process.js";
import { fmt } from "./format.js";
import { LoadFleet } from "./load/load-fleet.js";
import { treeRssBytes } from "./proc-tree.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "cli.js");
const NAMESPACES = JSON.stringify({ room: { presence: true } });

type Row = {
  variant: string;
  countedSeconds: number | null;
  rssMiB: number;
  redisMiB: number | null;
  statsP50: number;
  statsP99: number;
  listMs: number | null;
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

async function timeGet(url: string, times: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

async function redisMiB(redis: RedisServer | null): Promise<number | null> {
  if (!redis) return null;
  const info = await redisCli(redis.port, "INFO", "memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 2 ** 20;
}

async function run(o: {
  connections: number;
  workers: number;
  presence: boolean;
  redis: RedisServer | null;
}): Promise<Row> {
  const prefix = o.presence ? "room:" : "plain:";
  const channel = `${prefix}0`;
  const fleet = LoadFleet.start(LoadFleet.processesFor(o.connections, 2));
  const server = await ServerProcess.start(
    {
      command: process.execPath,
      args: [
        CLI,
        "start",
        ...["--port", "0", "--admin-port", "0", "--host", "127.0.0.1"],
        ...["--workers", String(o.workers), "--namespaces", NAMESPACES],
        ...(o.redis ? ["--redis", o.redis.url] : []),
      ],
    },
    { timeoutMs: 30_000, keepLines: false },
  );
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const conn = await fleet.connect({
      port: server.port,
      protocol: "ws",
      total: o.connections,
      concurrency: 500,
    });
    const sub = await fleet.subscribe(1, prefix, 120_000);
    const subscribedAt = performance.now();
    let countedSeconds: number | null = null;
    if (o.presence) {
      for (;;) {
        const stats = (await (await fetch(`${base}/api/presence-stats?channel=${channel}`)).json()) as {
          clients: number;
        };
        if (stats.clients >= sub.acked) break;
        if (performance.now() - subscribedAt > 120_000) throw new Error(`only ${stats.clients} counted`);
        await sleep(100);
      }
      countedSeconds = (performance.now() - subscribedAt) / 1000;
    }
    await sleep(2000);
    const rssMiB = treeRssBytes(server.pid) / 2 ** 20;
    const statsUrl = o.presence ? `${base}/api/presence-stats?channel=${channel}` : `${base}/health`;
    const stats = await timeGet(statsUrl, 200);
    const list = o.presence ? await timeGet(`${base}/api/presence?channel=${channel}`, 5) : null;
    console.error(
      `${o.presence ? "presence" : "no presence"}${o.redis ? " + Redis" : ""}: ${conn.opened} opened, ${sub.acked} subscribed`,
    );
    return {
      variant: `${o.presence ? "presence" : "no presence"}, ${o.redis ? "Redis" : "memory"}`,
      countedSeconds,
      rssMiB,
      redisMiB: await redisMiB(o.redis),
      statsP50: percentile(stats, 0.5),
      statsP99: percentile(stats, 0.99),
      listMs: list ? percentile(list, 0.5) : null,
    };
  } finally {
    await fleet.close();
    await server.stop("SIGTERM", 10_000);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: "string", default: "100000" },
      workers: { type: "string", default: "6" },
      "no-redis": { type: "boolean", default: false },
    },
  });
  const connections = Number(values.connections);
  const workers = Number(values.workers);
  const rows: Row[] = [];
  for (const presence of [false, true]) rows.push(await run({ connections, workers, presence, redis: null }));
  if (!values["no-redis"]) {
    for (const presence of [false, true]) {
      const redis = await startRedis();
      try {
        rows.push(await run({ connections, workers, presence, redis }));
      } finally {
        await redis.destroy();
      }
    }
  }
  console.log(`\n${fmt(connections)} raw connections on one channel, ${workers} workers`);
  console.log(
    "| variant | all joins counted after (s) | tree RSS (MiB) | Redis memory (MiB) | presence-stats p50 / p99 (ms) | whole presence list (ms) |",
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const statsCell = r.countedSeconds === null ? "— (/health: " : "";
    console.log(
      `| ${r.variant} | ${r.countedSeconds === null ? "—" : r.countedSeconds.toFixed(1)} | ${fmt(r.rssMiB)} | ${r.redisMiB === null ? "—" : r.redisMiB.toFixed(1)} | ${statsCell}${r.statsP50.toFixed(1)} / ${r.statsP99.toFixed(1)}${statsCell ? ")" : ""} | ${r.listMs === null ? "—" : fmt(r.listMs)} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
