/**
 * Per-channel delivery order on one host when Redis sequences the channel. Pure: no Redis, no IPC.
 *
 * A message reaches this host's subscribers from one of two places: the reply to this host's own publish script
 * (its offset comes back as the reply, and the echo on the subscription is dropped), or the subscription
 * (messages other hosts published). Both arrive on one RESP3 connection per node (redis-node.ts); this class
 * orders them by offset, not by arrival, so it stays right however they interleave (a reconnect, a failed script,
 * a slot moving to another node; the bounded stall wait below is for those). What makes that possible without
 * timeouts in the common case:
 * - the subscription is in offset order (INCR and PUBLISH run in one script, scripts run one at a time per shard),
 *   so once it has shown offset n (a remote message or our own echo), nothing at or below n is still to come on it;
 * - this host's own publishes on one channel go down one connection in order, so their replies come back in order.
 * A gap that neither source can fill any more is skipped and counted as missed (the messages never reached us).
 */

/** Where ordered messages go. */
export type OrderSink = {
  /** One message for this host's subscribers; offsets strictly increase per channel. */
  deliver(offset: number, dataJson: string): void;
  /** The channel jumped to `offset` without the messages before it (they were published elsewhere). */
  advance(offset: number): void;
  /** `count` messages sequenced by other hosts will never reach this host's subscribers. */
  missed(count: number): void;
};

/**
 * - `free`: not subscribed in Redis (no local interest, or the link is down): own messages go out as they settle.
 * - `held`: subscribing; nothing is delivered until the subscription is live and the channel's base offset is known.
 * - `synced`: own replies and the subscription are merged in offset order; gaps are counted.
 */
export type Phase = "free" | "held" | "synced";

const PENDING = 0;
const OK = 1;
const FAILED = 2;

/** One of this host's publishes, waiting for its offset. */
class OwnPublish {
  state: typeof PENDING | typeof OK | typeof FAILED = PENDING;
  offset = 0;
  readonly dataJson: string;
  readonly done: (offset: number) => void;
  constructor(dataJson: string, done: (offset: number) => void) {
    this.dataJson = dataJson;
    this.done = done;
  }
}

type Remote = { offset: number; dataJson: string };

export class ChannelOrder {
  #phase: Phase;
  #last: number;
  readonly #sink: OrderSink;
  readonly #own: OwnPublish[] = [];
  readonly #remote: Remote[] = [];
  /** Highest offset the subscription has passed (remote messages, own echoes, or a barrier after the base read). */
  #seen = 0;
  /** Offsets up to here were assigned before this channel was (re)joined at `#base`. */
  #base = 0;
  /** Gaps at or below this offset are not counted (a first join: nobody here was waiting for them). */
  #quietUntil = Number.POSITIVE_INFINITY;
  #highestOwn = 0;
  #stalled = false;
  #force = false;
  /** Remote messages dropped because this host had already passed their offset. */
  stale = 0;

