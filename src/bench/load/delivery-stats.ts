/**
 * Per-step delivery accounting inside a load-client process. Every published message carries
 * `{"t":<epoch ms>,"s":<step>,"h":<0|1 = first or second half of the step>}` as its data; the client reads
 * those three numbers straight from the frame bytes (no JSON.parse) and records now − t.
 */
import { Histogram, type HistogramSnapshot } from "../histogram.js";

const T_KEY = Buffer.from('"t":');
const S_KEY = Buffer.from('"s":');
const H_KEY = Buffer.from('"h":');
const CH_COMMA = 0x2c;
const CH_QUOTE = 0x22;
const CH_DOT = 0x2e;
const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_MINUS = 0x2d;

/** What a client process reports for one step. */
export interface StepReport {
  step: number;
  received: number;
  firstHalf: HistogramSnapshot;
  secondHalf: HistogramSnapshot;
  firstAt: number;
  lastAt: number;
}

class StepAccumulator {
  received = 0;
  firstHalf = new Histogram();
  secondHalf = new Histogram();
  firstAt = 0;
  lastAt = 0;
}

let numEnd = 0;

/** Parses a JSON number starting at `pos`; sets numEnd to the index after it. NaN when none. */
function parseNumberAt(buf: Buffer, pos: number, end: number): number {
  let i = pos;
  let neg = false;
  if (buf[i] === CH_MINUS) {
    neg = true;
    i++;
  }
  let value = 0;
  let digits = 0;
  while (i < end) {
    const c = buf[i] as number;
    if (c < CH_0 || c > CH_9) break;
    value = value * 10 + (c - CH_0);
    i++;
    digits++;
  }
  if (i < end && buf[i] === CH_DOT) {
    i++;
    let scale = 0.1;
    while (i < end) {
      const c = buf[i] as number;
      if (c < CH_0 || c > CH_9) break;
      value += (c - CH_0) * scale;
      scale /= 10;
      i++;
      digits++;
    }
  }
  numEnd = i;
  if (digits === 0) return Number.NaN;
  return neg ? -value : value;
}

/**
 * Index of `needle` in `buf[from, end)`, or -1. `buf` is often the process's shared read buffer, whose bytes
 * past `end` are stale: Buffer.indexOf has no end bound and would scan (and match) them.
 */
function indexIn(buf: Buffer, needle: Buffer, from: number, end: number): number {
  const first = needle[0];
  const last = end - needle.length;
  for (let i = from; i <= last; i++) {
    if (buf[i] !== first) continue;
    let j = 1;
    while (j < needle.length && buf[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** Reads the number after `key` (`"k":`) searching from `from`; the fast path expects `,"k":` right there. */
function numberAfter(buf: Buffer, from: number, end: number, key: Buffer): number {
  // Fast path: `,"s":` immediately follows the previous number.
  if (
    buf[from] === CH_COMMA &&
    buf[from + 1] === CH_QUOTE &&
    buf[from + 2] === key[1] &&
    buf[from + 3] === CH_QUOTE
  ) {
    return parseNumberAt(buf, from + 5, end);
  }
  const idx = indexIn(buf, key, from, end);
  if (idx < 0) return Number.NaN;
  return parseNumberAt(buf, idx + 4, end);
}

export class DeliveryStats {
  readonly #steps = new Map<number, StepAccumulator>();
  readonly #collected = new Set<number>();
  /** Deliveries that arrived after their step had been collected. */
  late = 0;
  /** Frames that looked like deliveries but had no readable timestamp. */
  unparsed = 0;

  /**
   * Records a delivery if `buf[start,end)` holds a timestamped message; returns false when it holds none
   * (then the frame is something else: an ack, an error, a control message).
   */
  onPayload(buf: Buffer, start: number, end: number, nowMs: number): boolean {
    const idx = indexIn(buf, T_KEY, start, end);
    if (idx < 0) return false;
    const t = parseNumberAt(buf, idx + 4, end);
    const s = numberAfter(buf, numEnd, end, S_KEY);
    const h = numberAfter(buf, numEnd, end, H_KEY);
    if (Number.isNaN(t) || Number.isNaN(s)) {
      this.unparsed++;
      return true;
    }
    if (this.#collected.has(s)) {
      this.late++;
      return true;
    }
    let acc = this.#steps.get(s);
    if (!acc) {
      acc = new StepAccumulator();
      acc.firstAt = nowMs;
      this.#steps.set(s, acc);
    }
    acc.received++;
    acc.lastAt = nowMs;
    (h === 1 ? acc.secondHalf : acc.firstHalf).record(nowMs - t);
    return true;
  }

  /** Deliveries so far for a step (for progress polling). */
  received(step: number): number {
    return this.#steps.get(step)?.received ?? 0;
  }

  /** Final report of a step; later deliveries for it count as late. */
  take(step: number): StepReport {
    const acc = this.#steps.get(step) ?? new StepAccumulator();
    this.#steps.delete(step);
    this.#collected.add(step);
    return {
      step,
      received: acc.received,
      firstHalf: acc.firstHalf.snapshot(),
      secondHalf: acc.secondHalf.snapshot(),
      firstAt: acc.firstAt,
      lastAt: acc.lastAt,
    };
  }
}
