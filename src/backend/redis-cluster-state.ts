import { randomBytes } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import type { RedisTarget } from "../bus/redis/redis-options.js";
import type { PresenceEntry } from "../ipc.js";
import type { Logger } from "../log.js";
import type {
  ChannelPage,
  ClusterEvent,
  ClusterState,
  PresenceLeave,
  PresenceStats,
} from "./cluster-state.js";

/**
 * Keys (all of a channel in its `{channel}` slot, so each script runs on one Cluster node):
 *   `<prefix>:occ:{<channel>}`  zset  hosts with a subscriber → expiry (ms); refreshed by each host
 *   `<prefix>:pc:{<channel>}`   hash  presence: client → `{"u":user,"i":info}`
 *   `<prefix>:pz:{<channel>}`   zset  presence: client → expiry (ms); refreshed by the client's host
 *   `<prefix>:pu:{<channel>}`   hash  presence: user → connections (named users only), so counts are HLEN
 *   `<prefix>:channels`         set   occupied channels, for the channel list and the reaper
 *   `<prefix>:events`           channel  events for every host (join/leave messages, server API actions)
 */

/** Removes one client (KEYS pc, pz, pu); returns {entry, lastOfUser} or nil. */
const LEAVE_FN = `
local function leave(client)
  local e = redis.call('HGET', KEYS[1], client)
  if not e then return nil end
  redis.call('HDEL', KEYS[1], client)
  redis.call('ZREM', KEYS[2], client)
  local user = cjson.decode(e)['u']
  if type(user) ~= 'string' then return {e, 1} end
  local n = redis.call('HINCRBY', KEYS[3], user, -1)
  if n > 0 then return {e, 0} end
  redis.call('HDEL', KEYS[3], user)
  return {e, 1}
end
local function reap(now)
  local out = {}
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
  for _, c in ipairs(gone) do
    local r = leave(c)
    if r then out[#out + 1] = {c, r[1], r[2]} else redis.call('ZREM', KEYS[2], c) end
  end
  return out
end`;

/** KEYS pc pz pu; ARGV client, entry, user ('' = anonymous), expiry, key ttl → 1 when first of its user. */
const JOIN = `
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[3] == '' then return 1 end
if redis.call('HINCRBY', KEYS[3], ARGV[3], 1) == 1 then return 1 end
return 0`;

/** KEYS pc pz pu; ARGV client. */
const LEAVE = `${LEAVE_FN}
return leave(ARGV[1])`;

/** KEYS pc pz pu; ARGV now → {clients, users, reaped}. */
const STATS = `${LEAVE_FN}
local reaped = reap(ARGV[1])
return {redis.call('HLEN', KEYS[1]), redis.call('HLEN', KEYS[3]), reaped}`;

/** KEYS pc pz pu; ARGV now → {entries (flat client, entry), reaped}. */
const LIST = `${LEAVE_FN}
local reaped = reap(ARGV[1])
return {redis.call('HGETALL', KEYS[1]), reaped}`;

/**
 * KEYS pz pc pu; ARGV expiry, key ttl, then (client, entry, user) per client of this host. Entries that are gone
 * (Redis restarted, or reaped while this host could not reach it) are written again, so presence heals by itself.
 */
const REFRESH_PRESENCE = `
for i = 3, #ARGV, 3 do
  if redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 and ARGV[i + 2] ~= '' then
    redis.call('HINCRBY', KEYS[3], ARGV[i + 2], 1)
  end
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 0`;

/**
 * KEYS occ; ARGV host, expiry, now, key ttl → 1 when the channel was empty (counting hosts that stopped refreshing,
 * so a channel the reaper has not vacated yet is not occupied twice).
 */
const OCCUPY = `
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if before == 0 then return 1 end
return 0`;

