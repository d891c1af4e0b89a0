import { randomBytes } from "node:crypto";
import type { NamespacePolicy, Namespaces } from "../namespaces.js";
import type { Bus, BusSink, BusStats, JoinReply, Published, PublishRequest, Resume } from "./bus.js";
import { HistoryRing } from "./history-ring.js";
import { IdempotencyCache } from "./idempotency.js";
import { joinReply, needsHistory } from "./join-reply.js";

/** Buckets of forgotten-channel generations (see #epochFor): 64 Ki × 4 bytes. */
const GENERATION_BUCKETS = 65_536;

type MemoryChannel = {
  readonly name: string;
  readonly epoch: string;
  offset: number;
  readonly policy: NamespacePolicy;
  ring: HistoryRing | null;
  interested: boolean;
  lastPublishAt: number;
};

export type MemoryBusOptions = {
  namespaces: Namespaces;
  maxHistoryBytes: number;
  idempotencyWindowMs: number;
  now?: () => number;
};

/**
 * One host's sequencer and history, in the primary's memory: each channel's offset and epoch, its last messages for
 * resume (per namespace: size and TTL; host-wide: --history-max-bytes, beyond which the history of the channels
 * published to longest ago is dropped), and recent idempotency keys. A channel with no interested worker and no
 * history is forgotten at once.
 *
 * Epochs: a restart of the primary starts every numbering over, so each process has its own epoch prefix. Within
 * a process a forgotten channel also starts over at offset 0; its next state gets a new epoch only if the old one
 * had numbered messages (a per-bucket generation is bumped then), so a quiet channel whose subscribers all moved
 * keeps its epoch and their resume is not refused for nothing.
 */
export class MemoryBus implements Bus {
  readonly #sink: BusSink;
  readonly #namespaces: Namespaces;
  readonly #maxBytes: number;
  readonly #now: () => number;
  readonly #channels = new Map<string, MemoryChannel>();
  /** Channels with history, least recently published first (re-inserted on each publish). */
  readonly #withHistory = new Map<string, MemoryChannel>();
  readonly #generations = new Uint32Array(GENERATION_BUCKETS);
  readonly #processEpoch = randomBytes(4).toString("base64url");
  readonly #idempotency: IdempotencyCache;
  #historyBytes = 0;
  #historyMessages = 0;
  #evicted = 0;
  #duplicates = 0;

