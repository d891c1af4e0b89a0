/**
 * Turns the client processes' reports for one publish-rate step into a StepResult and decides whether the
 * step was sustained: ≥ 99.9 % delivered, p99 < 500 ms, no backlog growth, and the publisher kept its rate.
 */
import { Histogram } from "../histogram.js";
import type { StepReport } from "../load/delivery-stats.js";
import type { RateOutcome } from "../rate-publisher.js";
import type { StepResult } from "../results.js";

export const SUSTAINED_MIN_DELIVERED_PCT = 99.9;
export const SUSTAINED_MAX_P99_MS = 500;

/**
 * Backlog growth: the second half's median latency clearly above the first half's (twice as high and at
 * least 50 ms more). A server that keeps up shows the same latency in both halves of a step.
 */
export function isBacklogGrowing(firstP50: number, secondP50: number): boolean {
  if (!Number.isFinite(firstP50) || !Number.isFinite(secondP50)) return false;
  return secondP50 > 2 * firstP50 && secondP50 - firstP50 > 50;
}

export interface StepInput {
  rate: number;
  /** Subscribers per published message. */
  fanout: number;
  durationMs: number;
  publish: RateOutcome;
  reports: StepReport[];
  clientCpuPct: number;
  serverCpuPct: number;
  otherCpuPct: number;
}

export function toStepResult(input: StepInput): StepResult {
  const first = new Histogram();
  const second = new Histogram();
  let received = 0;
  let lastAt = 0;
  let firstAt = Number.POSITIVE_INFINITY;
  for (const r of input.reports) {
    first.merge(r.firstHalf);
    second.merge(r.secondHalf);
    received += r.received;
    if (r.received > 0) {
      lastAt = Math.max(lastAt, r.lastAt);
      firstAt = Math.min(firstAt, r.firstAt);
    }
  }
  const all = Histogram.from(first.snapshot());
  all.merge(second);
  // What the server owes: every accepted message to every subscriber. Refused or unsent messages count
  // separately (unpublished) and also make the step unsustained.
  const expected = Math.round(input.publish.published * input.fanout);
  const deliveredPct = expected > 0 ? (100 * received) / expected : 0;
  const firstHalfP50Ms = first.percentile(0.5);
  const secondHalfP50Ms = second.percentile(0.5);
  const backlogGrowth = isBacklogGrowing(firstHalfP50Ms, secondHalfP50Ms);
  const p99Ms = all.percentile(0.99);
  const unpublished = input.publish.scheduled - input.publish.published;
  // From the first delivery to the last, plus one publish interval: equals the step's duration when the server
  // keeps up (whatever its latency), and stretches when deliveries trail behind.
  const windowMs = received > 0 ? lastAt - firstAt + 1000 / input.rate : input.durationMs;
  return {
    rate: input.rate,
    published: input.publish.published,
    unpublished,
    expected,
    received,
    deliveredPct,
    p50Ms: all.percentile(0.5),
    p90Ms: all.percentile(0.9),
    p99Ms,
    maxMs: all.max,
    deliveriesPerSec: (received * 1000) / windowMs,
    firstHalfP50Ms,
    secondHalfP50Ms,
    backlogGrowth,
    sustained:
      deliveredPct >= SUSTAINED_MIN_DELIVERED_PCT &&
      p99Ms < SUSTAINED_MAX_P99_MS &&
      !backlogGrowth &&
      unpublished === 0,
    clientCpuPct: input.clientCpuPct,
    serverCpuPct: input.serverCpuPct,
    otherCpuPct: input.otherCpuPct,
  };
}
