/**
 * Which workers of this host want which channel (interest routing: the primary sends a message only to workers
 * with subscribers). Tells its listener when a channel gains its first interested worker or loses its last.
 */
export class ChannelInterest {
  readonly #channels = new Map<string, Set<number>>();
  readonly #listener: (channel: string, interested: boolean) => void;

  constructor(listener: (channel: string, interested: boolean) => void) {
    this.#listener = listener;
  }

  add(workerId: number, channel: string): void {
    let workers = this.#channels.get(channel);
    if (!workers) {
      workers = new Set();
      this.#channels.set(channel, workers);
    }
    if (workers.has(workerId)) return;
    workers.add(workerId);
    if (workers.size === 1) this.#listener(channel, true);
  }

  remove(workerId: number, channel: string): void {
    const workers = this.#channels.get(channel);
    if (!workers?.delete(workerId) || workers.size > 0) return;
    this.#channels.delete(channel);
    this.#listener(channel, false);
  }

  /** Forgets a worker that exited. */
  removeWorker(workerId: number): void {
    for (const [channel, workers] of this.#channels)
      if (workers.has(workerId)) this.remove(workerId, channel);
  }

  workers(channel: string): ReadonlySet<number> | undefined {
    return this.#channels.get(channel);
  }

  /** The channels with at least one interested worker. */
  names(): IterableIterator<string> {
    return this.#channels.keys();
  }

  /** Channels with at least one interested worker. */
  get size(): number {
    return this.#channels.size;
  }
}
