import { request } from "node:http";
import { type RedisCluster, startRedisCluster } from "./redis-server.js";
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

/** A 3-master Redis Cluster and `count` hosts on it with sharded pub/sub; `stop` ends both, returning exit codes. */
export async function startClusterHosts(
  count = 2,
): Promise<{ cluster: RedisCluster; hosts: ServerProcess[]; stop(): Promise<(number | string)[]> }> {
  const cluster = await startRedisCluster(3);
  const hosts = await startHosts(count, ["--redis", cluster.url, "--redis-cluster"]).catch(async (err) => {
    await cluster.destroy();
    throw err;
  });
  const stop = async () => {
    const codes = await Promise.all(hosts.map((h) => h.stop()));
    await cluster.destroy();
    return codes;
  };
  return { cluster, hosts, stop };
}

/** One sample of a Prometheus metric on a host's admin port (first series whose line starts with `name`). */
export async function metric(host: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${host.adminPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** GET on a fresh connection, so the primary answers it (as HAProxy's checks see it), not a kept-alive worker. */
export function getFresh(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: "close" } }, (res) => {
      let text = "";
      res.on("data", (d) => {
        text += d;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    req.on("error", reject);
    req.end();
  });
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
