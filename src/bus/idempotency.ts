/** Keys held at most, host-wide: the oldest are forgotten first (a retry after that may deliver twice). */
export const MAX_IDEMPOTENCY_KEYS = 200_000;

type Remembered = { offset: number; epoch: string; expiresAt: number };

/**
 * Idempotency keys of recent publishes, per channel, for `windowMs`: a repeat answers the first offset and delivers
 * nothing. Insertion order is expiry order (one window for all), so expiry only ever looks at the oldest entries.
 */
export class IdempotencyCache {
  readonly #entries = new Map<string, Remembered>();
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(windowMs: number, maxKeys = MAX_IDEMPOTENCY_KEYS, now: () => number = Date.now) {
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  get enabled(): boolean {
    return this.#windowMs > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(channel: string, key: string): { offset: number; epoch: string } | null {
    this.#expire();
    const hit = this.#entries.get(`${channel}\n${key}`);
    return hit ? { offset: hit.offset, epoch: hit.epoch } : null;
  }

  set(channel: string, key: string, offset: number, epoch: string): void {
    if (!this.enabled) return;
    this.#entries.set(`${channel}\n${key}`, { offset, epoch, expiresAt: this.#now() + this.#windowMs });
    if (this.#entries.size > this.#maxKeys) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  #expire(): void {
    const now = this.#now();
    for (const [k, v] of this.#entries) {
      if (v.expiresAt > now) break;
      this.#entries.delete(k);
    }
  }
}
