/**
 * Per-channel delivery order on one host when Redis sequences the channel. Pure: no Redis, no IPC.
 *
 * A message reaches this host's subscribers from one of two places: the reply to this host's own publish script
 * (its offset comes back as the reply, and the echo on the subscription is dropped), or the subscription
 * (messages other hosts published). Both arrive on one RESP3 connection per node (redis-node.ts); this class
 * orders them by offset, not by arrival, so it stays right however they interleave (a reconnect, a failed script,
 * a slot moving to another node; the bounded stall wait below is for those). What makes that possible without
 * timeouts in the common case:
 * - the subscription is in offset order (numbering and PUBLISH run in one script, scripts run one at a time per
 *   shard), so once it has shown offset n (a remote message or our own echo), nothing at or below n is still to
 *   come on it;
 * - this host's own publishes on one channel go down one connection in order, so their replies come back in order.
 *
 * Offsets only mean something within an epoch (docs/protocol.md). Three things change the numbering subscribers
 * here are in, and each tells them with a `lost` notice carrying their new position:
 * - Redis cannot take a publish (link down, script failed): this host sequences alone under a local epoch;
 * - the channel is joined again after that, or Redis' numbering changed (it lost its data): subscribers move to
 *   Redis' epoch at the join point;
 * - offsets were assigned that never arrived here (an outage of this host's link): they are read from the
 *   channel's history in Redis (`fill`) and delivered in order; whatever history no longer holds is a gap, counted
 *   as missed and told.
 */
import type { HistoryEntry } from "../../ipc.js";
import type { Published } from "../bus.js";

/** Where ordered messages and notices go. */
export type OrderSink = {
  /** One message for this host's subscribers; offsets strictly increase within an epoch. */
  deliver(offset: number, dataJson: string): void;
  /** Subscribers' position is now (epoch, offset): messages before it may be missing for them. */
  lost(offset: number, epoch: string): void;
  /** Offsets `from`..`to` were assigned but never arrived: read them from history (null: it could not be read). */
  fill(from: number, to: number, done: (entries: HistoryEntry[] | null) => void): void;
  /** Redis' numbering changed under a live subscription (or this host had to sequence alone): join again. */
  resync(): void;
  /** `count` messages sequenced elsewhere will never reach this host's subscribers. */
  missed(count: number): void;
};

/**
 * - `free`: not subscribed in Redis (no local interest, or the link is down): own messages go out as they settle.
 * - `held`: subscribing; nothing is delivered until the subscription is live and the channel's position is known.
 * - `synced`: own replies and the subscription are merged in offset order; gaps are filled from history or told.
 */
export type OrderPhase = "free" | "held" | "synced";

const PENDING = 0;
const OK = 1;
const FAILED = 2;

/** One of this host's publishes, waiting for its offset. */
class OwnPublish {
  state: typeof PENDING | typeof OK | typeof FAILED = PENDING;
  result: Published = { offset: 0, epoch: "", duplicate: false };
  readonly dataJson: string;
  readonly done: (result: Published) => void;
  constructor(dataJson: string, done: (result: Published) => void) {
    this.dataJson = dataJson;
    this.done = done;
  }
}

type Remote = { offset: number; epoch: string; dataJson: string };

export class ChannelOrder {
  #phase: OrderPhase;
  /** The numbering subscribers here are in: Redis' epoch, or a local one while this host sequences alone. */
  #epoch: string | null = null;
  #local = false;
  /** Redis' epoch as last seen, and the highest offset seen assigned in it. */
  #redisEpoch: string | null = null;
  #redisHigh = 0;
  #last = 0;
  readonly #sink: OrderSink;
  readonly #newEpoch: () => string;
  readonly #own: OwnPublish[] = [];
  readonly #remote: Remote[] = [];
  /** Highest offset the subscription has passed (remote messages, own echoes, or the join read). */
  #seen = 0;
  /** Offsets up to here were assigned before this channel was (re)joined at `#base`. */
  #base = 0;
  /** Gaps at or below this offset are not gaps (a first join: nobody here was waiting for them). */
  #quietUntil = Number.POSITIVE_INFINITY;
  #highestOwn = 0;
  #stalled = false;
  #force = false;
  /** A fill is out: nothing is delivered until it answers. Its token, so a stale answer is ignored. */
  #filling = 0;
  #fills = 0;
  #resyncAsked = false;
  /** Remote messages dropped because this host had already passed their offset. */
  stale = 0;

