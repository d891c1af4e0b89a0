import { type ChainableCommander, Redis, type RedisOptions } from "ioredis";
import { reconnectDelayMs } from "../../backoff.js";
import type { HistoryEntry } from "../../ipc.js";
import type { Logger } from "../../log.js";
import type { Published } from "../bus.js";
import { keySlot } from "./key-slot.js";
import { historyId, JOIN_SCRIPT, parseHistory, parsePosition, publishScript } from "./redis-wire.js";

/** Channels per SUBSCRIBE while restoring after a reconnect; each batch is confirmed before the next goes out. */
const SUBSCRIBE_BATCH = 500;
const PING_INTERVAL_MS = 5000;
const COMMAND_TIMEOUT_MS = 3000;

type Reply = (err: Error | null | undefined, value?: unknown) => void;
/** The scripts as ioredis adds them to a pipeline: KEYS, then ARGV, then the callback. */
type Scripts = {
  sbPublish(...args: (string | number | Reply)[]): void;
  sbJoin(...args: (string | number | Reply)[]): void;
};

/** What the scripts need to know about a channel besides its names (see redis-wire.ts). */
export type Numbering = {
  knownEpoch: string;
  redisFloor: number;
  floor: number;
  newEpoch: string;
  metaTtlMs: number;
};

/** One message for the publish script. */
export type ScriptPublish = {
  channel: string;
  metaKey: string;
  historyKey: string;
  /** The idempotency key's Redis key, or null. */
  idempotencyKey: string | null;
  origin: string;
  dataJson: string;
  historySize: number;
  historyTtlMs: number;
  idempotencyWindowMs: number;
};

export type NodeHooks = {
  up(node: RedisNode): void;
  down(node: RedisNode, reason: string): void;
  message(channel: Buffer, payload: Buffer): void;
  /**
   * A SUBSCRIBE for these channels is about to go out. Their messages may arrive before the confirmation's
   * promise settles (both come in one read), so whoever orders them must start holding now.
   */
  subscribing(node: RedisNode, channels: string[]): void;
  /** These channels are now subscribed on this node (first time, or again after a reconnect). */
  subscribed(node: RedisNode, channels: string[]): void;
  /** A shard channel answered MOVED or was unsubscribed by the server: the slot map changed. */
  moved(node: RedisNode): void;
};

/**
 * One RESP3 connection to one Redis node that carries both the subscriptions and the scripts of the channels the
 * node owns. One connection matters: Redis answers it in execution order, so the reply to our publish script comes
 * after every message published before it and before every message published after it, and the join script's reply
 * comes after every message published before the join read the counter. (RESP3 allows commands on a subscribed
 * connection; Redis 6 or later.) Commands fail at once while the node is unreachable: the relay falls back.
 */
export class RedisNode {
  readonly key: string;
  readonly #redis: Redis;
  readonly #sharded: boolean;
  readonly #hooks: NodeHooks;
  readonly #log: Logger;
  /** Confirmed on the current connection. */
  readonly #live = new Set<string>();
  readonly #sending = new Set<string>();
  readonly #toSubscribe = new Set<string>();
  readonly #toUnsubscribe = new Set<string>();
  #batch: ChainableCommander | null = null;
  #flushScheduled = false;
  #restoring = false;
  /** Set on a reconnect: the next subscribe run restores the previous set and logs it. */
  #restore: { startedAt: number; channels: number; batches: number } | null = null;
  #connections = 0;
  #ready = false;
  /** The Redis process on the other end (INFO's run_id): the scripts start a new epoch when it is not the last one. */
  #runId = "";
  #readyChecks = 0;
  #subscribeRetry: NodeJS.Timeout | null = null;
  #subscribeFailures = 0;
  readonly #whenUp: (() => void)[] = [];
  #closed = false;
  readonly #ping: NodeJS.Timeout;

