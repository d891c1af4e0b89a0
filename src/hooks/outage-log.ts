import type { Logger } from "../log.js";

/**
 * Logs a backend outage once: a warning at its first failure (hook name and reason), one info line when a call
 * succeeds again, and nothing for the calls in between, however many fail. One per hook: they may have their
 * own URLs.
 */
export class OutageLog {
  readonly #log: Logger;
  readonly #down = new Set<string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  failed(hook: string, url: string, reason: string): void {
    if (this.#down.has(hook)) return;
    this.#down.add(hook);
    this.#log.warn({ hook, url, reason }, "backend hook failing: clients get backend_unavailable");
  }

  answered(hook: string, url: string): void {
    if (!this.#down.delete(hook)) return;
    this.#log.info({ hook, url }, "backend answering again");
  }
}