/** KEYS occ; ARGV host ('' for the reaper), now → 1 when this emptied the channel. */
const VACATE = `
local removed = 0
if ARGV[1] ~= '' then removed = redis.call('ZREM', KEYS[1], ARGV[1]) end
removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if removed > 0 and redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

const PING_EVERY_MS = 2000;

/** Presence entries re-stated per script call. */
const REFRESH_CHUNK = 1000;

type Commands = {
  sbJoin(pc: string, pz: string, pu: string, ...args: (string | number)[]): Promise<number>;
  sbLeave(pc: string, pz: string, pu: string, client: string): Promise<[string, number] | null>;
  sbStats(pc: string, pz: string, pu: string, now: number): Promise<[number, number, Reaped]>;
  sbList(pc: string, pz: string, pu: string, now: number): Promise<[string[], Reaped]>;
  sbRefreshPresence(pz: string, pc: string, pu: string, ...args: (string | number)[]): Promise<number>;
  sbOccupy(occ: string, ...args: (string | number)[]): Promise<number>;
  sbVacate(occ: string, host: string, now: number): Promise<number>;
};
type Reaped = [client: string, entry: string, last: number][];
type Client = (Redis | Cluster) & Commands;

const SCRIPTS: Record<keyof Commands, { keys: number; lua: string }> = {
  sbJoin: { keys: 3, lua: JOIN },
  sbLeave: { keys: 3, lua: LEAVE },
  sbStats: { keys: 3, lua: STATS },
  sbList: { keys: 3, lua: LIST },
  sbRefreshPresence: { keys: 3, lua: REFRESH_PRESENCE },
  sbOccupy: { keys: 1, lua: OCCUPY },
  sbVacate: { keys: 1, lua: VACATE },
};

export type RedisClusterStateDeps = {
  target: RedisTarget;
  prefix: string;
  ttlMs: number;
  log: Logger;
  /** This host's occupied channels and presence entries, re-stated every third of the TTL. */
  local(): { channels: Iterable<string>; presence: Iterable<[channel: string, entries: PresenceEntry[]]> };
};

/** Cross-host presence, occupancy and events in Redis (see the key table above). */
export class RedisClusterState implements ClusterState {
  readonly #d: RedisClusterStateDeps;
  readonly #redis: Client;
  readonly #sub: Redis | Cluster;
  readonly #host = randomBytes(9).toString("base64url");
  readonly #eventsChannel: string;
  readonly #channelsKey: string;
  #timer: NodeJS.Timeout | null = null;
  #pingTimer: NodeJS.Timeout | null = null;
  #roundTrip: number | null = null;
  #reapCursor = "0";
  #onEvent: (event: ClusterEvent) => void = () => {};
  #onExpired: (vacated: string[], leaves: PresenceLeave[]) => void = () => {};

  constructor(d: RedisClusterStateDeps) {
    this.#d = d;
    this.#eventsChannel = `${d.prefix}:events`;
    this.#channelsKey = `${d.prefix}:channels`;
    this.#redis = this.#connect() as Client;
    for (const [name, s] of Object.entries(SCRIPTS))
      this.#redis.defineCommand(name, { numberOfKeys: s.keys, lua: s.lua });
    this.#sub = this.#connect();
    this.#sub.on("message", (channel: string, text: string) => {
      if (channel !== this.#eventsChannel) return;
      try {
        this.#onEvent(JSON.parse(text) as ClusterEvent);
      } catch {}
    });
  }

  #connect(): Redis | Cluster {
    const { target } = this.#d;
    const options = { ...target.auth, lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true };
    const client = target.cluster
      ? new Cluster(target.seeds, { redisOptions: options, lazyConnect: true })
      : new Redis({ ...(target.seeds[0] as { host: string; port: number }), ...options });
    client.on("error", (err: Error) => this.#d.log.debug({ err }, "cluster state redis error"));
    return client;
  }

  async start(): Promise<void> {
    await Promise.all([this.#redis.connect(), this.#sub.connect()]).catch((err: Error) =>
      this.#d.log.warn(
        { err: err.message },
        "cluster state: Redis not reachable yet (presence and webhooks wait)",
      ),
    );
    this.#sub.subscribe(this.#eventsChannel).catch(() => {});
    this.#timer = setInterval(() => void this.#refresh(), Math.max(300, Math.floor(this.#d.ttlMs / 3)));
    this.#timer.unref();
    this.#pingTimer = setInterval(() => void this.#ping(), PING_EVERY_MS);
    this.#pingTimer.unref();
  }

  /** A PING's round trip: what the admin page and `switchboard_redis_ping_seconds` show as the link's lag. */
  async #ping(): Promise<void> {
    const started = performance.now();
    try {
      await this.#redis.ping();
      this.#roundTrip = (performance.now() - started) / 1000;
    } catch {
      this.#roundTrip = null;
    }
  }

  roundTripSeconds(): number | null {
    return this.#roundTrip;
  }

  #keys(channel: string): [string, string, string] {
    const p = this.#d.prefix;
    return [`${p}:pc:{${channel}}`, `${p}:pz:{${channel}}`, `${p}:pu:{${channel}}`];
  }

  #occKey(channel: string): string {
    return `${this.#d.prefix}:occ:{${channel}}`;
  }

  #expiry(): number {
    return Date.now() + this.#d.ttlMs;
  }

  async occupancy(channel: string, occupied: boolean): Promise<boolean> {
    const key = this.#occKey(channel);
    const now = Date.now();
    if (occupied) {
      const first = await this.#redis.sbOccupy(key, this.#host, this.#expiry(), now, this.#d.ttlMs * 2);
      await this.#redis.sadd(this.#channelsKey, channel);
      return first === 1;
    }
    const last = await this.#redis.sbVacate(key, this.#host, now);
    if (last === 1) await this.#redis.srem(this.#channelsKey, channel);
    return last === 1;
  }

  async join(channel: string, entry: PresenceEntry): Promise<boolean> {
    const text = entryText(entry);
    const first = await this.#redis.sbJoin(
      ...this.#keys(channel),
      entry.client,
      text,
      entry.user ?? "",
      this.#expiry(),
      this.#d.ttlMs * 2,
    );
    return first === 1;
  }

  async leave(channel: string, client: string): Promise<PresenceLeave | null> {
    const r = await this.#redis.sbLeave(...this.#keys(channel), client);
    return r ? toLeave(channel, client, r[0], r[1]) : null;
  }

  async presence(channel: string): Promise<PresenceEntry[]> {
    const [flat, reaped] = await this.#redis.sbList(...this.#keys(channel), Date.now());
    this.#reaped(channel, reaped);
    const out: PresenceEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push(toEntry(flat[i] as string, flat[i + 1] as string));
    return out;
  }

  async stats(channel: string): Promise<PresenceStats> {
    const [clients, users, reaped] = await this.#redis.sbStats(...this.#keys(channel), Date.now());
    this.#reaped(channel, reaped);
    return { clients, users };
  }

  async channels(pattern: string | null, cursor: string | null, limit: number): Promise<ChannelPage> {
    // SSCAN pages may return fewer (or a few more) names than asked; its cursor is the page cursor.
    const [next, names] = await this.#redis.sscan(
      this.#channelsKey,
      cursor ?? "0",
      "MATCH",
      pattern ?? "*",
      "COUNT",
      limit,
    );
    return { channels: names.sort(), cursor: next === "0" ? null : next };
  }

  broadcast(event: ClusterEvent): void {
    this.#redis.publish(this.#eventsChannel, JSON.stringify(event)).catch((err: Error) => {
      this.#d.log.warn({ err: err.message, kind: event.kind }, "cluster event not sent (Redis unreachable)");
    });
  }

  onEvent(listener: (event: ClusterEvent) => void): void {
    this.#onEvent = listener;
  }

  onExpired(listener: (vacated: string[], leaves: PresenceLeave[]) => void): void {
    this.#onExpired = listener;
  }

  #reaped(channel: string, reaped: Reaped): void {
    if (reaped.length === 0) return;
    this.#onExpired(
      [],
      reaped.map(([client, entry, last]) => toLeave(channel, client, entry, last)),
    );
  }

  /**
   * Every third of the TTL: re-states this host's channels and presence clients, then reaps a page of the occupied
   * channels (hosts and clients whose expiry passed: a host that died or lost its link).
   */
  async #refresh(): Promise<void> {
    try {
      const expiry = this.#expiry();
      const ttl = this.#d.ttlMs * 2;
      const now = Date.now();
      const { channels, presence } = this.#d.local();
      const batch: Promise<unknown>[] = [];
      for (const channel of channels)
        batch.push(this.#redis.sbOccupy(this.#occKey(channel), this.#host, expiry, now, ttl));
      for (const [channel, entries] of presence) {
        const [pc, pz, pu] = this.#keys(channel);
        // In chunks: one script over 100,000 clients would hold Redis up for everyone else.
        for (let i = 0; i < entries.length; i += REFRESH_CHUNK) {
          const args = entries
            .slice(i, i + REFRESH_CHUNK)
            .flatMap((e) => [e.client, entryText(e), e.user ?? ""]);
          batch.push(this.#redis.sbRefreshPresence(pz, pc, pu, expiry, ttl, ...args));
        }
      }
      await Promise.all(batch);
      await this.#reapPage(now);
    } catch (err) {
      this.#d.log.debug({ err }, "cluster state refresh failed");
    }
  }

  async #reapPage(now: number): Promise<void> {
    const [next, names] = await this.#redis.sscan(this.#channelsKey, this.#reapCursor, "COUNT", 200);
    this.#reapCursor = next;
    const vacated: string[] = [];
    const leaves: PresenceLeave[] = [];
    for (const channel of names) {
      const [, , reaped] = await this.#redis.sbStats(...this.#keys(channel), now);
      for (const [client, entry, last] of reaped) leaves.push(toLeave(channel, client, entry, last));
      if ((await this.#redis.sbVacate(this.#occKey(channel), "", now)) === 1) {
        await this.#redis.srem(this.#channelsKey, channel);
        vacated.push(channel);
      }
    }
    if (vacated.length > 0 || leaves.length > 0) this.#onExpired(vacated, leaves);
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#redis.disconnect();
    this.#sub.disconnect();
  }
}

function entryText(entry: PresenceEntry): string {
  return JSON.stringify({ u: entry.user, i: entry.info ?? null });
}

function toEntry(client: string, text: string): PresenceEntry {
  try {
    const { u, i } = JSON.parse(text) as { u: string | null; i: unknown };
    return { client, user: u ?? null, info: i ?? null };
  } catch {
    return { client, user: null, info: null };
  }
}

function toLeave(channel: string, client: string, text: string, last: number): PresenceLeave {
  return { channel, entry: toEntry(client, text), lastOfUser: last === 1 };
}
