import { randomBytes } from "node:crypto";
import type { Registry } from "prom-client";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { ChannelHub } from "./channel-hub.js";
import { type LinkState, RedisLink } from "./redis-link.js";
import { type RelayCounts, registerRedisMetrics } from "./redis-metrics.js";
import type { RedisNode } from "./redis-node.js";
import { parseRedisTarget, type RedisTarget, reconnectDelayMs } from "./redis-options.js";
import { OutageLog } from "./redis-outage-log.js";
import { ORIGIN_LENGTH, parseChannelMessage, RedisNames } from "./redis-wire.js";
import type { Relay } from "./relay.js";
import { ChannelOrder } from "./relay-order.js";
import { SioRedisBridge } from "./sio-redis-bridge.js";
import type { Supervisor } from "./supervisor.js";
import type { WorkerBridge } from "./worker-bridge.js";

/** How long start-up waits for Redis before serving anyway (messages stay local until it comes). */
const START_TIMEOUT_MS = 3000;
/** A channel nobody here wants stays subscribed this long, so subscribe/unsubscribe churn costs no round trips. */
const LINGER_MS = 5000;
/** A join that Redis has not confirmed by then lets its subscribers in anyway. */
const JOIN_TIMEOUT_MS = 5000;
/** Attempts to read a channel's offset after a subscription before giving up on syncing it. */
const JOIN_RETRIES = 10;
/** An own message waits at most this long for an earlier message from another host that may still be coming. */
const STALL_MS = 250;

type ChannelState = {
  name: string;
  redisChannel: string;
  key: string;
  order: ChannelOrder;
  interested: boolean;
  /** Subscribers here were let in: a later join counts what they missed. */
  served: boolean;
  /** The channel's offset was read from Redis since interest began: a baseline to count gaps against. */
  synced: boolean;
  waiters: (() => void)[];
  joinTimer: NodeJS.Timeout | null;
  lingerTimer: NodeJS.Timeout | null;
  stallTimer: NodeJS.Timeout | null;
  resyncTimer: NodeJS.Timeout | null;
};

export type RedisRelayDeps = {
  config: Config;
  hub: ChannelHub;
  bridge: WorkerBridge;
  supervisor: Supervisor;
  log: Logger;
};

/**
 * The cross-host relay (`--redis`): Redis sequences every channel (one counter per channel, INCR and PUBLISH in
 * one script), this host subscribes only to channels its workers want, and messages reach local subscribers in
 * offset order whether they were published here or elsewhere.
 *
 * Own messages are delivered from the script's reply and their echo on the subscription is dropped (only its
 * offset is read, as a watermark). Own replies and other hosts' messages travel on the same connection (RedisNode),
 * so they already arrive in offset order; ChannelOrder keeps it so across the promise turn a reply takes.
 *
 * Outage semantics: while a channel's node is unreachable, publishes on this host are sequenced by the local hub
 * (offset = last offset seen here + 1) and delivered here only; they are counted as unrelayed and reported in one
 * warning when the link is back. On rejoin each host raises the Redis counter to what it delivered, so offsets
 * never go back on any host; messages other hosts sequenced that never reached this one are counted as missed.
 * Offsets of different hosts may disagree for messages published during the outage.
 */
export class RedisRelay implements Relay {
  readonly #d: RedisRelayDeps;
  readonly #target: RedisTarget;
  readonly #link: RedisLink;
  readonly #names: RedisNames;
  readonly #origin: string;
  readonly #originBytes: Buffer;
  readonly #sio: SioRedisBridge;
  readonly #channels = new Map<string, ChannelState>();
  readonly #counts: RelayCounts = { relayed: 0, unrelayed: 0, received: 0, missed: 0, echoes: 0 };
  readonly #outages: OutageLog;
  readonly #log: Logger;

