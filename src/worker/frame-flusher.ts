import { performance } from "node:perf_hooks";

/**
 * After a write pass, the next one waits this many times as long as the pass took. A worker that writes to
 * thousands of sockets spends its time in one write() syscall per socket per pass; spacing the passes by their own
 * cost bounds the share of time spent writing (here about two thirds) and lets each socket's frames gather in
 * between, so that the busier the worker, the more frames go out per syscall. Under ordinary load it adds nothing:
 * a pass is short, or the next message comes after its wait is over.
 */
const PASS_SPACING = 0.5;
/** The longest a pass may be held back, whatever the last one cost: the latency coalescing may add. */
const MAX_WAIT_MS = 100;

export interface Flushable {
  /** Writes what is queued; returns the number of frames written. */
  flush(): number;
}

/**
 * Writes the queued frames of every connection that got one, one write per connection, in passes. The write
 * window grows with load by itself (Centrifugo's write delay, made adaptive): the next pass runs as soon as the
 * current batch from the primary is processed (setImmediate), or, after a long pass, half as long as it took later
 * (at most MAX_WAIT_MS), so that every connection's next frames go out together. There is no load threshold to
 * flap around: a worker slides into coalescing exactly as its passes lengthen.
 */
export class FrameFlusher {
  readonly #dirty = new Set<Flushable>();
  #scheduled = false;
  /** Not before this (performance.now()) does the next pass run. */
  #nextPassAt = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Frames and socket writes so far (frames per write: how much the passes coalesced). */
  frames = 0;
  writes = 0;
  /** Runs after every pass (fan-out latency is measured there). */
  onPassEnd: () => void = () => {};

  mark(conn: Flushable): void {
    this.#dirty.add(conn);
    if (this.#scheduled) return;
    this.#scheduled = true;
    const wait = this.#nextPassAt - performance.now();
    if (wait >= 1) this.#timer = setTimeout(() => this.#pass(), wait);
    else setImmediate(() => this.#pass());
  }

  #pass(): void {
    this.#scheduled = false;
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
    this.#nextPassAt = ended + Math.min(MAX_WAIT_MS, (ended - started) * PASS_SPACING);
    this.onPassEnd();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}
