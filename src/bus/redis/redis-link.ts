import { Redis } from "ioredis";
import type { Logger } from "../../log.js";
import { keySlot, SLOTS } from "./key-slot.js";
import { type NodeHooks, RedisNode } from "./redis-node.js";
import type { RedisEndpoint, RedisTarget } from "./redis-options.js";

const TOPOLOGY_INTERVAL_MS = 10_000;

/** `up`: every node reachable; `degraded`: some (cluster); `down`: none; `connecting`: never reached yet. */
export type LinkState = "connecting" | "up" | "degraded" | "down";

export type LinkHooks = {
  message(channel: Buffer, payload: Buffer): void;
  /** A SUBSCRIBE for these channels goes out on `node` now. */
  subscribing(channels: string[]): void;
  /** Channels now subscribed on `node` (first time or restored); their scripts go to the same node. */
  subscribed(node: RedisNode, channels: string[]): void;
  /** Channels whose subscription is gone until further notice (node down, or the slot moved). */
  lost(channels: string[]): void;
  state(state: LinkState, reason: string): void;
};

/**
 * This host's connections to Redis: one node, or one connection per Redis Cluster master with the slot map that
 * routes each channel to its shard. Holds the set of Redis channels this host wants (interest routing: one set
 * per host, not per worker) and keeps each on its owner's connection, through reconnects and slot moves.
 *
 * Cluster mode speaks to the masters directly rather than through ioredis' Cluster client, because the relay's
 * ordering needs a channel's publish script and its SSUBSCRIBE on the same connection (see RedisNode), and
 * ioredis' sharded subscribers are separate connections that resubscribe without telling when they are done.
 */
