/**
 * The answers to GET /health and GET /ready, in one place. The primary knows the truth (its phase, its workers,
 * the Redis link) and answers fresh connections itself; it pushes the same snapshot to its workers, which answer
 * requests that arrive on a kept-alive connection they hold: one body, whoever answers.
 */

/** starting → running → draining (SIGTERM / SIGINT). */
export type InstancePhase = "starting" | "running" | "draining";

export type WorkerCounts = {
  wanted: number;
  live: number;
  retiring: number;
  starting: number;
  draining: number;
};

export type Readiness = {
  instance: string;
  phase: InstancePhase;
  workers: WorkerCounts;
  crashLoop: boolean;
  /** The Redis link, with --redis. */
  redis: { state: string; since: string } | null;
};

export type ProbeAnswer = { status: number; body: Record<string, unknown> };

/** The answer to a probe path, or null for any other path. */
export function answerProbe(path: string, r: Readiness): ProbeAnswer | null {
  if (path === "/health") {
    const body = { status: "ok", instance: r.instance, workers: r.workers };
    return { status: 200, body: r.redis ? { ...body, redis: r.redis } : body };
  }
  if (path === "/ready") {
    const status = r.phase !== "running" ? r.phase : r.workers.live > 0 ? "ready" : "no_live_worker";
    return {
      status: status === "ready" ? 200 : 503,
      body: { status, workers: r.workers, crashLoop: r.crashLoop },
    };
  }
  return null;
}
