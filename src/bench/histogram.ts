/**
 * Latency histogram with logarithmic buckets (2 % wide, from 0.01 ms to ~10 minutes).
 * Cheap to record into, mergeable across processes, serialisable as sparse pairs for IPC.
 */

const MIN_MS = 0.01;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1000;

/** Sparse histogram form that crosses IPC: [bucketIndex, count] pairs plus exact extremes. */
export interface HistogramSnapshot {
  pairs: [number, number][];
  count: number;
  max: number;
}

export class Histogram {
  #counts = new Uint32Array(BUCKETS);
  count = 0;
  max = 0;

  /** Records one latency in milliseconds; negative values (clock skew) count as 0. */
  record(ms: number): void {
    const v = Math.max(ms, 0) || 0;
    const i = v <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(v / MIN_MS) / LOG_GROWTH));
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    this.count++;
    if (v > this.max) this.max = v;
  }

  merge(other: HistogramSnapshot | Histogram): void {
    const snap = other instanceof Histogram ? other.snapshot() : other;
    for (const [i, c] of snap.pairs) this.#counts[i] = (this.#counts[i] ?? 0) + c;
    this.count += snap.count;
    if (snap.max > this.max) this.max = snap.max;
  }

  snapshot(): HistogramSnapshot {
    const pairs: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.#counts[i] ?? 0;
      if (c > 0) pairs.push([i, c]);
    }
    return { pairs, count: this.count, max: this.max };
  }

  static from(snap: HistogramSnapshot): Histogram {
    const h = new Histogram();
    h.merge(snap);
    return h;
  }

  /** Value at quantile q (0..1), as the upper bound of its bucket, capped by the exact max. */
  percentile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) return Math.min(this.max, i === 0 ? MIN_MS : MIN_MS * GROWTH ** i);
    }
    return this.max;
  }
}

/** Monotonic epoch milliseconds with sub-millisecond resolution, comparable across local processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
