/**
 * The publish-rate stepping that C/D (fanout.ts) and G (cross-host.ts) share: the warm-up, waiting for a step's
 * deliveries, and stepping up the rates until they run out or steps stop being sustained.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { RatePublisher } from "../rate-publisher.js";
import type { StepResult } from "../results.js";

/** Keep-alive connections publishing (a backend's small connection pool). */
export const PUBLISH_CONNECTIONS = 8;
export const SUBSCRIBE_TIMEOUT_MS = 60_000;
/** Waiting for deliveries ends early when their count has not moved for this long. */
const STALL_MS = 1500;
const POLL_MS = 100;

/** How long to wait for a step's deliveries at most: twice the step, within 2–20 s. */
export function graceFor(durationMs: number): number {
  return Math.min(20_000, Math.max(2000, 2 * durationMs));
}

/** Polls `received` until it reaches `expected`, stops moving for STALL_MS, or `graceMs` passes. */
export async function awaitDeliveries(
  received: () => Promise<number>,
  expected: number,
  graceMs: number,
): Promise<void> {
  const until = performance.now() + graceMs;
  let last = -1;
  let lastChange = performance.now();
  while (performance.now() < until) {
    const got = await received();
    if (got >= expected) return;
    if (got !== last) {
      last = got;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_MS) {
      return;
    }
    await sleep(POLL_MS);
  }
}

/** The load clients as a step sees them: deliveries so far, and the final reports. */
export interface StepClients {
  received(step: number): Promise<number>;
  take(step: number): Promise<unknown>;
}

/** Warm-up (step 0, not reported): lets both sides JIT-compile their delivery path before the first step. */
export async function warmUp(
  publisher: RatePublisher,
  channelOf: (n: number) => string,
  fanout: number,
  graceMs: number,
  clients: StepClients,
): Promise<void> {
  const warm = await publisher.run({ step: 0, rate: 10, durationMs: 200, channelOf });
  await awaitDeliveries(() => clients.received(0), warm.published * fanout, graceMs);
  await clients.take(0);
}

/** Runs `runStep` per rate (steps numbered from 1) until `stopAfterFail` steps in a row were not sustained. */
export async function stepUp(
  rates: number[],
  stopAfterFail: number,
  runStep: (rate: number, step: number) => Promise<StepResult>,
): Promise<StepResult[]> {
  const steps: StepResult[] = [];
  let fails = 0;
  for (const [i, rate] of rates.entries()) {
    const result = await runStep(rate, i + 1);
    steps.push(result);
    fails = result.sustained ? 0 : fails + 1;
    if (fails >= stopAfterFail) break;
  }
  return steps;
}
