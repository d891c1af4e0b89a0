import type { RedisOptions } from "ioredis";

export type RedisEndpoint = { host: string; port: number };

/** Where Redis is and how to log in, from `--redis` (one URL, or comma-separated seeds with `--redis-cluster`). */
export type RedisTarget = {
  cluster: boolean;
  /** One node, or the cluster's seed nodes (the link asks them for the slot map). */
  seeds: RedisEndpoint[];
  /** Credentials, database and TLS shared by every connection (the first URL's, for a cluster). */
  auth: Pick<RedisOptions, "username" | "password" | "db" | "tls">;
  /** The URL(s) without password, for logs and /status. */
  display: string;
};

/**
 * Parses `redis://[user:password@]host[:port][/db]` and `rediss://…` (TLS). config.ts has already rejected what
 * does not fit (scheme, database path, a path on cluster seeds, several URLs without --redis-cluster).
 */
export function parseRedisTarget(urls: string, cluster: boolean): RedisTarget {
  const parsed = urls
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => new URL(u));
  const first = parsed[0] as URL;
  const db = first.pathname.length > 1 ? Number(first.pathname.slice(1)) : 0;
  const auth: RedisTarget["auth"] = { db };
  if (first.username) auth.username = decodeURIComponent(first.username);
  if (first.password) auth.password = decodeURIComponent(first.password);
  if (first.protocol === "rediss:") auth.tls = { servername: first.hostname };
  return {
    cluster,
    seeds: parsed.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 6379) })),
    auth,
    display: parsed
      .map(
        (u) =>
          `${u.protocol}//${u.username ? `${u.username}@` : ""}${u.host}${u.pathname === "/" ? "" : u.pathname}`,
      )
      .join(","),
  };
}