  constructor(sink: BusSink, o: MemoryBusOptions) {
    this.#sink = sink;
    this.#namespaces = o.namespaces;
    this.#maxBytes = o.maxHistoryBytes;
    this.#now = o.now ?? Date.now;
    this.#idempotency = new IdempotencyCache(o.idempotencyWindowMs, undefined, this.#now);
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  publish(messages: readonly PublishRequest[], done: (results: Published[]) => void): void {
    done(messages.map((m) => this.#publishOne(m)));
  }

  #publishOne({ channel, dataJson, idempotencyKey }: PublishRequest): Published {
    if (idempotencyKey !== null) {
      const prior = this.#idempotency.get(channel, idempotencyKey);
      if (prior) {
        this.#duplicates += 1;
        return { ...prior, duplicate: true };
      }
    }
    const s = this.#state(channel);
    s.offset += 1;
    s.lastPublishAt = this.#now();
    this.#record(s, dataJson);
    this.#sink.deliver(channel, s.offset, dataJson);
    if (idempotencyKey !== null) this.#idempotency.set(channel, idempotencyKey, s.offset, s.epoch);
    const published = { offset: s.offset, epoch: s.epoch, duplicate: false };
    this.#forgetIfIdle(s);
    return published;
  }

  join(channel: string, resume: Resume | null, done: (reply: JoinReply) => void): void {
    const s = this.#state(channel);
    const pos = { offset: s.offset, epoch: s.epoch };
    done(joinReply(pos, resume, needsHistory(pos, resume) ? (s.ring?.after(resume.since) ?? []) : []));
  }

  history(channel: string, resume: Resume | null, done: (reply: JoinReply) => void): void {
    const s = this.#channels.get(channel);
    if (!s) return done(joinReply({ offset: 0, epoch: "" }, null, []));
    const pos = { offset: s.offset, epoch: s.epoch };
    const all = resume ?? { since: 0, epoch: null };
    done(joinReply(pos, all, needsHistory(pos, all) ? (s.ring?.after(all.since) ?? []) : []));
  }

  interest(channel: string, interested: boolean): void {
    if (interested) {
      this.#state(channel).interested = true;
      return;
    }
    const s = this.#channels.get(channel);
    if (!s) return;
    s.interested = false;
    this.#forgetIfIdle(s);
  }

  sweep(): void {
    const now = this.#now();
    for (const s of [...this.#withHistory.values()]) {
      if (now - s.lastPublishAt > s.policy.historyTtlMs) this.#dropHistory(s, false);
    }
  }

  /** The shortest TTL in use: how often sweep() should run to keep it. */
  get shortestTtlMs(): number {
    return this.#namespaces.shortestTtlMs;
  }

  stats(): BusStats {
    return {
      channels: this.#channels.size,
      historyMessages: this.#historyMessages,
      historyBytes: this.#historyBytes,
      historyEvicted: this.#evicted,
      idempotencyKeys: this.#idempotency.size,
      duplicates: this.#duplicates,
    };
  }

  #state(channel: string): MemoryChannel {
    let s = this.#channels.get(channel);
    if (!s) {
      s = {
        name: channel,
        epoch: this.#epochFor(channel),
        offset: 0,
        policy: this.#namespaces.of(channel),
        ring: null,
        interested: false,
        lastPublishAt: this.#now(),
      };
      this.#channels.set(channel, s);
    }
    return s;
  }

  #record(s: MemoryChannel, dataJson: string): void {
    const size = s.policy.historySize;
    if (size === 0) return;
    s.ring ??= new HistoryRing(size);
    const before = s.ring.bytes;
    const full = s.ring.length === size;
    s.ring.push(s.offset, dataJson);
    this.#historyBytes += s.ring.bytes - before;
    if (!full) this.#historyMessages += 1;
    this.#withHistory.delete(s.name);
    this.#withHistory.set(s.name, s);
    this.#enforceBudget(s);
  }

  /** Over the host-wide cap: drop whole histories, least recently published first; trim the newest one last. */
  #enforceBudget(current: MemoryChannel): void {
    while (this.#historyBytes > this.#maxBytes) {
      const oldest = this.#withHistory.values().next().value as MemoryChannel;
      if (oldest !== current) {
        this.#dropHistory(oldest, true);
        continue;
      }
      const ring = oldest.ring as HistoryRing;
      this.#historyBytes -= ring.shift();
      this.#historyMessages -= 1;
      this.#evicted += 1;
      if (ring.length === 0) {
        this.#dropHistory(oldest, true);
        return;
      }
    }
  }

  #dropHistory(s: MemoryChannel, evicted: boolean): void {
    const ring = s.ring;
    if (ring) {
      this.#historyBytes -= ring.bytes;
      this.#historyMessages -= ring.length;
      if (evicted) this.#evicted += ring.length;
    }
    s.ring = null;
    this.#withHistory.delete(s.name);
    this.#forgetIfIdle(s);
  }

  /** Nobody here wants it and nothing is kept: forget it (a numbered one bumps its bucket's generation). */
  #forgetIfIdle(s: MemoryChannel): void {
    if (s.interested || (s.ring !== null && s.ring.length > 0)) return;
    if (this.#channels.get(s.name) !== s) return;
    this.#channels.delete(s.name);
    if (s.offset > 0) {
      const b = bucketOf(s.name);
      this.#generations[b] = ((this.#generations[b] as number) + 1) >>> 0;
    }
  }

  #epochFor(channel: string): string {
    return `${this.#processEpoch}${(this.#generations[bucketOf(channel)] as number).toString(36)}`;
  }
}

/** FNV-1a over the name's UTF-16 units, folded to a generation bucket. */
function bucketOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % GENERATION_BUCKETS;
}
