import type { HistoryEntry } from "../ipc.js";

type ChannelState = {
  offset: number;
  /** Ring of the last `historySize` messages, oldest first once `historyStart` wraps. */
  history: HistoryEntry[];
  historyStart: number;
  /** Worker ids with at least one local subscriber. */
  workers: Set<number>;
  lastPublishAt: number;
};

export type HubOptions = { historySize: number; historyTtlMs: number; now?: () => number };

export type SubscribeResult = { offset: number; history: HistoryEntry[] | null; gap: boolean };

/**
 * The in-host sequencer: the single owner of every channel's offset, its short history and the set of workers
 * that want it (interest routing). Pure: the primary moves its results over IPC.
 */
export class ChannelHub {
  readonly #channels = new Map<string, ChannelState>();
  readonly #opts: Required<HubOptions>;
  /** Told when a channel gains its first interested worker (true) or loses its last (false); the Redis relay hooks here. */
  interestListener: ((channel: string, interested: boolean) => void) | null = null;

  constructor(opts: HubOptions) {
    this.#opts = { now: Date.now, ...opts };
  }

  #state(channel: string): ChannelState {
    let s = this.#channels.get(channel);
    if (!s) {
      s = { offset: 0, history: [], historyStart: 0, workers: new Set(), lastPublishAt: this.#opts.now() };
      this.#channels.set(channel, s);
    }
    return s;
  }

  /** Assigns the next offset, records history and returns the workers to deliver to. */
  publish(channel: string, dataJson: string): { offset: number; workers: ReadonlySet<number> } {
    const s = this.#state(channel);
    const offset = s.offset + 1;
    return { offset, workers: this.#record(s, offset, dataJson) };
  }

  /** Records a message sequenced elsewhere (Redis) at `offset`, above the last one; returns the workers to deliver to. */
  append(channel: string, offset: number, dataJson: string): ReadonlySet<number> {
    const s = this.#state(channel);
    // History must stay contiguous for resume: a hole means messages that never reached this host.
    if (offset !== s.offset + 1) this.#clearHistory(s);
    return this.#record(s, offset, dataJson);
  }

  #record(s: ChannelState, offset: number, dataJson: string): ReadonlySet<number> {
    s.offset = offset;
    s.lastPublishAt = this.#opts.now();
    const size = this.#opts.historySize;
    if (size > 0) {
      if (s.history.length < size) s.history.push([s.offset, dataJson]);
      else {
        s.history[s.historyStart] = [s.offset, dataJson];
        s.historyStart = (s.historyStart + 1) % size;
      }
    }
    return s.workers;
  }

  /** Moves a channel's offset forward to `offset` without the messages in between (they never reached this host). */
  advance(channel: string, offset: number): void {
    const s = this.#state(channel);
    if (offset <= s.offset) return;
    this.#clearHistory(s);
    s.offset = offset;
  }

  /** The channel's last offset on this host (0 when unknown). */
  lastOffset(channel: string): number {
    return this.#channels.get(channel)?.offset ?? 0;
  }

  #clearHistory(s: ChannelState): void {
    s.history = [];
    s.historyStart = 0;
  }

  /** Adds a worker's interest in a channel. */
  subscribe(workerId: number, channel: string): void {
    const s = this.#state(channel);
    if (s.workers.has(workerId)) return;
    s.workers.add(workerId);
    if (s.workers.size === 1) this.interestListener?.(channel, true);
  }

  /** The channel's offset now and, with `since`, what was published after it or whether history falls short. */
  replay(channel: string, since: number | null): SubscribeResult {
    const s = this.#state(channel);
    if (since === null) return { offset: s.offset, history: null, gap: false };
    if (since >= s.offset) return { offset: s.offset, history: [], gap: since > s.offset };
    // History is contiguous up to the current offset (a hole clears it), so the wanted part is its tail.
    const wanted = s.offset - since;
    const length = s.history.length;
    const n = Math.min(wanted, length);
    const history = Array.from(
      { length: n },
      (_, i) => s.history[(s.historyStart + length - n + i) % length] as HistoryEntry,
    );
    return { offset: s.offset, history, gap: wanted > length };
  }

  unsubscribe(workerId: number, channel: string): void {
    const s = this.#channels.get(channel);
    if (s?.workers.delete(workerId) && s.workers.size === 0) this.interestListener?.(channel, false);
  }

  /** Forgets a worker that exited. */
  removeWorker(workerId: number): void {
    for (const [channel, s] of this.#channels) {
      if (s.workers.delete(workerId) && s.workers.size === 0) this.interestListener?.(channel, false);
    }
  }

  /** Drops channels nobody subscribes to and nobody published to within the history TTL; returns how many. */
  sweep(): number {
    const cutoff = this.#opts.now() - this.#opts.historyTtlMs;
    let dropped = 0;
    for (const [name, s] of this.#channels) {
      if (s.workers.size === 0 && s.lastPublishAt < cutoff) {
        this.#channels.delete(name);
        dropped += 1;
      }
    }
    return dropped;
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  /** Channels with at least one subscribed worker. */
  activeChannels(): number {
    let n = 0;
    for (const s of this.#channels.values()) if (s.workers.size > 0) n += 1;
    return n;
  }
}
