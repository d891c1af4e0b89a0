import { performance } from "node:perf_hooks";

/**
 * After a write pass, a loaded worker waits up to this many times as long as it took. A worker that writes to
 * thousands of sockets spends its time in one write() syscall per socket per pass; spacing the passes by their
 * own cost bounds the share of time spent writing (here about half) and lets each socket's frames gather in
 * between, so that the busier the worker, the more frames go out per syscall.
 */
const PASS_SPACING = 0.5;
/** The longest a pass may be held back, whatever the last one cost: the latency coalescing may add. */
const MAX_WAIT_MS = 100;
/**
 * How much of that spacing applies follows the event loop's load (share of busy time, sampled every 100 ms and
 * smoothed): none up to LOAD_FROM, all of it from LOAD_FULL, in proportion between. Ordinary load gets no added
 * latency; a rising load gets a window that widens with it, with no threshold to flap around.
 */
const LOAD_FROM = 0.3;
const LOAD_FULL = 0.7;
const SAMPLE_MS = 100;

export interface Flushable {
  /** Writes what is queued; returns the number of frames written. */
  flush(): number;
}

/**
 * Writes the queued frames of every connection that got one, one write per connection. The write window grows
 * with load by itself (Centrifugo's write delay, adaptive): a worker under ordinary load writes as soon as the
 * current batch from the primary is processed (setImmediate); a loaded one waits after each pass half as long as
 * it took (at most MAX_WAIT_MS), so that every connection's next frames go out together, more of them the longer
 * the passes get.
 */
export class FrameFlusher {
  readonly #dirty = new Set<Flushable>();
  #scheduled = false;
  /** Not before this (performance.now()) does the next pass run. */
  #nextPassAt = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Smoothed share of busy time (0..1). */
  #load = 0;
  #elu = performance.eventLoopUtilization();
  readonly #sampler = setInterval(() => this.#sample(), SAMPLE_MS);

  constructor() {
    this.#sampler.unref();
  }

  /** The share of each pass's cost that the next one waits (0: it runs at once). */
  get spacing(): number {
    const share = Math.min(1, Math.max(0, (this.#load - LOAD_FROM) / (LOAD_FULL - LOAD_FROM)));
    return share * PASS_SPACING;
  }
  /** Frames and socket writes so far (frames per write: how much the passes coalesced). */
  frames = 0;
  writes = 0;

  mark(conn: Flushable): void {
    this.#dirty.add(conn);
    if (this.#scheduled) return;
    this.#scheduled = true;
    const wait = this.#nextPassAt - performance.now();
    if (wait >= 1) this.#timer = setTimeout(() => this.flushAll(), wait);
    else setImmediate(() => this.flushAll());
  }

  flushAll(): void {
    if (!this.#scheduled) return;
    this.#scheduled = false;
    // Called early (a notice that must follow what is queued): the pass it replaces is not run again.
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const started = performance.now();
    for (const conn of this.#dirty) {
      const frames = conn.flush();
      if (frames === 0) continue;
      this.frames += frames;
      this.writes += 1;
    }
    this.#dirty.clear();
    const ended = performance.now();
    this.#nextPassAt = ended + Math.min(MAX_WAIT_MS, (ended - started) * this.spacing);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    clearInterval(this.#sampler);
  }

  #sample(): void {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.#elu);
    this.#elu = now;
    // Half of the last sample, half of what came before: a spike moves it, a single quiet sample does not undo it.
    this.#load = (this.#load + utilization) / 2;
  }
}
