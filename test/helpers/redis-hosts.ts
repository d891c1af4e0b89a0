import assert from "node:assert/strict";
import { after, before } from "node:test";
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from "./redis-server.js";
import { type ServerProcess, startServer } from "./server.js";

/** Starts `count` Switchboard instances that share Redis, as separate hosts would (own ports, same bus). */
export async function startHosts(count: number, redisArgs: string[], workers = 2): Promise<ServerProcess[]> {
  const hosts: ServerProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      hosts.push(await startServer(["--workers", String(workers), "--instance", `host${i}`, ...redisArgs]));
    }
    return hosts;
  } catch (err) {
    await Promise.all(hosts.map((h) => h.stop("SIGKILL")));
    throw err;
  }
}

type Closable = { close(): void };

/** What `useRedisHosts` gives a suite; read it inside tests (it is filled in by `before`). */
export interface RedisHosts {
  readonly hosts: ServerProcess[];
  /** The single Redis (not with `cluster`). */
  readonly redis: RedisServer;
  /** The 3-master Redis Cluster (only with `cluster`; with `replicas`, that many per master). */
  readonly cluster: RedisCluster;
  /** Closes `client` in `after`, before the hosts stop; returns it. */
  track<T extends Closable>(client: T): T;
}

/**
 * Registers, in the calling describe, a `before` that starts one Redis (or with `cluster`, a 3-master Redis
 * Cluster with sharded pub/sub) and `count` Switchboard hosts on it, and an `after` that closes the tracked
 * clients, stops the hosts and Redis, and asserts that every host exited 0. Call it synchronously in the
 * describe body.
 */
export function useRedisHosts(
  count: number,
  options: { cluster?: boolean; replicas?: number; workers?: number; args?: string[] } = {},
): RedisHosts {
  let redis: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let hosts: ServerProcess[] = [];
  const clients: Closable[] = [];

  before(async () => {
    if (options.cluster) {
      cluster = await startRedisCluster(3, { replicas: options.replicas });
      hosts = await startHosts(
        count,
        ["--redis", cluster.url, "--redis-cluster", ...(options.args ?? [])],
        options.workers,
      );
    } else {
      redis = await startRedis();
      hosts = await startHosts(count, ["--redis", redis.url, ...(options.args ?? [])], options.workers);
    }
  });

  after(async () => {
    for (const c of clients) c.close();
    const codes = await Promise.all(hosts.map((h) => h.stop()));
    await redis?.destroy();
    await cluster?.destroy();
    // When `before` failed, no host was kept (startHosts stops its own on failure): nothing to compare, so the
    // report shows before's error alone.
    assert.deepEqual(
      codes,
      hosts.map(() => 0),
      "every host exits 0",
    );
  });

  return {
    get hosts() {
      return hosts;
    },
    get redis() {
      if (!redis) throw new Error("no single Redis here (not started, or started with cluster)");
      return redis;
    },
    get cluster() {
      if (!cluster) throw new Error("no Redis Cluster here (not started, or started without cluster)");
      return cluster;
    },
    track(client) {
      clients.push(client);
      return client;
    },
  };
}

/** The `redis` part of a host's /status. */
export type RedisStatus = {
  state: string;
  cluster: boolean;
  nodes: { node: string; ready: boolean; channels: number }[];
  [k: string]: unknown;
};

export async function redisStatus(host: ServerProcess): Promise<RedisStatus> {
  const status = (await host.status()) as { redis?: RedisStatus };
  if (!status.redis) throw new Error("no redis section in /status");
  return status.redis;
}
