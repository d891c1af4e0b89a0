/** A rate budget: `rate` tokens per second, holding at most twice that (the burst). */
export class TokenBucket {
  #tokens: number;
  #refilledAt = Date.now();
  readonly #rate: number;

  constructor(rate: number) {
    this.#rate = rate;
    this.#tokens = rate * 2;
  }

  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.#rate * 2, this.#tokens + ((now - this.#refilledAt) * this.#rate) / 1000);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
