import type { SwitchboardClientError } from "./errors.js";

/** Where a message sits in its channel's stream. */
export type MessageMeta = { channel: string; offset: number };

/** The server confirmed a subscription on a connection: the channel's position then. */
export type Subscribed = { offset: number | null; epoch: string | null; recovered: boolean };

/**
 * Messages may have been missed: a resume the server could not serve in full, or messages that could not reach
 * this connection. `offset`/`epoch` is the position the subscription continues from; the app may refetch.
 */
export type Gap = {
  channel: string;
  reason: string;
  message: string;
  offset: number | null;
  epoch: string | null;
};

/** Who joined or left a channel whose namespace has joinLeave (once per user). */
export type PresenceInfo = { client: string; user: string | null; info: unknown };

export type SubscriptionHandlers = {
  onMessage(data: unknown, meta: MessageMeta): void;
  onGap?(gap: Gap): void;
  onJoin?(info: PresenceInfo): void;
  onLeave?(info: PresenceInfo): void;
  /** The server took the connection out of the channel (the backend's `POST /api/unsubscribe`); it is dropped. */
  onUnsubscribed?(reason: string): void;
  onSubscribed?(subscribed: Subscribed): void;
  /** The server refused the subscription for good (e.g. forbidden); it is dropped. */
  onError?(err: SwitchboardClientError): void;
};

export type SubscribeOptions = SubscriptionHandlers & {
  /** Resume from this offset (the last one the app processed), e.g. after a page reload. */
  since?: number;
  /** The epoch `since` belongs to. */
  epoch?: string;
};

/** What the app holds for one channel. */
export interface Subscription {
  readonly channel: string;
  /** Offset of the last message received, or null before the first ack. */
  readonly offset: number | null;
  readonly epoch: string | null;
  unsubscribe(): void;
}

/** The fields of a gap as both protocols report them. */
export type GapReport = { reason?: string; message?: string; offset?: number; epoch?: string };

/**
 * One channel's position and the recovery rules of docs/protocol.md ("What a client does", steps 2–4), shared by
 * the raw client and the Socket.IO wrapper; they only differ in how frames travel. Reports app callback failures
 * through `report` so that a throwing handler never corrupts the position.
 */
