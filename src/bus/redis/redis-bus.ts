import { randomBytes } from "node:crypto";
import type { Registry } from "prom-client";
import { reconnectDelayMs } from "../../backoff.js";
import type { Config } from "../../config.js";
import type { HistoryEntry } from "../../ipc.js";
import type { Logger } from "../../log.js";
import type { NamespacePolicy, Namespaces } from "../../namespaces.js";
import type { Supervisor } from "../../primary/supervisor.js";
import type { Bus, BusSink, BusStats, JoinReply, Published, PublishRequest, Resume } from "../bus.js";
import { randomEpoch } from "../epoch.js";
import { joinReply, needsHistory } from "../join-reply.js";
import { ChannelOrder } from "./channel-order.js";
import { type LinkState, RedisLink } from "./redis-link.js";
import { type RelayCounts, registerRedisMetrics } from "./redis-metrics.js";
import type { Numbering, RedisNode } from "./redis-node.js";
import { parseRedisTarget, type RedisTarget } from "./redis-options.js";
import { OutageLog } from "./redis-outage-log.js";
import { META_TTL_MS, ORIGIN_LENGTH, parseChannelMessage, RedisNames } from "./redis-wire.js";
import { SioRedisBridge } from "./sio-redis-bridge.js";

/** How long start-up waits for Redis before serving anyway (messages stay local until it comes). */
const START_TIMEOUT_MS = 3000;
/** A channel nobody here wants stays subscribed this long, so subscribe/unsubscribe churn costs no round trips. */
const LINGER_MS = 5000;
/** A join that Redis has not confirmed by then lets its subscribers in anyway. */
const JOIN_TIMEOUT_MS = 5000;
/** Attempts to read a channel's offset after a subscription before giving up on syncing it. */
const JOIN_RETRIES = 10;
/** Reads of a resume's history before it answers with what it has (each catches up with a promise turn's messages). */
const RESUME_READS = 5;
/** An own message waits at most this long for an earlier message from another host that may still be coming. */
const STALL_MS = 250;

type RelayedChannel = {
  name: string;
  redisChannel: string;
  metaKey: string;
  historyKey: string;
  policy: NamespacePolicy;
  order: ChannelOrder;
  interested: boolean;
  /** Subscribers here were let in: a later join fills in what they missed, or tells them. */
  served: boolean;
  waiters: (() => void)[];
  joinTimer: NodeJS.Timeout | null;
  lingerTimer: NodeJS.Timeout | null;
  stallTimer: NodeJS.Timeout | null;
  resyncTimer: NodeJS.Timeout | null;
};

export type RedisBusDeps = {
  config: Config;
  namespaces: Namespaces;
  sink: BusSink;
  supervisor: Supervisor;
  log: Logger;
};

/**
 * The bus across hosts (`--redis`): Redis numbers every channel (epoch + offset in a meta hash), keeps its history
 * (a stream trimmed to the namespace's size, for its TTL) and carries its messages; one Lua script does all three
 * per message, plus the idempotency check. This host subscribes only to channels its workers want, and messages
 * reach local subscribers in offset order whether they were published here or elsewhere (ChannelOrder).
 *
 * Own messages are delivered from the script's reply and their echo on the subscription is dropped (only its
 * offset is read, as a watermark). Own replies and other hosts' messages travel on the same connection (RedisNode),
 * so they already arrive in offset order; ChannelOrder keeps it so across the promise turn a reply takes.
 *
 * A resume reads the channel's history from Redis at the join point, so a client resumes on any host or colour.
 * Outages: while a channel's node is unreachable, publishes here are numbered by this host alone under a local
 * epoch (subscribers are told), delivered here only and counted as unrelayed. When the channel is joined again,
 * what its subscribers missed is read from the history in Redis; what history no longer holds is counted as
 * missed and told to them (`history_gap`, reason `messages_lost`).
 */
