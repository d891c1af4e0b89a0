import { Counter, Gauge, type Registry } from "prom-client";

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