export class ChannelTracker implements Subscription {
  readonly channel: string;
  #offset: number | null;
  #epoch: string | null;
  #active = true;
  readonly #handlers: SubscriptionHandlers;
  readonly #leave: (tracker: ChannelTracker, tellServer: boolean) => void;
  readonly #report: (err: Error) => void;
  /** Consecutive retryable refusals of the subscribe; the retry backoff's attempt. */
  retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    channel: string,
    options: SubscribeOptions,
    leave: (tracker: ChannelTracker, tellServer: boolean) => void,
    report: (err: Error) => void,
  ) {
    this.channel = channel;
    this.#handlers = options;
    this.#offset = options.since ?? null;
    this.#epoch = options.epoch ?? null;
    this.#leave = leave;
    this.#report = report;
  }

  get offset(): number | null {
    return this.#offset;
  }

  get epoch(): string | null {
    return this.#epoch;
  }

  get active(): boolean {
    return this.#active;
  }

  unsubscribe(): void {
    if (!this.#active) return;
    this.#deactivate();
    this.#leave(this, true);
  }

  /** The position to resume from: `since` only with an offset, `epoch` only with both (the server needs since). */
  resume(): { since?: number; epoch?: string } {
    if (this.#offset === null) return {};
    return this.#epoch === null ? { since: this.#offset } : { since: this.#offset, epoch: this.#epoch };
  }

  /** A message; dropped when its offset is not above the last one received (a duplicate after a resume). */
  message(data: unknown, offset: number | undefined): void {
    if (!this.#active) return;
    if (typeof offset === "number") {
      if (this.#offset !== null && offset <= this.#offset) return;
      this.#offset = offset;
    }
    this.#call(() => this.#handlers.onMessage(data, { channel: this.channel, offset: offset ?? -1 }));
  }

  /** The subscribe's ack: the epoch is the channel's; a fresh subscription starts at the channel's offset. */
  subscribed(ack: { offset?: number; epoch?: string; recovered?: boolean }): void {
    if (!this.#active) return;
    this.retries = 0;
    if (typeof ack.epoch === "string") this.#epoch = ack.epoch;
    if (this.#offset === null && typeof ack.offset === "number") this.#offset = ack.offset;
    this.#confirmed(ack.offset ?? null, ack.recovered === true);
  }

  /**
   * A history_gap. As the reply to a resume (`solicited`) the channel is subscribed: with the epoch held, the
   * position stays (the part of history that is left follows, above it); with another epoch the old numbering is
   * gone and the gap's position is taken. Unsolicited, the gap's position is always taken. So is a position below
   * the one held even under the same epoch (offset_ahead): keeping ours would drop every message up to it as a
   * duplicate. Returns the gap the app was told about, or null when it had unsubscribed meanwhile.
   */
  gap(report: GapReport, solicited: boolean): Gap | null {
    if (!this.#active) return null;
    const epoch = typeof report.epoch === "string" ? report.epoch : null;
    const offset = typeof report.offset === "number" ? report.offset : null;
    const behind = offset !== null && this.#offset !== null && offset < this.#offset;
    const keep = solicited && epoch !== null && epoch === this.#epoch && !behind;
    if (!keep) {
      this.#epoch = epoch;
      this.#offset = offset;
    }
    const gap: Gap = {
      channel: this.channel,
      reason: report.reason ?? "unknown",
      message: report.message ?? "messages may have been missed",
      offset: this.#offset,
      epoch: this.#epoch,
    };
    this.#call(() => this.#handlers.onGap?.(gap));
    if (solicited) {
      this.retries = 0;
      this.#confirmed(offset, false);
    }
    return gap;
  }

  /** A join or leave notice of the channel. */
  presence(kind: "join" | "leave", info: PresenceInfo): void {
    if (!this.#active) return;
    this.#call(() => (kind === "join" ? this.#handlers.onJoin : this.#handlers.onLeave)?.(info));
  }

  /** The server ended the subscription: dropped without telling it, the app told. */
  ended(reason: string): void {
    if (!this.#active) return;
    this.#deactivate();
    this.#leave(this, false);
    this.#call(() => this.#handlers.onUnsubscribed?.(reason));
  }

  /** A refusal that will not pass: the subscription is dropped and the app told. */
  failed(err: SwitchboardClientError): void {
    if (!this.#active) return;
    this.#deactivate();
    this.#leave(this, false);
    this.#call(() => this.#handlers.onError?.(err));
  }

  #confirmed(offset: number | null, recovered: boolean): void {
    this.#call(() => this.#handlers.onSubscribed?.({ offset, epoch: this.#epoch, recovered }));
  }

  /**
   * The server refused the subscribe for a passing reason: `again` runs after the backoff `delayFor` gives this
   * tracker's next attempt (at most one retry waits at a time; a connection loss or leaving cancels it).
   */
  retryLater(delayFor: (attempt: number) => number, again: () => void): void {
    this.cancelRetry();
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = null;
        if (this.#active) again();
      },
      delayFor(this.retries++),
    );
  }

  cancelRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  #deactivate(): void {
    this.#active = false;
    this.cancelRetry();
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#report(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** Where a client reports errors (its "error" event). */
type ErrorSink = { has(event: "error"): boolean; emit(event: "error", err: Error): void };

/**
 * One client's subscriptions by channel (one per channel), for both protocols. A tracker that leaves is dropped
 * here before `onLeave` tells the server; a callback that throws is reported on "error" (or the console when
 * nobody listens) and the SDK goes on.
 */
export class ChannelTrackers {
  readonly #byChannel = new Map<string, ChannelTracker>();
  readonly #errors: ErrorSink;
  readonly #onLeave: (tracker: ChannelTracker, tellServer: boolean) => void;

  constructor(errors: ErrorSink, onLeave: (tracker: ChannelTracker, tellServer: boolean) => void) {
    this.#errors = errors;
    this.#onLeave = onLeave;
  }

  add(channel: string, options: SubscribeOptions): ChannelTracker {
    if (this.#byChannel.has(channel)) throw new Error(`already subscribed to ${channel}; unsubscribe first`);
    const tracker = new ChannelTracker(
      channel,
      options,
      (t, tellServer) => {
        if (this.#byChannel.get(t.channel) !== t) return;
        this.#byChannel.delete(t.channel);
        this.#onLeave(t, tellServer);
      },
      (err) => {
        if (this.#errors.has("error")) this.#errors.emit("error", err);
        else console.error("switchboard: a subscription callback threw", err);
      },
    );
    this.#byChannel.set(channel, tracker);
    return tracker;
  }

  get(channel: string): ChannelTracker | undefined {
    return this.#byChannel.get(channel);
  }

  values(): IterableIterator<ChannelTracker> {
    return this.#byChannel.values();
  }
}