export class RedisBus implements Bus {
  readonly #d: RedisBusDeps;
  readonly #target: RedisTarget;
  readonly #link: RedisLink;
  readonly #names: RedisNames;
  readonly #origin: string;
  readonly #originBytes: Buffer;
  readonly #sio: SioRedisBridge;
  readonly #channels = new Map<string, RelayedChannel>();
  readonly #counts: RelayCounts = {
    relayed: 0,
    unrelayed: 0,
    received: 0,
    missed: 0,
    echoes: 0,
    duplicates: 0,
    filled: 0,
    lostNotices: 0,
  };
  readonly #outages: OutageLog;
  readonly #log: Logger;
  #epochs = 0;

  constructor(d: RedisBusDeps) {
    this.#d = d;
    const config = d.config;
    this.#log = d.log.child({ module: "redis" });
    this.#names = new RedisNames(config.redisPrefix);
    this.#origin = randomBytes(9).toString("base64url");
    this.#originBytes = Buffer.from(this.#origin, "latin1");
    if (this.#originBytes.length !== ORIGIN_LENGTH) throw new Error("origin id length");
    const target = parseRedisTarget(config.redis ?? "", config.redisCluster);
    this.#target = target;
    this.#link = new RedisLink(target, {
      name: `switchboard:${config.instance}:${process.pid}`,
      log: this.#log,
      hooks: {
        message: (channel, payload) => this.#onMessage(channel, payload),
        subscribing: (channels) => this.#onSubscribing(channels),
        subscribed: (node, channels) => this.#onSubscribed(node, channels),
        lost: (channels) => this.#onLost(channels),
        state: (state, reason) => this.#onState(state, reason),
      },
    });
    this.#sio = new SioRedisBridge({
      link: this.#link,
      names: this.#names,
      origin: this.#originBytes,
      supervisor: d.supervisor,
      log: this.#log,
    });
    this.#outages = new OutageLog({
      log: this.#log,
      losses: () => ({
        unrelayed: this.#counts.unrelayed,
        missed: this.#counts.missed,
        sioUnrelayed: this.#sio.counters.unrelayed,
      }),
      state: () => this.#link.state,
      joining: () => this.#joining(),
      status: () => this.#link.status(),
    });
  }

  /** Connects (waiting up to a few seconds, so the first workers' Socket.IO heartbeats already cross hosts). */
  async start(): Promise<void> {
    await this.#link.start(START_TIMEOUT_MS);
    if (this.#link.state !== "up") {
      this.#log.warn(
        { redis: this.#target.display, state: this.#link.state },
        "redis not reachable yet: messages are delivered on this host only until it is",
      );
    }
  }

  publish(messages: readonly PublishRequest[], done: (results: Published[]) => void): void {
    const results = new Array<Published>(messages.length);
    let left = messages.length;
    if (left === 0) return done(results);
    const window = this.#d.config.idempotencyWindowMs;
    messages.forEach(({ channel, dataJson, idempotencyKey }, i) => {
      const st = this.#state(channel);
      const own = st.order.own(dataJson, (result) => {
        results[i] = result;
        left -= 1;
        if (left === 0) done(results);
      });
      const settle = (result: Published | null, err?: Error) => {
        if (result === null) {
          this.#counts.unrelayed += 1;
          if (err) this.#log.debug({ err, channel }, "publish script failed: delivered on this host only");
        } else if (result.duplicate) this.#counts.duplicates += 1;
        else this.#counts.relayed += 1;
        st.order.settle(own, result);
        this.#settled(st);
      };
      const node = this.#link.nodeFor(st.redisChannel);
      if (!node) {
        settle(null);
        return;
      }
      node.publishMessage(
        {
          channel: st.redisChannel,
          metaKey: st.metaKey,
          historyKey: st.historyKey,
          idempotencyKey:
            idempotencyKey === null || window === 0
              ? null
              : this.#names.idempotencyKey(channel, idempotencyKey),
          origin: this.#origin,
          dataJson,
          historySize: st.policy.historySize,
          historyTtlMs: st.policy.historyTtlMs,
          idempotencyWindowMs: window,
        },
        this.#numbering(st),
        settle,
      );
    });
  }

  /**
   * Answers once the channel's subscription carries other hosts' messages here (at once when the link is down):
   * its position then, and for a resume the history after `since`, read from Redis at the join point.
   */
  join(channel: string, resume: Resume | null, done: (reply: JoinReply) => void): void {
    this.#whenSubscribed(channel, () => {
      const st = this.#state(channel);
      const pos = st.order.position();
      if (!needsHistory(pos, resume)) return done(joinReply(pos, resume, []));
      this.#readResume(st, resume, pos.epoch, [], 0, done);
    });
  }

  /**
   * The history a resume needs, up to this host's position when the answer goes out. The read goes down the
   * channel's connection, so its answer holds every message numbered before Redis ran it; but ioredis hands over
   * the subscription's messages as it parses them and a command's reply a promise turn later, so this host may
   * have delivered a few newer ones by the time the reply is seen: those are read again (they are in history now).
   */
  #readResume(
    st: RelayedChannel,
    resume: Resume,
    epoch: string,
    got: HistoryEntry[],
    reads: number,
    done: (reply: JoinReply) => void,
  ): void {
    const node = this.#link.nodeFor(st.redisChannel);
    if (!node) return done(joinReply(st.order.position(), resume, null));
    // XRANGE answers in offset order: what is read so far ends at got's last entry.
    const from = (got.at(-1)?.[0] ?? resume.since) + 1;
    node.readHistory(st.historyKey, from, null, Math.max(1, st.policy.historySize), (entries) => {
      const now = st.order.position();
      const all = entries === null ? null : got.concat(entries);
      // Again while a read brings entries and still ends below the position; one that brings none means the rest
      // is not in history (trimmed), not on its way.
      const more = entries !== null && entries.length > 0 && (all?.at(-1)?.[0] ?? 0) < now.offset;
      if (more && all && now.epoch === epoch && reads < RESUME_READS)
        return this.#readResume(st, resume, epoch, all, reads + 1, done);
      this.#settled(st);
      // A local numbering is never in Redis: it answers null.
      done(joinReply(now, resume, now.epoch === epoch ? all : null));
    });
  }

  history(channel: string, resume: Resume | null, done: (reply: JoinReply) => void): void {
    const names = this.#names;
    const node = this.#link.nodeFor(names.messageChannel(channel));
    const all = resume ?? { since: 0, epoch: null };
    if (!node) return done(joinReply({ offset: 0, epoch: "" }, all, null));
    node.readPosition(names.metaKey(channel), (pos) => {
      if (pos === undefined) return done(joinReply({ offset: 0, epoch: "" }, all, null));
      if (pos === null) return done(joinReply({ offset: 0, epoch: "" }, null, []));
      if (!needsHistory(pos, all)) return done(joinReply(pos, all, []));
      const count = Math.max(1, this.#d.namespaces.of(channel).historySize);
      node.readHistory(names.historyKey(channel), all.since + 1, pos.offset, count, (entries) =>
        done(joinReply(pos, all, entries)),
      );
    });
  }

  #whenSubscribed(channel: string, ready: () => void): void {
    const st = this.#channels.get(channel);
    if (st?.order.phase === "held") st.waiters.push(ready);
    else {
      if (st) st.served = true;
      ready();
    }
  }

  /** The bridge's interest changed: subscribe in Redis on the first interested worker, leave after the last. */
  interest(channel: string, interested: boolean): void {
    const st = this.#state(channel);
    st.interested = interested;
    if (interested) {
      if (st.lingerTimer) {
        clearTimeout(st.lingerTimer);
        st.lingerTimer = null;
        return;
      }
      this.#link.subscribe(st.redisChannel);
      if (this.#link.reachable(st.redisChannel)) this.#hold(st);
      return;
    }
    st.lingerTimer ??= setTimeout(() => {
      st.lingerTimer = null;
      if (st.interested) return;
      this.#link.unsubscribe(st.redisChannel);
      st.served = false;
      this.#free(st);
    }, LINGER_MS);
  }

  /** History and numbering expire in Redis by themselves. */
  sweep(): void {}

  stats(): BusStats {
    return {
      channels: this.#channels.size,
      historyMessages: 0,
      historyBytes: 0,
      historyEvicted: 0,
      idempotencyKeys: 0,
      duplicates: this.#counts.duplicates,
    };
  }

  #state(channel: string): RelayedChannel {
    let st = this.#channels.get(channel);
    if (st) return st;
    const sink = this.#d.sink;
    const counts = this.#counts;
    const state: RelayedChannel = {
      name: channel,
      redisChannel: this.#names.messageChannel(channel),
      metaKey: this.#names.metaKey(channel),
      historyKey: this.#names.historyKey(channel),
      policy: this.#d.namespaces.of(channel),
      order: new ChannelOrder(
        {
          deliver: (offset, dataJson) => sink.deliver(channel, offset, dataJson),
          lost: (offset, epoch) => {
            counts.lostNotices += 1;
            sink.lost(channel, offset, epoch);
          },
          fill: (from, to, done) => this.#fill(state, from, to, done),
          resync: () => this.#resync(state),
          missed: (count) => {
            counts.missed += count;
          },
        },
        randomEpoch,
      ),
      interested: false,
      served: false,
      waiters: [],
      joinTimer: null,
      lingerTimer: null,
      stallTimer: null,
      resyncTimer: null,
    };
    st = state;
    this.#channels.set(channel, st);
    return st;
  }

  /** What a script needs besides the names: this host's view of the numbering, and a fresh epoch if Redis has none. */
  #numbering(st: RelayedChannel): Numbering {
    this.#epochs += 1;
    return {
      knownEpoch: st.order.knownEpoch,
      redisFloor: st.order.redisFloor,
      floor: st.order.floor,
      // Unique across hosts: this primary's origin id, then a counter.
      newEpoch: `${this.#origin.slice(0, 8)}${this.#epochs.toString(36)}`,
      metaTtlMs: Math.max(META_TTL_MS, st.policy.historyTtlMs),
    };
  }

  /** Offsets that never arrived here: read them from the channel's history in Redis. */
  #fill(
    st: RelayedChannel,
    from: number,
    to: number,
    done: (entries: [number, string][] | null) => void,
  ): void {
    const node = this.#link.nodeFor(st.redisChannel);
    if (!node || st.policy.historySize === 0) return done(node ? [] : null);
    node.readHistory(st.historyKey, from, to, st.policy.historySize, (entries) => {
      if (entries) this.#counts.filled += entries.length;
      done(entries);
      this.#settled(st);
    });
  }

  /** Redis' numbering changed under a live subscription, or this host had to number alone: join again. */
  #resync(st: RelayedChannel): void {
    const node = this.#link.nodeFor(st.redisChannel);
    if (!wanted(st) || !node?.ready) return;
    queueMicrotask(() => this.#join(st, node, 0));
  }

  #hold(st: RelayedChannel): void {
    st.order.hold();
    st.joinTimer ??= setTimeout(() => {
      st.joinTimer = null;
      if (st.order.phase !== "held") return;
      this.#log.warn({ channel: st.name }, "redis subscription not confirmed in time: subscribers let in");
      this.#free(st);
    }, JOIN_TIMEOUT_MS);
  }

  #free(st: RelayedChannel): void {
    st.order.free();
    this.#letIn(st);
    this.#settled(st);
  }

  #letIn(st: RelayedChannel): void {
    if (st.joinTimer) {
      clearTimeout(st.joinTimer);
      st.joinTimer = null;
    }
    if (st.waiters.length > 0) st.served = true;
    const waiters = st.waiters;
    st.waiters = [];
    for (const ready of waiters) ready();
  }

  /** Hold channels from the moment their SUBSCRIBE goes out, so nothing they carry is delivered before the join. */
  #onSubscribing(redisChannels: string[]): void {
    for (const redisChannel of redisChannels) {
      const st = this.#stateOf(redisChannel);
      if (st && wanted(st)) this.#hold(st);
    }
  }

  /** Subscriptions confirmed on `node`: read each channel's position there (after every message before it), then deliver. */
  #onSubscribed(node: RedisNode, redisChannels: string[]): void {
    for (const redisChannel of redisChannels) {
      const st = this.#stateOf(redisChannel);
      if (st && wanted(st)) this.#join(st, node, 0);
    }
  }

  #join(st: RelayedChannel, node: RedisNode, attempt: number): void {
    if (st.resyncTimer) {
      clearTimeout(st.resyncTimer);
      st.resyncTimer = null;
    }
    this.#hold(st);
    node.join(st.metaKey, st.historyKey, this.#numbering(st), (position, err) => {
      if (st.order.phase !== "held") return;
      if (position !== null) {
        st.order.release(position.offset, position.epoch, st.served);
        this.#letIn(st);
        this.#settled(st);
        return;
      }
      // The subscription is live but the node refused the read (a cluster node just back answers CLUSTERDOWN for
      // a moment): deliver what arrives now and try again.
      this.#log.debug({ err, channel: st.name, attempt }, "join script failed: retrying");
      this.#free(st);
      if (attempt >= JOIN_RETRIES) {
        this.#log.warn(
          { err, channel: st.name },
          "redis join failed repeatedly: channel delivered without a position",
        );
        return;
      }
      st.resyncTimer = setTimeout(
        () => {
          st.resyncTimer = null;
          if (wanted(st) && node.ready && this.#link.nodeFor(st.redisChannel) === node)
            this.#join(st, node, attempt + 1);
        },
        reconnectDelayMs(attempt + 1),
      );
    });
  }

  #onLost(redisChannels: string[]): void {
    for (const redisChannel of redisChannels) {
      const st = this.#stateOf(redisChannel);
      if (!st) continue;
      if (st.resyncTimer) {
        clearTimeout(st.resyncTimer);
        st.resyncTimer = null;
      }
      this.#free(st);
    }
  }

  #onMessage(channel: Buffer, payload: Buffer): void {
    const redisChannel = channel.toString("latin1");
    const name = this.#names.channelOf(redisChannel);
    if (name === null) {
      if (this.#sio.owns(redisChannel)) this.#sio.fromRedis(payload);
      return;
    }
    const st = this.#channels.get(name);
    if (!st) return;
    const m = parseChannelMessage(payload, this.#originBytes);
    if (!m) return this.#log.debug({ channel: name }, "malformed message from redis dropped");
    if (m.own) {
      this.#counts.echoes += 1;
      st.order.echo(m.offset, m.epoch);
    } else {
      this.#counts.received += 1;
      st.order.remote(m.offset, m.epoch, m.dataJson as string);
    }
    this.#settled(st);
  }

  /** After the order moved: wait (bounded) for a gap that may still fill, forget idle channels nobody wants. */
  #settled(st: RelayedChannel): void {
    if (st.order.stalled) {
      st.stallTimer ??= setTimeout(() => {
        st.stallTimer = null;
        st.order.unstall();
        this.#settled(st);
      }, STALL_MS);
    } else if (st.stallTimer) {
      clearTimeout(st.stallTimer);
      st.stallTimer = null;
    }
    if (!wanted(st) && !st.resyncTimer && st.order.idle && st.waiters.length === 0) {
      this.#channels.delete(st.name);
    }
  }

  #onState(state: LinkState, reason: string): void {
    this.#outages.linkChanged(state, reason);
  }

  /** For /health on the public port: the link's state, without detail. */
  health(): { state: LinkState; since: string } {
    return { state: this.#link.state, since: this.#link.since };
  }

  /** The state of a channel this bus tracks, by its Redis channel name. */
  #stateOf(redisChannel: string): RelayedChannel | undefined {
    const name = this.#names.channelOf(redisChannel);
    return name === null ? undefined : this.#channels.get(name);
  }

  /** Channels waiting for their join point (subscribers held until then). */
  #joining(): number {
    let n = 0;
    for (const st of this.#channels.values()) if (st.order.phase === "held") n += 1;
    return n;
  }

  status(): Record<string, unknown> {
    let stale = 0;
    for (const st of this.#channels.values()) stale += st.order.stale;
    return {
      ...this.#link.status(),
      origin: this.#origin,
      outages: this.#outages.outages,
      outageSince: this.#outages.since?.toISOString() ?? null,
      channels: this.#channels.size,
      joining: this.#joining(),
      ...this.#counts,
      stale,
      socketio: { ...this.#sio.counters },
    };
  }

  registerMetrics(registry: Registry): void {
    const link = this.#link;
    registerRedisMetrics(registry, {
      counts: this.#counts,
      sio: this.#sio.counters,
      linkUp: () => link.state === "up",
      outages: () => this.#outages.outages,
      subscriptions: () => link.liveSubscriptions,
    });
  }

  async close(): Promise<void> {
    this.#outages.close();
    for (const st of this.#channels.values()) {
      for (const t of [st.joinTimer, st.lingerTimer, st.stallTimer, st.resyncTimer]) if (t) clearTimeout(t);
    }
    this.#sio.close();
    await this.#link.close();
  }
}

/** Someone here subscribes to the channel, or did a moment ago (its subscription lingers). */
function wanted(st: RelayedChannel): boolean {
  return st.interested || st.lingerTimer !== null;
}
