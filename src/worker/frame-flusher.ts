import { performance } from "node:perf_hooks";

/** Above this share of busy time the worker coalesces harder; below the lower one it writes at once again. */
const BUSY_ABOVE = 0.85;
const IDLE_BELOW = 0.5;
const SAMPLE_MS = 100;
/** How long a busy worker lets frames gather before a write pass: the latency it trades for fewer syscalls. */
const BUSY_WRITE_DELAY_MS = 30;
/** Frames per write at which a pass already coalesces well by itself, so that waiting would only add latency. */
const COALESCED_ENOUGH = 1.5;

export interface Flushable {
  /** Writes what is queued; returns the number of frames written. */
  flush(): number;
}

/**
 * Writes the queued frames of every connection that got one, one write per connection (writev when several
 * queued). An idle worker writes once the current batch from the primary is processed (setImmediate). A busy
 * one, where one write() syscall per frame is what it spends its time on, lets frames gather for 30 ms first
 * so that each connection's frames go out in fewer writes: the per-socket coalescing that lets a saturated
 * worker deliver more, the way Centrifugo's write delay does, only switched on by load. When the last pass
 * already wrote several frames per connection (a busy channel with many subscribers, whose passes are long),
 * waiting would add latency and save nothing, so the worker writes at once.
 */
export class FrameFlusher {
  readonly #dirty = new Set<Flushable>();
  #scheduled = false;
  #busy = false;
  #framesPerWrite = 1;
  #elu = performance.eventLoopUtilization();
  readonly #sampler = setInterval(() => this.#sample(), SAMPLE_MS);

  constructor() {
    this.#sampler.unref();
  }

  get busy(): boolean {
    return this.#busy;
  }

  mark(conn: Flushable): void {
    this.#dirty.add(conn);
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#busy && this.#framesPerWrite < COALESCED_ENOUGH) {
      setTimeout(() => this.flushAll(), BUSY_WRITE_DELAY_MS);
    } else setImmediate(() => this.flushAll());
  }

  flushAll(): void {
    this.#scheduled = false;
    let frames = 0;
    for (const conn of this.#dirty) frames += conn.flush();
    if (this.#dirty.size > 0) this.#framesPerWrite = frames / this.#dirty.size;
    this.#dirty.clear();
  }

  close(): void {
    clearInterval(this.#sampler);
  }

  #sample(): void {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.#elu);
    this.#elu = now;
    if (utilization > BUSY_ABOVE) this.#busy = true;
    else if (utilization < IDLE_BELOW) this.#busy = false;
  }
}