  constructor(sink: OrderSink, last: number, phase: Phase) {
    this.#sink = sink;
    this.#last = last;
    this.#phase = phase;
    if (phase === "synced") this.#quietUntil = last;
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The last offset delivered here. */
  get last(): number {
    return this.#last;
  }

  /** The highest offset this host knows was assigned: the floor for the next offset Redis hands out. */
  get floor(): number {
    const tail = this.#remote[this.#remote.length - 1]?.offset ?? 0;
    return Math.max(this.#last, this.#highestOwn, tail, this.#base);
  }

  /** Nothing waits here. */
  get idle(): boolean {
    return this.#own.length === 0 && this.#remote.length === 0;
  }

  /** True when the head is an own message behind a gap that the subscription may still fill. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** Queues one of this host's publishes; `done` gets its final offset once it is delivered here. */
  own(dataJson: string, done: (offset: number) => void): OwnPublish {
    const p = new OwnPublish(dataJson, done);
    this.#own.push(p);
    return p;
  }

  /** Redis assigned `offset` to `p`, or (null) the publish failed and this host sequences it alone. */
  settle(p: OwnPublish, offset: number | null): void {
    if (offset === null) p.state = FAILED;
    else {
      p.state = OK;
      p.offset = offset;
      if (offset > this.#highestOwn) this.#highestOwn = offset;
    }
    this.#drain();
  }

  /** A message another host published, in subscription order. */
  remote(offset: number, dataJson: string): void {
    if (offset > this.#seen) this.#seen = offset;
    this.#remote.push({ offset, dataJson });
    this.#drain();
  }

  /** The subscription carried our own message `offset` back: everything before it has passed too. */
  echo(offset: number): void {
    if (offset > this.#seen) this.#seen = offset;
    if (this.#stalled) this.#drain();
  }

  /** Subscribing: stop delivering until `release`. */
  hold(): void {
    this.#phase = "held";
  }

  /**
   * The subscription is live and every offset up to `base` has been assigned and has passed it.
   * With `countGaps`, offsets this host never delivered count as missed (a rejoin after an outage);
   * without, they were published before anyone here subscribed.
   */
  release(base: number, countGaps: boolean): void {
    this.#phase = "synced";
    this.#base = Math.max(this.#base, base);
    if (base > this.#seen) this.#seen = base;
    this.#quietUntil = countGaps ? Math.min(this.#last, this.#quietUntil) : Math.max(this.#last, base);
    this.#drain();
  }

  /** No subscription any more (interest ended or the link failed): deliver what settles, in order. */
  free(): void {
    this.#phase = "free";
    this.#quietUntil = Number.POSITIVE_INFINITY;
    this.#drain();
  }

  /** The gap before the head did not fill in time: skip it. */
  unstall(): void {
    if (!this.#stalled) return;
    this.#force = true;
    this.#drain();
  }

  #drain(): void {
    if (this.#phase === "held") return;
    this.#stalled = false;
    for (;;) {
      const o = this.#own[0];
      const r = this.#remote[0];
      // An own publish without an offset yet may land anywhere: everything behind it waits for its reply.
      if (o?.state === PENDING) return;
      if (o?.state === OK && (!r || o.offset < r.offset)) {
        if (this.#gapMayFill(o.offset)) {
          this.#stalled = true;
          return;
        }
        this.#own.shift();
        this.#emitOwn(o);
        continue;
      }
      if (r) {
        this.#remote.shift();
        this.#emitRemote(r);
        continue;
      }
      if (o) {
        this.#own.shift();
        this.#emitFallback(o);
        continue;
      }
      break;
    }
    if (this.#base > this.#last && this.#phase === "synced") this.#jump(this.#base);
  }

  #gapMayFill(offset: number): boolean {
    if (this.#phase !== "synced" || offset <= this.#last + 1 || this.#force) return false;
    return this.#seen < offset - 1;
  }

  #emitOwn(o: OwnPublish): void {
    this.#force = false;
    // Below what this host already delivered only when Redis lost the counter (restart without data) while our
    // floor was in flight: keep this host's offsets increasing; the next publish raises the counter again.
    const offset = o.offset > this.#last ? o.offset : this.#last + 1;
    this.#moveTo(offset);
    this.#sink.deliver(offset, o.dataJson);
    o.done(offset);
  }

  #emitRemote(r: Remote): void {
    if (r.offset <= this.#last) {
      // Skipped earlier as a gap (counted then) or published before this host joined.
      this.stale += 1;
      return;
    }
    this.#moveTo(r.offset);
    this.#sink.deliver(r.offset, r.dataJson);
  }

  #emitFallback(o: OwnPublish): void {
    if (this.#base > this.#last && this.#phase === "synced") this.#jump(this.#base);
    const offset = this.#last + 1;
    this.#last = offset;
    this.#sink.deliver(offset, o.dataJson);
    o.done(offset);
  }

  #moveTo(offset: number): void {
    if (this.#phase === "synced") this.#count(offset - 1);
    this.#last = offset;
  }

  #jump(base: number): void {
    this.#count(base);
    this.#last = base;
    this.#sink.advance(base);
  }

  /** Counts the offsets after `#last` up to `upTo` as missed, except those before the quiet mark. */
  #count(upTo: number): void {
    const from = Math.max(this.#last, this.#quietUntil);
    if (upTo > from) this.#sink.missed(upTo - from);
  }
}
