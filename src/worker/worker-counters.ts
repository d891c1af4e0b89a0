import type { ErrorCode } from "../errors.js";

/** What a worker counts for /metrics and /status; reported to the primary every second. */
export class WorkerCounters {
  delivered = 0;
  slowConsumers = 0;
  readonly errors: Partial<Record<ErrorCode, number>> = {};
  /** Backend hook calls by `<hook> <outcome>`. */
  readonly hookCalls: Record<string, number> = {};

  error(code: ErrorCode, n = 1): void {
    this.errors[code] = (this.errors[code] ?? 0) + n;
  }

  hookCall(hook: string, outcome: "ok" | "denied" | "timeout" | "failed" | "overloaded"): void {
    const key = `${hook} ${outcome}`;
    this.hookCalls[key] = (this.hookCalls[key] ?? 0) + 1;
  }
}
