/**
 * Every backoff of the server, in one place: worker restarts (the supervisor) and Redis reconnects and rejoins.
 * The client SDK has its own (src/client/backoff.ts): it ships to browsers and depends on nothing here.
 */

export type BackoffOptions = {
  /** First delay, ms. @default 200 */
  baseMs?: number;
  /** Largest delay, ms. @default 10000 */
  maxMs?: number;
  /** A worker that stayed up this long resets the attempt count, ms. @default 30000 */
  stableMs?: number;
  /** Crashes within `crashLoopWindowMs` that count as a crash loop. @default 5 */
  crashLoopCount?: number;
  /** @default 60000 */
  crashLoopWindowMs?: number;
  random?: () => number;
};

/**
 * Restart delays for one worker slot: exponential with full jitter in [delay/2, delay], reset once a worker
 * has been stable, plus crash-loop detection. Pure; the supervisor feeds it crash times.
 */
export class RestartBackoff {
  readonly #o: Required<BackoffOptions>;
  #attempt = 0;
  #crashes: number[] = [];

  constructor(opts: BackoffOptions = {}) {
    this.#o = {
      baseMs: 200,
      maxMs: 10_000,
      stableMs: 30_000,
      crashLoopCount: 5,
      crashLoopWindowMs: 60_000,
      random: Math.random,
      ...opts,
    };
  }

  /** Records a crash of a worker that started at `startedAt`; returns the delay before the next start. */
  onCrash(now: number, startedAt: number): number {
    if (now - startedAt >= this.#o.stableMs) this.#attempt = 0;
    this.#crashes = this.#crashes.filter((t) => now - t < this.#o.crashLoopWindowMs);
    this.#crashes.push(now);
    const ceiling = Math.min(this.#o.maxMs, this.#o.baseMs * 2 ** this.#attempt);
    this.#attempt += 1;
    return Math.round(ceiling / 2 + (this.#o.random() * ceiling) / 2);
  }

  /** True while the recent crashes reach the crash-loop count. */
  inCrashLoop(now: number): boolean {
    return this.#crashes.filter((t) => now - t < this.#o.crashLoopWindowMs).length >= this.#o.crashLoopCount;
  }
}

/** Redis reconnect delay after the n-th failed attempt: 100 ms doubling to 2 s, with jitter so hosts do not stampede. */
export function reconnectDelayMs(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}
