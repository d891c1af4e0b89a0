/** Bucket upper bounds (seconds) of every latency histogram: 1 ms to 10 s, as Prometheus users expect them. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/** Cumulative-free bucket counts (one per bound, then +Inf), their sum and count: small enough for IPC. */
export type HistogramSnapshot = { counts: number[]; sum: number; count: number };

export function emptySnapshot(): HistogramSnapshot {
  return { counts: new Array(LATENCY_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
}

/**
 * A latency histogram with fixed buckets, kept where the latency happens (a worker) and summed where it is
 * exported (the primary): observing is an index search and two additions, nothing is allocated.
 */
export class LatencyHistogram {
  readonly #s = emptySnapshot();

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    this.#s.counts[i] = (this.#s.counts[i] as number) + 1;
    this.#s.sum += seconds;
    this.#s.count += 1;
  }

  snapshot(): HistogramSnapshot {
    return { counts: [...this.#s.counts], sum: this.#s.sum, count: this.#s.count };
  }
}

/** Adds `b` into `a`. */
export function addSnapshot(a: HistogramSnapshot, b: HistogramSnapshot | undefined): void {
  if (!b) return;
  for (let i = 0; i < a.counts.length; i++) a.counts[i] = (a.counts[i] as number) + (b.counts[i] ?? 0);
  a.sum += b.sum;
  a.count += b.count;
}

/** `later - earlier`: what was observed in between. */
export function snapshotDelta(later: HistogramSnapshot, earlier: HistogramSnapshot): HistogramSnapshot {
  return {
    counts: later.counts.map((n, i) => Math.max(0, n - (earlier.counts[i] ?? 0))),
    sum: Math.max(0, later.sum - earlier.sum),
    count: Math.max(0, later.count - earlier.count),
  };
}

/**
 * The q-quantile in ms, interpolated inside its bucket (Prometheus's histogram_quantile does the same); null when
 * nothing was observed.
 */
export function quantileMs(s: HistogramSnapshot, q: number): number | null {
  if (s.count === 0) return null;
  const rank = q * s.count;
  let seen = 0;
  for (let i = 0; i < s.counts.length; i++) {
    const n = s.counts[i] as number;
    if (seen + n >= rank && n > 0) {
      const lower = i === 0 ? 0 : (LATENCY_BUCKETS[i - 1] as number);
      const upper = LATENCY_BUCKETS[i] ?? lower;
      return 1000 * (lower + (upper - lower) * ((rank - seen) / n));
    }
    seen += n;
  }
  return 1000 * (LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1] as number);
}
