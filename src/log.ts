import { type Logger, pino } from "pino";

export type { Logger };

/** The root logger: NDJSON on stdout, one line per event; every process adds its role and worker id as fields. */
export function createLogger(level: string, bindings: Record<string, unknown>): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}