  constructor(d: RedisRelayDeps) {
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
    d.hub.interestListener = (channel, interested) => this.#interest(channel, interested);
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

  publish(messages: readonly [channel: string, dataJson: string][], done: (offsets: number[]) => void): void {
    const offsets = new Array<number>(messages.length);
    let left = messages.length;
    if (left === 0) return done(offsets);
    messages.forEach(([channel, dataJson], i) => {
      const st = this.#state(channel);
      const own = st.order.own(dataJson, (offset) => {
        offsets[i] = offset;
        left -= 1;
        if (left === 0) done(offsets);
      });
      const settle = (offset: number | null, err?: Error) => {
        if (offset === null) {
          this.#counts.unrelayed += 1;
          if (err) this.#log.debug({ err, channel }, "publish script failed: delivered on this host only");
        } else this.#counts.relayed += 1;
        st.order.settle(own, offset);
        this.#settled(st);
      };
      const node = this.#link.nodeFor(st.redisChannel);
      if (!node) settle(null);
      else node.publishMessage(st.redisChannel, st.key, this.#origin, dataJson, st.order.floor, settle);
    });
  }

  whenSubscribed(channel: string, ready: () => void): void {
    const st = this.#channels.get(channel);
    if (st?.order.phase === "held") st.waiters.push(ready);
    else {
      if (st) st.served = true;
      ready();
    }
  }

  #state(channel: string): ChannelState {
    let st = this.#channels.get(channel);
    if (st) return st;
    const { hub, bridge } = this.#d;
    st = {
      name: channel,
      redisChannel: this.#names.messageChannel(channel),
      key: this.#names.sequenceKey(channel),
      order: new ChannelOrder(
        {
          deliver: (offset, dataJson) => bridge.deliver(channel, offset, dataJson),
          advance: (offset) => hub.advance(channel, offset),
          missed: (count) => {
            this.#counts.missed += count;
          },
        },
        hub.lastOffset(channel),
        "free",
      ),
      interested: false,
      served: false,
      synced: false,
      waiters: [],
      joinTimer: null,
      lingerTimer: null,
      stallTimer: null,
      resyncTimer: null,
    };
    this.#channels.set(channel, st);
    return st;
  }

  /** The hub's interest changed: subscribe in Redis on the first interested worker, leave after the last. */
  #interest(channel: string, interested: boolean): void {
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
      st.synced = false;
      this.#free(st);
    }, LINGER_MS);
  }

  #hold(st: ChannelState): void {
    st.order.hold();
    st.joinTimer ??= setTimeout(() => {
      st.joinTimer = null;
      if (st.order.phase !== "held") return;
      this.#log.warn({ channel: st.name }, "redis subscription not confirmed in time: subscribers let in");
      this.#free(st);
    }, JOIN_TIMEOUT_MS);
  }

  #free(st: ChannelState): void {
    st.order.free();
    this.#letIn(st);
    this.#settled(st);
  }

  #letIn(st: ChannelState): void {
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

  /** Subscriptions confirmed on `node`: read each channel's offset there (after every message before it), then deliver. */
  #onSubscribed(node: RedisNode, redisChannels: string[]): void {
    for (const redisChannel of redisChannels) {
      const st = this.#stateOf(redisChannel);
      if (st && wanted(st)) this.#join(st, node, 0);
    }
  }

  #join(st: ChannelState, node: RedisNode, attempt: number): void {
    if (st.resyncTimer) {
      clearTimeout(st.resyncTimer);
      st.resyncTimer = null;
    }
    this.#hold(st);
    node.sync(st.key, st.order.floor, (base, err) => {
      if (st.order.phase !== "held") return;
      if (base !== null) {
        // Without a baseline (subscribers let in while Redis was unreachable) nothing can be counted yet.
        st.order.release(base, st.served && st.synced);
        st.synced = true;
        this.#letIn(st);
        this.#settled(st);
        return;
      }
      // The subscription is live but the node refused the read (a cluster node just back answers CLUSTERDOWN for
      // a moment): deliver what arrives now, counting gaps from here if there is a baseline, and try again.
      this.#log.debug({ err, channel: st.name, attempt }, "join script failed: retrying");
      if (st.served && st.synced) {
        st.order.release(st.order.last, true);
        this.#letIn(st);
        this.#settled(st);
      } else this.#free(st);
      if (attempt >= JOIN_RETRIES) {
        this.#log.warn(
          { err, channel: st.name },
          "redis join failed repeatedly: channel delivered without offset sync",
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
      st.order.echo(m.offset);
    } else {
      this.#counts.received += 1;
      st.order.remote(m.offset, m.dataJson as string);
    }
    this.#settled(st);
  }

  /** After the order moved: wait (bounded) for a gap that may still fill, forget idle channels nobody wants. */
  #settled(st: ChannelState): void {
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

  /** The state of a channel this relay tracks, by its Redis channel name. */
  #stateOf(redisChannel: string): ChannelState | undefined {
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
    this.#d.hub.interestListener = null;
    this.#sio.close();
    await this.#link.close();
  }
}

/** Someone here subscribes to the channel, or did a moment ago (its subscription lingers). */
function wanted(st: ChannelState): boolean {
  return st.interested || st.lingerTimer !== null;
}