  constructor(
    endpoint: { host: string; port: number },
    o: { auth: RedisOptions; sharded: boolean; name: string; hooks: NodeHooks; log: Logger },
  ) {
    this.key = `${endpoint.host}:${endpoint.port}`;
    this.#sharded = o.sharded;
    this.#hooks = o.hooks;
    this.#log = o.log;
    this.#redis = new Redis({
      ...o.auth,
      host: endpoint.host,
      port: endpoint.port,
      protocol: 3,
      connectionName: o.name,
      // Fail fast instead of queueing: a message that cannot go out now is delivered locally and counted.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      keepAlive: 10_000,
      retryStrategy: reconnectDelayMs,
      scripts: {
        sbPublish: { lua: publishScript(o.sharded), numberOfKeys: 3 },
        sbJoin: { lua: JOIN_SCRIPT, numberOfKeys: 2 },
      },
    });
    this.#redis.on("ready", () => this.#onReady());
    this.#redis.on("close", () => this.#onClose("connection closed"));
    this.#redis.on("error", (err: Error) =>
      this.#log.debug({ err, node: this.key }, "redis connection error"),
    );
    this.#redis.on("moved", () => this.#hooks.moved(this));
    const onMessage = (channel: Buffer, payload: Buffer) => this.#hooks.message(channel, payload);
    this.#redis.on(o.sharded ? "smessageBuffer" : "messageBuffer", onMessage);
    // A half-open TCP connection (no RST) would otherwise look alive for minutes.
    this.#ping = setInterval(() => this.#watchdog(), PING_INTERVAL_MS);
    this.#ping.unref();
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Channels this node should carry (subscribed, being subscribed or queued). */
  get channelCount(): number {
    return this.#live.size + this.#sending.size + this.#toSubscribe.size;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  /** Every channel this node carries or will carry. */
  channels(): string[] {
    return [...this.#live, ...this.#sending, ...this.#toSubscribe].filter((c) => !this.#toUnsubscribe.has(c));
  }

  subscribe(channel: string): void {
    if (this.#toUnsubscribe.delete(channel)) {
      // Still subscribed: the unsubscribe had not gone out yet.
      if (this.#live.has(channel)) queueMicrotask(() => this.#hooks.subscribed(this, [channel]));
      return;
    }
    if (this.#live.has(channel) || this.#sending.has(channel)) return;
    this.#toSubscribe.add(channel);
    this.#schedule();
  }

  unsubscribe(channel: string): void {
    if (this.#toSubscribe.delete(channel)) return;
    if (this.#live.has(channel) || this.#sending.has(channel)) {
      this.#toUnsubscribe.add(channel);
      this.#schedule();
    }
  }

  /** Runs the publish script; `done` gets the offset and epoch, or null when the node cannot take it now. */
  publishMessage(
    m: ScriptPublish,
    n: Numbering,
    done: (result: Published | null, err?: Error) => void,
  ): void {
    const batch = this.#pipeline();
    if (!batch) return done(null);
    const window = m.idempotencyKey === null ? 0 : m.idempotencyWindowMs;
    (batch as unknown as Scripts).sbPublish(
      m.metaKey,
      m.historyKey,
      m.idempotencyKey ?? m.metaKey,
      m.channel,
      m.origin,
      m.dataJson,
      n.knownEpoch,
      n.redisFloor,
      n.floor,
      n.newEpoch,
      m.historySize,
      m.historyTtlMs,
      n.metaTtlMs,
      window,
      this.#runId,
      (err, reply) => {
        const [text, duplicate] = (Array.isArray(reply) ? reply : []) as [unknown, unknown];
        const position = err ? null : parsePosition(text);
        if (!position) return done(null, err ?? new Error(`unexpected publish reply ${String(reply)}`));
        done({ ...position, duplicate: Number(duplicate) === 1 });
      },
    );
  }

  /** Runs the join script; `done` gets the channel's position, or null. */
  join(
    metaKey: string,
    historyKey: string,
    n: Numbering,
    done: (position: { offset: number; epoch: string } | null, err?: Error) => void,
  ): void {
    const batch = this.#pipeline();
    if (!batch) return done(null);
    (batch as unknown as Scripts).sbJoin(
      metaKey,
      historyKey,
      n.knownEpoch,
      n.redisFloor,
      n.floor,
      n.newEpoch,
      n.metaTtlMs,
      this.#runId,
      (err, reply) => {
        const [offset, epoch] = (Array.isArray(reply) ? reply : []) as [unknown, unknown];
        if (err || !Number.isSafeInteger(Number(offset)) || typeof epoch !== "string" || epoch === "")
          return done(null, err ?? new Error(`unexpected join reply ${String(reply)}`));
        done({ offset: Number(offset), epoch });
      },
    );
  }

  /** Reads at most `count` history entries from offset `from` on (to `to`, or the end); null when the node cannot answer now. */
  readHistory(
    historyKey: string,
    from: number,
    to: number | null,
    count: number,
    done: (entries: HistoryEntry[] | null) => void,
  ): void {
    const batch = this.#pipeline();
    if (!batch) return done(null);
    const end = to === null ? "+" : historyId(to);
    batch.xrange(historyKey, historyId(from), end, "COUNT", count, (err, reply) =>
      done(err ? null : parseHistory(reply)),
    );
  }

  /** Reads a channel's position (epoch, last offset) without creating one; `done(undefined)` when the node cannot answer. */
  readPosition(
    metaKey: string,
    done: (position: { offset: number; epoch: string } | null | undefined) => void,
  ): void {
    const batch = this.#pipeline();
    if (!batch) return done(undefined);
    batch.hmget(metaKey, "e", "t", (err, reply) => {
      if (err) return done(undefined);
      const [epoch, top] = (reply ?? []) as (string | null)[];
      done(epoch ? { offset: Number(top ?? 0), epoch } : null);
    });
  }

  /** Publishes raw bytes (Socket.IO traffic); `done(false)` when the node cannot take it now. */
  publishRaw(channel: string, payload: Buffer, done: (ok: boolean) => void): void {
    const batch = this.#pipeline();
    if (!batch) return done(false);
    const cb: Reply = (err) => done(!err);
    if (this.#sharded) batch.spublish(channel, payload, cb);
    else batch.publish(channel, payload, cb);
  }

  /** Commands of one event-loop turn go out as one write, in call order. */
  #pipeline(): ChainableCommander | null {
    if (!this.#ready) return null;
    if (!this.#batch) {
      this.#batch = this.#redis.pipeline();
      this.#schedule();
    }
    return this.#batch;
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#batch;
    this.#batch = null;
    // Errors reach each command's callback; exec's own promise only repeats them.
    batch?.exec().catch(() => {});
    if (!this.#ready) return;
    if (this.#toUnsubscribe.size > 0) {
      const channels = [...this.#toUnsubscribe];
      this.#toUnsubscribe.clear();
      for (const c of channels) {
        this.#live.delete(c);
        this.#sending.delete(c);
      }
      for (const group of this.#groups(channels)) {
        const sent = this.#sharded ? this.#redis.sunsubscribe(...group) : this.#redis.unsubscribe(...group);
        sent.catch((err: Error) => this.#log.debug({ err, node: this.key }, "redis unsubscribe failed"));
      }
    }
    if (this.#toSubscribe.size > 0 && !this.#restoring) void this.#subscribeBatches();
  }

  /** Sends queued subscriptions in batches, each confirmed before the next, until the queue is empty. */
  async #subscribeBatches(): Promise<void> {
    this.#restoring = true;
    try {
      while (this.#ready && this.#toSubscribe.size > 0) {
        const batch: string[] = [];
        for (const c of this.#toSubscribe) {
          batch.push(c);
          if (batch.length === SUBSCRIBE_BATCH) break;
        }
        for (const c of batch) {
          this.#toSubscribe.delete(c);
          this.#sending.add(c);
        }
        this.#hooks.subscribing(this, batch);
        const results = await Promise.allSettled(
          this.#groups(batch).map(async (group) => {
            await (this.#sharded ? this.#redis.ssubscribe(...group) : this.#redis.subscribe(...group));
            return group;
          }),
        );
        const confirmed: string[] = [];
        for (const r of results) {
          if (r.status === "fulfilled") {
            for (const c of r.value) {
              if (!this.#sending.delete(c)) continue; // unsubscribed meanwhile
              this.#live.add(c);
              confirmed.push(c);
            }
          } else if (this.#ready) {
            this.#log.warn({ err: r.reason, node: this.key }, "redis subscribe failed");
            if (String(r.reason).includes("MOVED")) this.#hooks.moved(this);
          }
        }
        // What failed goes back in the queue for the next connection (or the next owner, after a slot move).
        for (const c of this.#sending) this.#toSubscribe.add(c);
        this.#sending.clear();
        if (this.#restore) {
          this.#restore.channels += confirmed.length;
          this.#restore.batches += 1;
        }
        if (confirmed.length > 0) this.#hooks.subscribed(this, confirmed);
        if (results.some((r) => r.status === "rejected")) {
          // A node just promoted may refuse for a moment (CLUSTERDOWN): try again, whether or not anything else
          // is sent on this connection meanwhile.
          this.#subscribeRetry ??= setTimeout(
            () => {
              this.#subscribeRetry = null;
              this.#schedule();
            },
            reconnectDelayMs(++this.#subscribeFailures),
          );
          break;
        }
        this.#subscribeFailures = 0;
      }
    } finally {
      this.#restoring = false;
    }
    const restore = this.#restore;
    if (restore && this.#ready && this.#toSubscribe.size === 0) {
      this.#restore = null;
      const ms = Date.now() - restore.startedAt;
      this.#log.info(
        { node: this.key, channels: restore.channels, batches: restore.batches, ms },
        "redis subscriptions restored",
      );
    }
  }

  /** Cluster: one SSUBSCRIBE per slot (Redis refuses channels of several slots in one); otherwise one for all. */
  #groups(channels: string[]): string[][] {
    if (!this.#sharded) return [channels];
    const bySlot = new Map<number, string[]>();
    for (const c of channels) {
      const slot = keySlot(c);
      const group = bySlot.get(slot);
      if (group) group.push(c);
      else bySlot.set(slot, [c]);
    }
    return [...bySlot.values()];
  }

  /** Learns which Redis process this connection reached before anything is sent on it. */
  #onReady(): void {
    if (this.#closed) return;
    const attempt = ++this.#readyChecks;
    this.#redis.info("server").then(
      (info) => this.#up(attempt, /^run_id:(\w+)/m.exec(info)?.[1] ?? ""),
      (err: Error) => {
        // INFO refused (ACL): numbering still works, only a failover is not told by the run id.
        this.#log.debug({ err, node: this.key }, "INFO server failed");
        this.#up(attempt, "");
      },
    );
  }

  #up(attempt: number, runId: string): void {
    // A stale answer (the connection was replaced meanwhile) decides nothing.
    if (this.#closed || attempt !== this.#readyChecks || this.#redis.status !== "ready") return;
    this.#runId = runId;
    this.#ready = true;
    for (const done of [...this.#whenUp]) done();
    this.#connections += 1;
    if (this.#connections > 1 && this.#toSubscribe.size > 0)
      this.#restore = { startedAt: Date.now(), channels: 0, batches: 0 };
    this.#hooks.up(this);
    this.#schedule();
  }

  #onClose(reason: string): void {
    if (!this.#ready) return;
    this.#ready = false;
    // The new connection starts with no subscriptions: everything is restored once it is ready.
    for (const c of this.#live) this.#toSubscribe.add(c);
    for (const c of this.#sending) this.#toSubscribe.add(c);
    for (const c of this.#toUnsubscribe) this.#toSubscribe.delete(c);
    this.#live.clear();
    this.#sending.clear();
    this.#toUnsubscribe.clear();
    this.#hooks.down(this, reason);
  }

  #watchdog(): void {
    if (!this.#ready) return;
    this.#redis.ping().catch((err: Error) => {
      if (!this.#ready || this.#closed) return;
      this.#log.warn({ err, node: this.key }, "redis node did not answer PING: reconnecting");
      this.#redis.disconnect(true);
    });
  }

  /** Resolves once the node is ready, or after `timeoutMs` (it keeps retrying in the background). */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        const i = this.#whenUp.indexOf(done);
        if (i >= 0) this.#whenUp.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#whenUp.push(done);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#ping);
    if (this.#subscribeRetry) clearTimeout(this.#subscribeRetry);
    const wasReady = this.#ready;
    this.#ready = false;
    if (wasReady) await this.#redis.quit().catch(() => {});
    this.#redis.disconnect();
  }
}