export class RedisLink {
  readonly #target: RedisTarget;
  readonly #hooks: LinkHooks;
  readonly #log: Logger;
  readonly #name: string;
  readonly #nodes = new Map<string, RedisNode>();
  /** Cluster: owner of each slot, and whether every slot has one. */
  #slots: (RedisNode | undefined)[] = [];
  #covered = false;
  readonly #desired = new Map<string, RedisNode | null>();
  #state: LinkState = "connecting";
  #since = Date.now();
  #topologyTimer: NodeJS.Timeout | null = null;
  #refreshing: Promise<void> | null = null;
  #refreshSoon: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(target: RedisTarget, o: { name: string; log: Logger; hooks: LinkHooks }) {
    this.#target = target;
    this.#hooks = o.hooks;
    this.#log = o.log;
    this.#name = o.name;
    // One node: known from the start, so subscriptions made before start() have their owner.
    if (!target.cluster) this.#node(target.seeds[0] as RedisEndpoint);
  }

  get state(): LinkState {
    return this.#state;
  }

  /** Connects; resolves when every node is ready or after `timeoutMs` (then it keeps trying in the background). */
  async start(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (!this.#target.cluster) {
      await this.#node(this.#target.seeds[0] as RedisEndpoint).whenReady(timeoutMs);
      return;
    }
    await this.#refreshTopology();
    this.#topologyTimer = setInterval(() => void this.#refreshTopology(), TOPOLOGY_INTERVAL_MS);
    this.#topologyTimer.unref();
    await Promise.all([...this.#nodes.values()].map((n) => n.whenReady(Math.max(0, deadline - Date.now()))));
  }

  /** The node that owns `redisChannel` (and the key sharing its hash tag); null before the slot map is known. */
  nodeFor(redisChannel: string): RedisNode | null {
    if (!this.#target.cluster) return this.#nodes.values().next().value ?? null;
    return this.#slots[keySlot(redisChannel)] ?? null;
  }

  subscribe(redisChannel: string): void {
    const node = this.nodeFor(redisChannel);
    this.#desired.set(redisChannel, node);
    node?.subscribe(redisChannel);
  }

  unsubscribe(redisChannel: string): void {
    const node = this.#desired.get(redisChannel);
    this.#desired.delete(redisChannel);
    node?.unsubscribe(redisChannel);
  }

  /** True when `redisChannel`'s node is connected (a subscription will be confirmed soon). */
  reachable(redisChannel: string): boolean {
    return this.nodeFor(redisChannel)?.ready === true;
  }

  /** When the link entered its current state (ISO time). */
  get since(): string {
    return new Date(this.#since).toISOString();
  }

  status(): Record<string, unknown> {
    return {
      state: this.#state,
      since: this.since,
      url: this.#target.display,
      cluster: this.#target.cluster,
      subscriptions: this.#desired.size,
      nodes: [...this.#nodes.values()].map((n) => ({
        node: n.key,
        ready: n.ready,
        channels: n.channelCount,
      })),
    };
  }

  get liveSubscriptions(): number {
    let n = 0;
    for (const node of this.#nodes.values()) n += node.liveCount;
    return n;
  }

  #node(endpoint: RedisEndpoint): RedisNode {
    const key = `${endpoint.host}:${endpoint.port}`;
    let node = this.#nodes.get(key);
    if (node) return node;
    const hooks: NodeHooks = {
      up: () => this.#updateState(`node ${key} ready`),
      down: (n, reason) => {
        this.#hooks.lost(n.channels());
        this.#updateState(`node ${key}: ${reason}`);
        // A master that went away may have been replaced by a replica: look again soon.
        if (this.#target.cluster) this.#scheduleRefresh(1000);
      },
      message: (channel, payload) => this.#hooks.message(channel, payload),
      subscribing: (_n, channels) => this.#hooks.subscribing(channels),
      subscribed: (n, channels) => this.#hooks.subscribed(n, channels),
      moved: () => this.#scheduleRefresh(100),
    };
    node = new RedisNode(endpoint, {
      auth: this.#target.auth,
      sharded: this.#target.cluster,
      name: this.#name,
      hooks,
      log: this.#log,
    });
    this.#nodes.set(key, node);
    return node;
  }

  #updateState(reason: string): void {
    const nodes = [...this.#nodes.values()];
    const ready = nodes.filter((n) => n.ready).length;
    const mapped = !this.#target.cluster || this.#covered;
    let state: LinkState;
    if (ready === nodes.length && ready > 0 && mapped) state = "up";
    else if (ready === 0) state = this.#state === "connecting" ? "connecting" : "down";
    else state = "degraded";
    if (state === this.#state) return;
    this.#state = state;
    this.#since = Date.now();
    this.#hooks.state(state, reason);
  }

  #scheduleRefresh(delayMs: number): void {
    if (this.#refreshSoon || this.#closed) return;
    this.#refreshSoon = setTimeout(() => {
      this.#refreshSoon = null;
      void this.#refreshTopology();
    }, delayMs);
  }

  /** Reads CLUSTER SLOTS and moves every wanted channel whose slot changed owner. */
  #refreshTopology(): Promise<void> {
    this.#refreshing ??= this.#readSlots()
      .then((ranges) => {
        if (ranges) this.#applySlots(ranges);
        else this.#scheduleRefresh(2000);
      })
      .finally(() => {
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  async #readSlots(): Promise<[number, number, RedisEndpoint][] | null> {
    const known = [...this.#nodes.values()].map((n) => n.key);
    const candidates = [...new Set([...known, ...this.#target.seeds.map((s) => `${s.host}:${s.port}`)])];
    for (const key of candidates) {
      const [host, port] = splitKey(key);
      const probe = new Redis({
        ...this.#target.auth,
        host,
        port,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 2000,
        commandTimeout: 2000,
      });
      probe.on("error", () => {});
      try {
        await probe.connect();
        const reply = (await probe.call("CLUSTER", "SLOTS")) as [
          number,
          number,
          [string, number, ...unknown[]],
        ][];
        return reply.map(([from, to, [h, p]]) => [from, to, { host: h || host, port: p }]);
      } catch (err) {
        this.#log.debug({ err, node: key }, "CLUSTER SLOTS failed");
      } finally {
        probe.disconnect();
      }
    }
    return null;
  }

  #applySlots(ranges: [number, number, RedisEndpoint][]): void {
    if (this.#closed) return;
    const slots: (RedisNode | undefined)[] = new Array(SLOTS);
    let covered = 0;
    for (const [from, to, endpoint] of ranges) {
      const node = this.#node(endpoint);
      for (let s = from; s <= to; s++) slots[s] = node;
      covered += to - from + 1;
    }
    this.#slots = slots;
    this.#covered = covered === SLOTS;
    if (!this.#covered) this.#log.warn({ covered }, "redis cluster slot map is incomplete");
    const moved: string[] = [];
    for (const [channel, was] of this.#desired) {
      const now = this.nodeFor(channel);
      if (now === was) continue;
      was?.unsubscribe(channel);
      now?.subscribe(channel);
      this.#desired.set(channel, now);
      moved.push(channel);
    }
    if (moved.length > 0) {
      this.#log.info(
        { channels: moved.length },
        "redis cluster slots moved: channels follow their new owners",
      );
      this.#hooks.lost(moved);
    }
    const owners = new Set(slots);
    for (const [key, node] of this.#nodes) {
      if (owners.has(node)) continue;
      this.#nodes.delete(key);
      void node.close();
    }
    this.#updateState("cluster slot map read");
    // A master that is gone stays in the map until its replica has taken over (seconds): look again until then.
    if ([...owners].some((n) => n !== undefined && !n.ready)) this.#scheduleRefresh(1000);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#topologyTimer) clearInterval(this.#topologyTimer);
    if (this.#refreshSoon) clearTimeout(this.#refreshSoon);
    await Promise.all([...this.#nodes.values()].map((n) => n.close()));
  }
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(":");
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
