import type { Logger } from "../../log.js";
import type { LinkState } from "./redis-link.js";

/** What an outage report counts (see docs/redis.md, Outages). */
export type Losses = { unrelayed: number; missed: number; sioUnrelayed: number };

/**
 * After the link is back, gaps found within this window still belong to the outage's report: other hosts
 * reconnect on their own backoff (up to ~2.5 s later) and raise the counters then, which is when this host
 * sees how much it missed.
 */
const SETTLE_MS = 5000;
/** Losses outside an outage are reported at most this often. */
const REPORT_MS = 10_000;

type Outage = { startedAt: number; reason: string };

export type OutageLogDeps = {
  log: Logger;
  /** Totals so far; each report line gives what is new since the previous one. */
  losses(): Losses;
  state(): LinkState;
  /** Channels still rejoining: the report waits for them. */
  joining(): number;
  /** Detail for the first "link up" line. */
  status(): Record<string, unknown>;
};

/**
 * The Redis link's story in the log: one warning when it goes down, one line when it is back and every channel
 * has rejoined, with what was lost meanwhile; losses outside outages in an occasional line of their own.
 * The lines add up to the counters in /metrics.
 */
export class OutageLog {
  readonly #d: OutageLogDeps;
  /** Start-up counts as an outage until the link is first up. */
  #outage: Outage | null = { startedAt: Date.now(), reason: "starting" };
  #reported: Losses = { unrelayed: 0, missed: 0, sioUnrelayed: 0 };
  #settleTimer: NodeJS.Timeout | null = null;
  readonly #reportTimer: NodeJS.Timeout;
  outages = 0;

  constructor(d: OutageLogDeps) {
    this.#d = d;
    this.#reportTimer = setInterval(() => this.#reportLosses(), REPORT_MS);
    this.#reportTimer.unref();
  }

  /** When the current outage began, or null while the link is up. */
  get since(): Date | null {
    return this.#outage ? new Date(this.#outage.startedAt) : null;
  }

  linkChanged(state: LinkState, reason: string): void {
    if (state === "up") {
      if (this.#outage) this.#settle();
      return;
    }
    if (this.#settleTimer) {
      clearTimeout(this.#settleTimer);
      this.#settleTimer = null;
    }
    if (this.#outage) return;
    this.outages += 1;
    this.#outage = { startedAt: Date.now(), reason };
    this.#d.log.warn(
      { state, reason },
      "redis link down: affected channels are delivered on this host only until it is back",
    );
  }

  #settle(): void {
    if (this.#settleTimer) return;
    const check = () => {
      this.#settleTimer = null;
      if (!this.#outage || this.#d.state() !== "up") return;
      if (this.#d.joining() > 0) {
        this.#settleTimer = setTimeout(check, 100);
        return;
      }
      const settleMs = this.#outage.reason === "starting" ? 0 : SETTLE_MS;
      this.#settleTimer = setTimeout(() => this.#end(), settleMs);
    };
    this.#settleTimer = setTimeout(check, 0);
  }

  #end(): void {
    this.#settleTimer = null;
    const outage = this.#outage;
    if (!outage || this.#d.state() !== "up") return;
    this.#outage = null;
    // Counted from the previous report rather than from the down event: the first publishes fail a moment
    // before the connection's close event says the link is down.
    const report = { outageMs: Date.now() - outage.startedAt, ...this.#unreported() };
    const lost = total(report) > 0;
    if (outage.reason === "starting" && !lost) this.#d.log.info(this.#d.status(), "redis link up");
    else
      this.#d.log[lost ? "warn" : "info"](
        report,
        lost
          ? "redis link restored: unrelayed messages reached this host only, missed ones never reached it"
          : "redis link restored: nothing lost",
      );
  }

  #unreported(): Losses {
    const now = this.#d.losses();
    const since = { ...now };
    for (const k of LOSS_KINDS) since[k] -= this.#reported[k];
    this.#reported = now;
    return since;
  }

  /** Losses outside an outage (a failed script, a gap found late) get their own line. */
  #reportLosses(): void {
    if (this.#outage) return;
    const lost = this.#unreported();
    if (total(lost) > 0) this.#d.log.warn(lost, "redis relay: messages lost while the link was up");
  }

  close(): void {
    clearInterval(this.#reportTimer);
    if (this.#settleTimer) clearTimeout(this.#settleTimer);
  }
}

const LOSS_KINDS = ["unrelayed", "missed", "sioUnrelayed"] as const satisfies readonly (keyof Losses)[];

function total(losses: Losses): number {
  return LOSS_KINDS.reduce((n, k) => n + losses[k], 0);
}