  constructor(sink: OrderSink, newEpoch: () => string) {
    this.#sink = sink;
    this.#newEpoch = newEpoch;
    this.#phase = "free";
  }

  get phase(): OrderPhase {
    return this.#phase;
  }

  /** The last offset delivered here. */
  get last(): number {
    return this.#last;
  }

  /** Subscribers' position now (a local epoch is made when none is known yet: Redis was never reached). */
  position(): { offset: number; epoch: string } {
    if (this.#epoch === null) {
      this.#epoch = this.#newEpoch();
      this.#local = true;
    }
    return { offset: this.#last, epoch: this.#epoch };
  }

  /** Redis' epoch as this host knows it ("" when never seen): the scripts compare it with theirs. */
  get knownEpoch(): string {
    return this.#redisEpoch ?? "";
  }

  /** The highest offset this host saw Redis assign in `knownEpoch`: below it, Redis has lost writes. */
  get redisFloor(): number {
    return this.#redisHigh;
  }

  /** The highest offset this host knows was assigned (any numbering): Redis never hands out one at or below it. */
  get floor(): number {
    const tail = this.#remote[this.#remote.length - 1]?.offset ?? 0;
    return Math.max(this.#last, this.#highestOwn, tail, this.#base);
  }

  /** Nothing waits here. */
  get idle(): boolean {
    return this.#own.length === 0 && this.#remote.length === 0 && this.#filling === 0;
  }

  /** True when the head is an own message behind a gap that the subscription may still fill. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** Queues one of this host's publishes; `done` gets its result once it is delivered here (or was a repeat). */
  own(dataJson: string, done: (result: Published) => void): OwnPublish {
    const p = new OwnPublish(dataJson, done);
    this.#own.push(p);
    return p;
  }

  /** Redis answered `p`, or (null) the publish failed and this host sequences it alone. */
  settle(p: OwnPublish, result: Published | null): void {
    if (result === null) p.state = FAILED;
    else {
      p.state = OK;
      p.result = result;
      if (!result.duplicate) {
        this.#noteRedis(result.offset, result.epoch);
        if (result.offset > this.#highestOwn) this.#highestOwn = result.offset;
      }
    }
    this.#drain();
  }

  /** A message another host published, in subscription order. */
  remote(offset: number, epoch: string, dataJson: string): void {
    if (this.#noteRedis(offset, epoch) && offset > this.#seen) this.#seen = offset;
    this.#remote.push({ offset, epoch, dataJson });
    this.#drain();
  }

  /** The subscription carried our own message `offset` back: everything before it has passed too. */
  echo(offset: number, epoch: string): void {
    if (this.#noteRedis(offset, epoch) && offset > this.#seen) this.#seen = offset;
    if (this.#stalled) this.#drain();
  }

  /** Subscribing: stop delivering until `release`. */
  hold(): void {
    this.#phase = "held";
    this.#filling = 0;
    this.#resyncAsked = false;
  }

  /**
   * The subscription is live and every offset up to `base` of Redis' numbering `epoch` has been assigned and has
   * passed it. `served`: subscribers here hold positions already (a rejoin), so what they missed is filled from
   * history or told; otherwise nobody here waited for what came before.
   */
  release(base: number, epoch: string, served: boolean): void {
    this.#phase = "synced";
    if (epoch !== this.#epoch) {
      this.#renumber(epoch, base, served);
    } else {
      this.#base = Math.max(this.#base, base);
      if (base > this.#seen) this.#seen = base;
      this.#quietUntil = served ? Math.min(this.#last, this.#quietUntil) : Math.max(this.#last, base);
    }
    this.#redisEpoch = epoch;
    this.#redisHigh = Math.max(this.#redisHigh, base);
    this.#drain();
  }

  /** No subscription any more (interest ended or the link failed): deliver what settles, in order. */
  free(): void {
    this.#phase = "free";
    this.#filling = 0;
    this.#quietUntil = Number.POSITIVE_INFINITY;
    this.#drain();
  }

  /** The gap before the head did not fill in time: look in history for it. */
  unstall(): void {
    if (!this.#stalled) return;
    this.#force = true;
    this.#drain();
  }

  /** Notes an offset Redis assigned; false (and a rejoin asked for) when it is of another Redis numbering. */
  #noteRedis(offset: number, epoch: string): boolean {
    if (this.#redisEpoch === null) this.#redisEpoch = epoch;
    if (epoch !== this.#redisEpoch) {
      if (this.#phase === "synced") this.#askResync();
      return false;
    }
    if (offset > this.#redisHigh) this.#redisHigh = offset;
    return true;
  }

  #askResync(): void {
    if (this.#resyncAsked) return;
    this.#resyncAsked = true;
    this.#sink.resync();
  }

  /**
   * Moves subscribers into Redis' numbering `epoch` at the join point: what is queued from before (another
   * numbering) goes out first, then subscribers are placed just before the first queued message of the new one.
   */
  #renumber(epoch: string, base: number, served: boolean): void {
    this.#flushOtherNumberings(epoch);
    let first = base + 1;
    for (const o of this.#own)
      if (o.state === OK && !o.result.duplicate && o.result.epoch === epoch)
        first = Math.min(first, o.result.offset);
    for (const r of this.#remote) if (r.epoch === epoch) first = Math.min(first, r.offset);
    const at = first - 1;
    const told = served && this.#epoch !== null;
    // Floors keep offsets comparable across numberings: what was numbered past this host's last never reached it.
    if (told && at > this.#last) this.#sink.missed(at - this.#last);
    this.#epoch = epoch;
    this.#local = false;
    this.#last = at;
    this.#seen = base;
    this.#base = base;
    this.#quietUntil = served ? at : base;
    if (told) this.#sink.lost(at, epoch);
  }

  /** Delivers queued messages that belong to no numbering but `epoch` (settled ones, in offset order). */
  #flushOtherNumberings(epoch: string): void {
    for (;;) {
      const o = this.#own[0];
      const r = this.#remote[0];
      const ownOld =
        o !== undefined &&
        o.state !== PENDING &&
        !(o.state === OK && !o.result.duplicate && o.result.epoch === epoch);
      const remoteOld = r !== undefined && r.epoch !== epoch;
      if (ownOld && (o.state === FAILED || o.result.duplicate)) {
        this.#own.shift();
        if (o.state === FAILED) this.#emitLocal(o);
        else o.done(o.result);
      } else if (ownOld && (!remoteOld || o.result.offset < (r as Remote).offset)) {
        this.#own.shift();
        this.#emitOwn(o);
      } else if (remoteOld) {
        this.#remote.shift();
        this.#emitRemote(r);
      } else return;
    }
  }

  #drain(): void {
    this.#stalled = false;
    for (;;) {
      // A rejoin (hold) or a history read (fill) may start from inside this loop.
      if (this.#phase === "held" || this.#filling !== 0) return;
      const o = this.#own[0];
      const r = this.#remote[0];
      // An own publish without an offset yet may land anywhere: everything behind it waits for its reply.
      if (o?.state === PENDING) return;
      if (o?.state === FAILED) {
        this.#own.shift();
        this.#emitLocal(o);
        continue;
      }
      if (o?.result.duplicate) {
        this.#own.shift();
        o.done(o.result);
        continue;
      }
      const head = o && (!r || o.result.offset < r.offset) ? o : r;
      if (!head) break;
      const own = head instanceof OwnPublish;
      const epoch = own ? head.result.epoch : head.epoch;
      const offset = own ? head.result.offset : head.offset;
      if (epoch !== this.#epoch && !this.#adopt(epoch, offset)) return;
      const from = Math.max(this.#last, this.#quietUntil);
      if (this.#phase === "synced" && offset > from + 1 && offset > this.#last + 1) {
        // An own message behind a gap the subscription may still bring: wait (bounded by the relay's stall timer).
        if (own && !this.#force && this.#seen < offset - 1) {
          this.#stalled = true;
          return;
        }
        this.#startFill(from + 1, offset - 1);
        return;
      }
      if (head instanceof OwnPublish) {
        this.#own.shift();
        this.#emitOwn(head);
      } else {
        this.#remote.shift();
        this.#emitRemote(head);
      }
    }
    if (this.#phase !== "synced" || this.#filling !== 0 || this.#base <= this.#last) return;
    const from = Math.max(this.#last, this.#quietUntil);
    if (this.#base > from) this.#startFill(from + 1, this.#base);
    else this.#last = this.#base;
  }

  /**
   * The head is of another numbering than subscribers are in. Free (no subscription to rejoin): move to it now.
   * Synced: Redis' numbering changed under us; rejoin first (false: wait).
   */
  #adopt(epoch: string, offset: number): boolean {
    if (this.#phase === "synced") {
      this.#askResync();
      return false;
    }
    const told = this.#epoch !== null;
    if (told && offset - 1 > this.#last) this.#sink.missed(offset - 1 - this.#last);
    this.#epoch = epoch;
    this.#local = false;
    this.#last = offset - 1;
    if (told) this.#sink.lost(this.#last, epoch);
    return true;
  }

  #startFill(from: number, to: number): void {
    const token = ++this.#fills;
    this.#filling = token;
    this.#sink.fill(from, to, (entries) => {
      if (this.#filling !== token) return;
      this.#filling = 0;
      this.#filled(to, entries ?? []);
      this.#drain();
    });
  }

  /** History's answer for offsets up to `to`: delivered in order; each hole told once, where it is. */
  #filled(to: number, entries: HistoryEntry[]): void {
    this.#force = false;
    const epoch = this.#epoch as string;
    for (const [offset, dataJson] of entries.sort((a, b) => a[0] - b[0])) {
      if (offset <= this.#last || offset > to) continue;
      if (offset > this.#last + 1) this.#hole(offset - 1, epoch);
      this.#last = offset;
      this.#sink.deliver(offset, dataJson);
    }
    if (this.#last < to) this.#hole(to, epoch);
  }

  #hole(upTo: number, epoch: string): void {
    this.#sink.missed(upTo - this.#last);
    this.#last = upTo;
    this.#sink.lost(upTo, epoch);
  }

  #emitOwn(o: OwnPublish): void {
    this.#force = false;
    // Below what this host already delivered only when Redis lost the numbering while our floor was in flight:
    // keep this host's offsets increasing; the rejoin that follows tells subscribers.
    const offset = o.result.offset > this.#last ? o.result.offset : this.#last + 1;
    this.#last = offset;
    this.#sink.deliver(offset, o.dataJson);
    o.done({ offset, epoch: this.#epoch ?? o.result.epoch, duplicate: false });
  }

  #emitRemote(r: Remote): void {
    if (r.offset <= this.#last) {
      // Filled from history or told as a gap earlier, or published before this host joined.
      this.stale += 1;
      return;
    }
    this.#last = r.offset;
    this.#sink.deliver(r.offset, r.dataJson);
  }

  /** Redis could not take an own publish: this host numbers it alone, under a local epoch subscribers are told of. */
  #emitLocal(o: OwnPublish): void {
    if (!this.#local) {
      this.#epoch = this.#newEpoch();
      this.#local = true;
      this.#sink.lost(this.#last, this.#epoch);
      if (this.#phase === "synced") this.#askResync();
    }
    const offset = this.#last + 1;
    this.#last = offset;
    this.#sink.deliver(offset, o.dataJson);
    o.done({ offset, epoch: this.#epoch as string, duplicate: false });
  }
}
