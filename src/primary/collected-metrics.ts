import { Counter, Gauge, type Registry } from "prom-client";
import { type HistogramSnapshot, LATENCY_BUCKETS } from "../metrics/latency-histogram.js";

/**
 * Metrics whose value is read at scrape time from a running total kept elsewhere (worker reports, relay counts):
 * nothing is incremented on the hot path.
 */
export function collectedCounter(registry: Registry, name: string, help: string, value: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(value());
    },
  });
}

export function collectedGauge(registry: Registry, name: string, help: string, value: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(value());
    },
  });
}

/** A counter with one label, read at scrape time from a record of running totals by that label's value. */
export function collectedCounterBy(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  counts: () => Record<string, number>,
): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of Object.entries(counts())) this.inc({ [label]: value }, n);
    },
  });
}

/**
 * A histogram read at scrape time from bucket counts summed elsewhere (workers' reports): prom-client's own
 * Histogram can only observe, so this is the exposition object the registry formats. `series` gives one snapshot
 * per label set.
 */
export function collectedHistogram(
  registry: Registry,
  name: string,
  help: string,
  series: () => { labels: Record<string, string>; snapshot: HistogramSnapshot }[],
): void {
  registry.registerMetric({
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get: async () => ({
      name,
      help,
      type: "histogram",
      aggregator: "sum",
      values: series().flatMap(({ labels, snapshot }) => {
        let cumulative = 0;
        const buckets = snapshot.counts.map((n, i) => {
          cumulative += n;
          const le = i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : "+Inf";
          return { metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative };
        });
        return [
          ...buckets,
          { metricName: `${name}_sum`, labels, value: snapshot.sum },
          { metricName: `${name}_count`, labels, value: snapshot.count },
        ];
      }),
    }),
    reset() {},
  } as unknown as Parameters<Registry["registerMetric"]>[0]);
}
